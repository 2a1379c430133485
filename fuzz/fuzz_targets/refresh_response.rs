//! subscriptionRefresh answers (`{"imdata":[]}`, an empty body, or an error envelope) under any
//! HTTP status.
#![no_main]

use dme_events::protocol::{parse_error, parse_refresh, ErrorKind, ResponseError};
use dme_events_fuzz::{check_envelope_consistency, check_response_error, status_and_body};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((status, body)) = status_and_body(data) else {
        return;
    };
    match parse_refresh(status, body) {
        Ok(()) => assert!((200..300).contains(&status)),
        Err(e) => {
            check_response_error(status, &e);
            // Outside 2xx the answer is exactly what parse_error reads.
            if !(200..300).contains(&status) {
                assert_eq!(e, ResponseError::Device(parse_error(status, body)));
            }
            if let ResponseError::Device(d) = &e {
                if d.text
                    .to_ascii_lowercase()
                    .contains("subscription refresh timeout")
                    && d.http_status != 405
                    && !d
                        .text
                        .to_ascii_lowercase()
                        .contains("unable to locate opened web socket")
                {
                    assert_eq!(d.kind, ErrorKind::RefreshRejected);
                }
            }
        }
    }
    check_envelope_consistency(body);
});
