//! Who sprays: the plan that two sides' NAT classes call for. Both sides
//! compute it from the same two hellos, so they agree without another
//! message.

use super::protocol::Class;
use crate::dcutr::nat::MappingKind;

/// This side's part in a birthday punch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// Its NAT maps endpoint-dependently: it opens many sockets towards the
    /// other side's punch address and waits for a probe to reach one.
    Hard,
    /// Its NAT (or firewall) maps endpoint-independently: it probes ports of
    /// the hard side's public IP from its punch socket.
    Easy,
}

impl Role {
    /// `hard` or `easy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Hard => "hard",
            Role::Easy => "easy",
        }
    }

    fn other(self) -> Role {
        match self {
            Role::Hard => Role::Easy,
            Role::Easy => Role::Hard,
        }
    }
}

/// What the two sides' NAT classes call for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Plain DCUtR only.
    Plain,
    /// A birthday punch with this side in `role`. `deferred`: the classes
    /// only suggest it (one side saw its port rewritten, with a single
    /// observer), so the hard side starts once its plain punch failed.
    Birthday { role: Role, deferred: bool },
    /// Both map endpoint-dependently: about 65 000 probes per side would
    /// give 64 %, so the connection stays relayed.
    BothHard,
}

/// How a class looks for the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Looks {
    Hard,
    /// Endpoint-dependent is likely: one observer saw the port rewritten.
    MaybeHard,
    Easy,
    /// Endpoint-independent is likely: one observer saw the port kept.
    MaybeEasy,
    Unknown,
}

fn looks(class: Class) -> Looks {
    match (class.mapping, class.port_preserved) {
        (MappingKind::EndpointDependent, _) => Looks::Hard,
        (MappingKind::EndpointIndependent, _) => Looks::Easy,
        (MappingKind::Unknown, Some(false)) => Looks::MaybeHard,
        (MappingKind::Unknown, Some(true)) => Looks::MaybeEasy,
        (MappingKind::Unknown, None) => Looks::Unknown,
    }
}

/// The plan for this side's class `mine` and the other's `theirs`.
pub(crate) fn plan(mine: Class, theirs: Class) -> Plan {
    use Looks::*;
    let hard_side = |mine: Looks, theirs: Looks| -> Option<bool> {
        // `Some(deferred)` if `mine` is the hard side against `theirs`.
        match (mine, theirs) {
            (Hard, Easy) => Some(false),
            (Hard, MaybeEasy) | (MaybeHard, Easy) | (MaybeHard, MaybeEasy) => Some(true),
            _ => None,
        }
    };
    if let Some(deferred) = hard_side(looks(mine), looks(theirs)) {
        return Plan::Birthday {
            role: Role::Hard,
            deferred,
        };
    }
    if let Some(deferred) = hard_side(looks(theirs), looks(mine)) {
        return Plan::Birthday {
            role: Role::Hard.other(),
            deferred,
        };
    }
    match (looks(mine), looks(theirs)) {
        (Hard, Hard) => Plan::BothHard,
        _ => Plan::Plain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(mapping: MappingKind, port_preserved: Option<bool>) -> Class {
        Class {
            mapping,
            port_preserved,
        }
    }

    #[test]
    fn the_classes_decide_the_roles() {
        use MappingKind::*;
        let hard = class(EndpointDependent, Some(false));
        let easy = class(EndpointIndependent, Some(true));
        let maybe_hard = class(Unknown, Some(false));
        let maybe_easy = class(Unknown, Some(true));
        let unknown = class(Unknown, None);
        let rewriting_easy = class(EndpointIndependent, Some(false));
        let birthday = |role, deferred| Plan::Birthday { role, deferred };
        for (mine, theirs, expected) in [
            (hard, easy, birthday(Role::Hard, false)),
            (easy, hard, birthday(Role::Easy, false)),
            (hard, rewriting_easy, birthday(Role::Hard, false)),
            // With one observer (a relay on one address): a rewritten port
            // against a kept one punches the birthday way once plain fails.
            (maybe_hard, maybe_easy, birthday(Role::Hard, true)),
            (maybe_easy, maybe_hard, birthday(Role::Easy, true)),
            (maybe_hard, easy, birthday(Role::Hard, true)),
            (hard, maybe_easy, birthday(Role::Hard, true)),
            (hard, hard, Plan::BothHard),
            (maybe_hard, maybe_hard, Plan::Plain),
            (maybe_hard, hard, Plan::Plain),
            (easy, easy, Plan::Plain),
            (unknown, hard, Plan::Plain),
            (hard, unknown, Plan::Plain),
            (unknown, unknown, Plan::Plain),
        ] {
            assert_eq!(plan(mine, theirs), expected, "{mine:?} {theirs:?}");
        }
    }
}
