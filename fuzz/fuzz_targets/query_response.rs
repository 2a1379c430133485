//! Query and subscribe answers, JSON and XML, under any HTTP status: the scalar subscription id
//! stays a decimal string, the snapshot keeps its invariants and survives a JSON round trip.
#![no_main]

use dme_events::protocol::parse_query;
use dme_events_fuzz::{
    check_envelope_consistency, check_query, check_response_error, status_and_body,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((status, body)) = status_and_body(data) else {
        return;
    };
    match parse_query(status, body) {
        Ok(r) => {
            assert!((200..300).contains(&status));
            check_query(&r);
        }
        Err(e) => check_response_error(status, &e),
    }
    check_envelope_consistency(body);
});
