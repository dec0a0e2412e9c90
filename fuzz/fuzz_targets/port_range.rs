//! `PortRange` parsing: never panics, and what parses displays back as text
//! that parses to the same range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use punchport::PortRange;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for parsed in [text.parse::<PortRange>(), PortRange::parse_privileged(text)] {
        match parsed {
            Ok(range) => {
                assert!(range.start() >= 1 && range.start() <= range.end());
                assert_eq!(PortRange::parse_privileged(&range.to_string()), Ok(range));
                assert_eq!(range.ports().count(), range.len());
            }
            Err(err) => assert!(!err.to_string().is_empty()),
        }
    }
});
