//! Small helpers: time formatting, DN splitting, escaping, percent-decoding.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Format ms since the epoch as the devices do: `2020-04-13T10:43:19.237+00:00`.
pub fn iso_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}+00:00",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Split a DN into (parent, rn), honouring `[...]` brackets which may hold `/`.
/// `uni` -> ("", "uni"); `sys/intf/phys-[eth1/1]` -> ("sys/intf", "phys-[eth1/1]").
pub fn split_dn(dn: &str) -> (&str, &str) {
    let mut depth = 0i32;
    let mut cut = None;
    for (i, c) in dn.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            '/' if depth <= 0 => cut = Some(i),
            _ => {}
        }
    }
    match cut {
        Some(i) => (&dn[..i], &dn[i + 1..]),
        None => ("", dn),
    }
}

/// A DN is a non-empty `/`-separated list of non-empty RNs with balanced `[...]`.
pub fn valid_dn(dn: &str) -> bool {
    if dn.is_empty() || dn.len() > 4096 {
        return false;
    }
    let mut depth = 0i32;
    let mut seg_len = 0usize;
    for c in dn.chars() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            '/' if depth == 0 => {
                if seg_len == 0 {
                    return false;
                }
                seg_len = 0;
                continue;
            }
            _ => {}
        }
        seg_len += 1;
    }
    depth == 0 && seg_len > 0
}

/// Parent DN ("" for a root).
pub fn parent_dn(dn: &str) -> &str {
    split_dn(dn).0
}

/// Is `dn` equal to `root` or inside its subtree?
pub fn in_subtree(dn: &str, root: &str) -> bool {
    if root.is_empty() {
        return true;
    }
    dn == root
        || (dn.len() > root.len() && dn.starts_with(root) && dn.as_bytes()[root.len()] == b'/')
}

/// JSON string literal (with quotes).
pub fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Escape for an XML attribute value (double-quoted).
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\n' => o.push_str("&#10;"),
            '\r' => o.push_str("&#13;"),
            '\t' => o.push_str("&#9;"),
            c => o.push(c),
        }
    }
    o
}

/// Percent-decode (`+` is kept literally: tokens and filters carry it).
pub fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let h = (b[i + 1] as char).to_digit(16);
            let l = (b[i + 2] as char).to_digit(16);
            if let (Some(h), Some(l)) = (h, l) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse a raw query string into decoded (key, value) pairs, in order.
pub fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    let Some(q) = q else { return Vec::new() };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (pct_decode(k), pct_decode(v)),
            None => (pct_decode(p), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso() {
        assert_eq!(iso_ms(0), "1970-01-01T00:00:00.000+00:00");
        assert_eq!(iso_ms(1_586_774_599_237), "2020-04-13T10:43:19.237+00:00");
    }

    #[test]
    fn dn_split() {
        assert_eq!(
            split_dn("sys/intf/phys-[eth1/1]"),
            ("sys/intf", "phys-[eth1/1]")
        );
        assert_eq!(split_dn("uni"), ("", "uni"));
        assert_eq!(
            split_dn("uni/tn-a/BD-b/rtbd-[uni/tn-a/ap-x/epg-y]"),
            ("uni/tn-a/BD-b", "rtbd-[uni/tn-a/ap-x/epg-y]")
        );
        assert!(in_subtree("uni/tn-a/BD-b", "uni/tn-a"));
        assert!(!in_subtree("uni/tn-ab", "uni/tn-a"));
        assert!(valid_dn("sys/intf/phys-[eth1/1]") && valid_dn("uni"));
        assert!(
            !valid_dn("")
                && !valid_dn("[[[")
                && !valid_dn("uni//x")
                && !valid_dn("a]")
                && !valid_dn("uni/")
        );
    }

    #[test]
    fn decode() {
        assert_eq!(pct_decode("eq(a.b,%22x%22)"), "eq(a.b,\"x\")");
        assert_eq!(pct_decode("a+b%"), "a+b%");
        assert_eq!(pct_decode("%zz%4"), "%zz%4");
    }
}
