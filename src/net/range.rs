//! An inclusive range of UDP ports.

use std::{fmt, ops::RangeInclusive, str::FromStr};

use serde::{Deserialize, Serialize};

/// Ports below this are privileged on most systems (binding them needs root or
/// `CAP_NET_BIND_SERVICE`).
const FIRST_UNPRIVILEGED_PORT: u16 = 1024;

/// An inclusive range of UDP ports from which a punch socket is bound.
///
/// Parses `"40000-40050"` or a single port `"40000"`, and displays back the
/// same text. The default is `40000-40050`. Serialized with serde as that text.
///
/// Ports below 1024 are rejected unless the range is built with
/// [`PortRange::new_privileged`] or [`PortRange::parse_privileged`]: a punch
/// port should never be 443 or another port that a service already owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortRange {
    start: u16,
    end: u16,
}

impl PortRange {
    /// The default punch range, `40000-40050`.
    pub const DEFAULT: PortRange = PortRange {
        start: 40000,
        end: 40050,
    };

    /// An inclusive range from `start` to `end`, both at least 1024.
    pub fn new(start: u16, end: u16) -> Result<Self, ParseRangeError> {
        let range = Self::new_privileged(start, end)?;
        if start < FIRST_UNPRIVILEGED_PORT {
            return Err(ParseRangeError::Privileged {
                text: range.to_string(),
            });
        }
        Ok(range)
    }

    /// An inclusive range from `start` to `end` that may include ports below 1024.
    pub fn new_privileged(start: u16, end: u16) -> Result<Self, ParseRangeError> {
        let text = || format_range(start, end);
        if start == 0 || end == 0 {
            return Err(ParseRangeError::PortZero { text: text() });
        }
        if start > end {
            return Err(ParseRangeError::Reversed { start, end });
        }
        Ok(Self { start, end })
    }

    /// Parses like [`FromStr`] but accepts ports below 1024.
    pub fn parse_privileged(text: &str) -> Result<Self, ParseRangeError> {
        let (start, end) = parse_bounds(text)?;
        Self::new_privileged(start, end)
    }

    /// The first port of the range.
    pub fn start(&self) -> u16 {
        self.start
    }

    /// The last port of the range (inclusive).
    pub fn end(&self) -> u16 {
        self.end
    }

    /// Whether `port` lies inside the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.start..=self.end).contains(&port)
    }

    /// Whether listening on `port` binds the punch socket: port 0 (the
    /// first free port of the range) or a port inside the range. Any other
    /// port is an ordinary listener.
    pub fn binds_punch_socket(&self, port: u16) -> bool {
        port == 0 || self.contains(port)
    }

    /// Number of ports in the range (at least 1).
    #[allow(clippy::len_without_is_empty)] // a range is never empty
    pub fn len(&self) -> usize {
        usize::from(self.end - self.start) + 1
    }

    /// The ports of the range, in ascending order.
    pub fn ports(&self) -> RangeInclusive<u16> {
        self.start..=self.end
    }

    /// The ports of the range starting after `port` and wrapping around, ending
    /// with `port` itself if it is inside the range. Used to move a punch
    /// socket to the next free port.
    pub fn ports_after(&self, port: u16) -> impl Iterator<Item = u16> + use<> {
        let range = *self;
        let offset = if range.contains(port) {
            usize::from(port - range.start) + 1
        } else {
            0
        };
        range.ports().cycle().skip(offset).take(range.len())
    }
}

impl Default for PortRange {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_range(self.start, self.end))
    }
}

impl FromStr for PortRange {
    type Err = ParseRangeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (start, end) = parse_bounds(text)?;
        Self::new(start, end)
    }
}

impl TryFrom<String> for PortRange {
    type Error = ParseRangeError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<PortRange> for String {
    fn from(range: PortRange) -> Self {
        range.to_string()
    }
}

fn format_range(start: u16, end: u16) -> String {
    if start == end {
        start.to_string()
    } else {
        format!("{start}-{end}")
    }
}

fn parse_bounds(text: &str) -> Result<(u16, u16), ParseRangeError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ParseRangeError::Empty);
    }
    let port = |part: &str| {
        let part = part.trim();
        if part.is_empty() {
            return Err(ParseRangeError::MissingBound {
                text: trimmed.to_owned(),
            });
        }
        part.parse::<u16>()
            .map_err(|_| ParseRangeError::NotANumber {
                text: trimmed.to_owned(),
                part: part.to_owned(),
            })
    };
    match trimmed.split_once('-') {
        Some((start, end)) => Ok((port(start)?, port(end)?)),
        None => {
            let single = port(trimmed)?;
            Ok((single, single))
        }
    }
}

/// Why a text or a pair of ports is not a valid [`PortRange`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseRangeError {
    /// The text was empty or only white space.
    #[error(
        "the port range is empty: write it as `START-END` (for example `40000-40050`) or as one port (for example `40000`)"
    )]
    Empty,
    /// One side of the `-` is empty.
    #[error(
        "port range `{text}` is missing a bound: write both ports around the `-`, as in `40000-40050`"
    )]
    MissingBound {
        /// The whole text that was parsed.
        text: String,
    },
    /// A bound is not an integer from 0 to 65535.
    #[error(
        "port range `{text}`: `{part}` is not a port number; each bound must be a whole number from 1024 to 65535, as in `40000-40050`"
    )]
    NotANumber {
        /// The whole text that was parsed.
        text: String,
        /// The part that is not a number.
        part: String,
    },
    /// The first port is larger than the last.
    #[error(
        "port range `{start}-{end}` is reversed: the first port must not be larger than the last; write `{end}-{start}`"
    )]
    Reversed {
        /// The first port as given.
        start: u16,
        /// The last port as given.
        end: u16,
    },
    /// A bound is port 0, which asks the system for any free port.
    #[error(
        "port range `{text}` includes port 0, which means \"any port\" to the system; use ports from 1024 to 65535, as in `40000-40050`"
    )]
    PortZero {
        /// The range as given.
        text: String,
    },
    /// The range reaches below 1024 and privileged ports were not allowed.
    #[error(
        "port range `{text}` reaches into the privileged ports below 1024 (443 belongs to services, not to punching); use ports from 1024 up, as in `40000-40050`, or allow it explicitly with `PortRange::new_privileged`"
    )]
    Privileged {
        /// The range as given.
        text: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_a_range() {
        let range: PortRange = "40000-40050".parse().unwrap();
        assert_eq!((range.start(), range.end()), (40000, 40050));
        assert_eq!(range.to_string(), "40000-40050");
        assert_eq!(range.len(), 51);
        assert!(range.contains(40000) && range.contains(40050));
        assert!(!range.contains(39999) && !range.contains(40051));
    }

    #[test]
    fn parses_and_displays_a_single_port() {
        let range: PortRange = "40000".parse().unwrap();
        assert_eq!((range.start(), range.end()), (40000, 40000));
        assert_eq!(range.to_string(), "40000");
        assert_eq!(range.len(), 1);
    }

    #[test]
    fn accepts_white_space_around_bounds() {
        assert_eq!(
            " 40000 - 40050 ".parse::<PortRange>().unwrap(),
            PortRange::DEFAULT
        );
    }

    #[test]
    fn default_is_40000_to_40050() {
        assert_eq!(PortRange::default().to_string(), "40000-40050");
    }

    #[test]
    fn rejects_empty_text() {
        for text in ["", "   "] {
            let err = text.parse::<PortRange>().unwrap_err();
            assert_eq!(err, ParseRangeError::Empty);
            assert!(err.to_string().contains("40000-40050"), "{err}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_number() {
        for (text, part) in [
            ("abc", "abc"),
            ("40000-x", "x"),
            ("70000", "70000"),
            ("40000-40050-40060", "40050-40060"),
            ("4e4", "4e4"),
        ] {
            let err = text.parse::<PortRange>().unwrap_err();
            assert_eq!(
                err,
                ParseRangeError::NotANumber {
                    text: text.to_owned(),
                    part: part.to_owned()
                },
                "{text}"
            );
            assert!(err.to_string().contains(&format!("`{part}`")), "{err}");
        }
    }

    #[test]
    fn rejects_a_missing_bound() {
        for text in ["-40000", "40000-", "-"] {
            let err = text.parse::<PortRange>().unwrap_err();
            assert_eq!(
                err,
                ParseRangeError::MissingBound {
                    text: text.to_owned()
                }
            );
            assert!(err.to_string().contains("missing a bound"), "{err}");
        }
    }

    #[test]
    fn rejects_reversed_bounds_and_names_the_fix() {
        let err = "40050-40000".parse::<PortRange>().unwrap_err();
        assert_eq!(
            err,
            ParseRangeError::Reversed {
                start: 40050,
                end: 40000
            }
        );
        assert!(err.to_string().contains("write `40000-40050`"), "{err}");
    }

    #[test]
    fn rejects_port_zero() {
        for text in ["0", "0-100", "0-65535"] {
            let err = PortRange::parse_privileged(text).unwrap_err();
            assert!(matches!(err, ParseRangeError::PortZero { .. }), "{text}");
            assert!(err.to_string().contains(text), "{err}");
        }
        assert!(matches!(
            "0-40000".parse::<PortRange>(),
            Err(ParseRangeError::PortZero { .. })
        ));
    }

    #[test]
    fn rejects_privileged_ports_unless_allowed() {
        let err = "443".parse::<PortRange>().unwrap_err();
        assert_eq!(
            err,
            ParseRangeError::Privileged {
                text: "443".to_owned()
            }
        );
        assert!(err.to_string().contains("new_privileged"), "{err}");
        assert!(matches!(
            "1000-2000".parse::<PortRange>(),
            Err(ParseRangeError::Privileged { .. })
        ));
        assert_eq!(
            PortRange::parse_privileged("443").unwrap().to_string(),
            "443"
        );
        assert!(PortRange::new_privileged(1000, 2000).is_ok());
        assert!(PortRange::new(1024, 1024).is_ok());
    }

    #[test]
    fn serde_round_trips_as_text() {
        let json = serde_json::to_string(&PortRange::DEFAULT).unwrap();
        assert_eq!(json, "\"40000-40050\"");
        let back: PortRange = serde_json::from_str(&json).unwrap();
        assert_eq!(back, PortRange::DEFAULT);
        let err = serde_json::from_str::<PortRange>("\"40050-40000\"").unwrap_err();
        assert!(err.to_string().contains("reversed"), "{err}");
    }

    #[test]
    fn ports_after_wraps_around() {
        let range = PortRange::new(40000, 40003).unwrap();
        let after: Vec<_> = range.ports_after(40001).collect();
        assert_eq!(after, [40002, 40003, 40000, 40001]);
        let from_outside: Vec<_> = range.ports_after(443).collect();
        assert_eq!(from_outside, [40000, 40001, 40002, 40003]);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any text either parses into a range that displays back as
        /// something that parses to the same range, or is refused with an
        /// error whose message names the text's trimmed form.
        #[test]
        fn parsing_any_text_never_panics_and_round_trips(text in ".{0,40}") {
            match text.parse::<PortRange>() {
                Ok(range) => {
                    prop_assert!(range.start() >= FIRST_UNPRIVILEGED_PORT);
                    prop_assert!(range.start() <= range.end());
                    prop_assert_eq!(range.to_string().parse::<PortRange>(), Ok(range));
                }
                Err(err) => prop_assert!(!err.to_string().is_empty()),
            }
            let _ = PortRange::parse_privileged(&text);
        }

        /// Texts made of digits and dashes, the likely typos.
        #[test]
        fn parsing_digits_and_dashes_never_panics(text in "[0-9 -]{0,14}") {
            if let Ok(range) = text.parse::<PortRange>() {
                prop_assert_eq!(range.to_string().parse::<PortRange>(), Ok(range));
            }
        }

        /// Every valid pair of bounds round-trips through text and serde.
        #[test]
        fn valid_bounds_round_trip(a in 1024u16.., b in 1024u16..) {
            let (start, end) = (a.min(b), a.max(b));
            let range = PortRange::new(start, end).unwrap();
            prop_assert_eq!((range.start(), range.end()), (start, end));
            prop_assert_eq!(range.len(), usize::from(end - start) + 1);
            prop_assert_eq!(format!("{start}-{end}").parse::<PortRange>(), Ok(range));
            let json = serde_json::to_string(&range).unwrap();
            prop_assert_eq!(serde_json::from_str::<PortRange>(&json).unwrap(), range);
            let after: Vec<u16> = range.ports_after(start).collect();
            prop_assert_eq!(after.len(), range.len());
        }
    }
}
