//! Configuration of the candidate filter.

use punchport_core::PortRange;

/// How the [`Behaviour`](crate::Behaviour) filters address candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub(crate) range: PortRange,
    pub(crate) translate: bool,
}

impl Config {
    /// The punch range `40000-40050`, with translation on.
    pub fn new() -> Self {
        Self {
            range: PortRange::default(),
            translate: true,
        }
    }

    /// Sets the punch range. Use the same range as the transport.
    pub fn with_range(mut self, range: PortRange) -> Self {
        self.range = range;
        self
    }

    /// Whether an observation outside the range is offered to DCUtR as
    /// `observed IP + punch port` (on by default).
    ///
    /// That candidate is right behind NATs that keep the source port (plain
    /// Linux SNAT and masquerade, most home routers) and wrong behind NATs
    /// that rewrite it. Switched off, such observations are dropped, except
    /// that DCUtR is never left with no candidate at all.
    pub fn with_translation(mut self, translate: bool) -> Self {
        self.translate = translate;
        self
    }

    /// The punch range.
    pub fn range(&self) -> PortRange {
        self.range
    }

    /// Whether translation is on.
    pub fn translation(&self) -> bool {
        self.translate
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}
