//! aaaLogin / aaaRefresh answers, JSON (APIC envelope or NX-OS bare object) and XML, under any
//! HTTP status. A success carries a usable token that `Debug` never shows.
#![no_main]

use dme_events::protocol::parse_login;
use dme_events_fuzz::{check_envelope_consistency, check_response_error, status_and_body};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((status, body)) = status_and_body(data) else {
        return;
    };
    match parse_login(status, body) {
        Ok(l) => {
            assert!((200..300).contains(&status));
            assert!(!l.token.is_empty());
            assert!(!l.token.chars().any(|c| c.is_whitespace() || c.is_control()));
            assert!(l.refresh_timeout_secs > 0);
            assert_ne!(l.maximum_lifetime_secs, Some(0));
            assert!(l.url_token.as_ref().is_none_or(|t| !t.is_empty()));
            // Debug redacts the token (checked when no other field could show the same text).
            let dbg = format!("{l:?}");
            let elsewhere = [&l.version, &l.user_name, &l.node]
                .iter()
                .any(|f| f.as_ref().is_some_and(|f| f.contains(&l.token)));
            if l.token.len() >= 12 && !elsewhere {
                assert!(!dbg.contains(&l.token), "Debug shows the token");
            }
            if let Some(u) = &l.url_token {
                let elsewhere = [&l.version, &l.user_name, &l.node]
                    .iter()
                    .any(|f| f.as_ref().is_some_and(|f| f.contains(u.as_str())));
                if u.len() >= 12 && !elsewhere {
                    assert!(!dbg.contains(u.as_str()), "Debug shows the urlToken");
                }
            }
        }
        Err(e) => check_response_error(status, &e),
    }
    check_envelope_consistency(body);
});
