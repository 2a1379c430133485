//! JSON push frames: `parse_notification` (and `parse_mo`, which reads single objects of the same
//! shape). Whatever the input, a typed answer; a frame that parses keeps its invariants and
//! survives being written out and read again.
#![no_main]

use dme_events::protocol::{parse_mo, parse_notification, Format};
use dme_events_fuzz::{check_mo, check_notification};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Keep the fuzzer on the JSON reader: the format is chosen by the first character.
    let owned;
    let frame = if text.trim_start().starts_with('{') {
        text
    } else {
        owned = format!("{{{text}");
        &owned
    };
    match parse_notification(frame) {
        Ok(n) => {
            assert_eq!(n.format, Format::Json);
            check_notification(&n);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if let Ok(mo) = parse_mo(frame) {
        check_mo(&mo);
    }
});
