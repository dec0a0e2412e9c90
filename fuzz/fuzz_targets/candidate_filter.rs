//! punchport's DCUtR behaviour fed arbitrary listen addresses, observed
//! candidates and announced addresses: never panics, and every candidate it
//! hands DCUtR obeys the filter's rules (`punchport::fuzz::candidate_filter`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| punchport::fuzz::candidate_filter(data));
