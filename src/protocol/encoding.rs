//! What may travel in a request line: the minimal percent-encoding real APICs accept, the
//! character classes of filters, includes and `order-by`, and the checks of class names and DNs.
//! Queries call these at render time; the client's other requests (and dme-sim) use the same rules.

use super::error::QueryError;

/// Characters that stay literal in a query value; everything else is percent-encoded.
pub(super) fn is_literal(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '_'
                | '.'
                | '~'
                | ','
                | '('
                | ')'
                | '|'
                | '['
                | ']'
                | '/'
                | ':'
                | '='
                | '!'
                | '*'
                | '@'
                | '$'
                | ';'
                | '\''
        )
}

pub(super) fn push_encoded(out: &mut String, c: char) {
    if is_literal(c) {
        out.push(c);
    } else {
        let mut buf = [0u8; 4];
        for b in c.encode_utf8(&mut buf).bytes() {
            out.push('%');
            out.push(
                char::from_digit(u32::from(b >> 4), 16)
                    .unwrap_or('0')
                    .to_ascii_uppercase(),
            );
            out.push(
                char::from_digit(u32::from(b & 0xf), 16)
                    .unwrap_or('0')
                    .to_ascii_uppercase(),
            );
        }
    }
}

pub(super) fn percent_decode(v: &str) -> Result<String, QueryError> {
    let bad = QueryError::InvalidValue {
        option: "query-target-filter",
        reason: "bad percent-escape",
    };
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(bad.clone())?;
            let s = std::str::from_utf8(hex).map_err(|_| bad.clone())?;
            out.push(u8::from_str_radix(s, 16).map_err(|_| bad.clone())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad)
}

/// Outside quotes a filter is function names, `class.property` names, commas and parentheses.
pub(super) fn is_filter_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '(' | ')' | ',' | '.' | '_' | '-')
}

pub(super) fn is_include_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

pub(super) fn is_order_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '|')
}

/// A class name is `[A-Za-z][A-Za-z0-9]*`.
pub fn is_class_name(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic()) && cs.all(|c| c.is_ascii_alphanumeric())
}

pub(super) fn check_class(s: &str) -> Result<(), QueryError> {
    if is_class_name(s) {
        Ok(())
    } else {
        Err(QueryError::InvalidClass(s.chars().take(64).collect()))
    }
}

/// A DN is a path (`uni/tn-acme/BD-web`, `sys/intf/phys-[eth1/1]`, `.../subnet-[10.0.0.1/24]`,
/// `.../actsession-CwqM+/a==`); it travels literally, so anything that would end the path, start
/// a query or fragment, climb out of `/api/mo/`, or need escaping is refused.
pub fn check_dn(dn: &str) -> Result<(), QueryError> {
    if dn.is_empty() {
        return Err(QueryError::InvalidDn("empty"));
    }
    if dn.starts_with('/') || dn.ends_with('/') {
        return Err(QueryError::InvalidDn("starts or ends with '/'"));
    }
    for c in dn.chars() {
        if c.is_whitespace() || c.is_control() {
            return Err(QueryError::InvalidDn(
                "contains whitespace or a control character",
            ));
        }
        if matches!(
            c,
            '?' | '#' | '&' | '%' | '"' | '\\' | '<' | '>' | '`' | '{' | '}' | '^'
        ) || !c.is_ascii()
        {
            return Err(QueryError::InvalidDn(
                "contains a character that would change the request",
            ));
        }
    }
    // A URL parser (the browser's fetch included) splits the path on every '/', brackets or
    // not, and resolves "." and ".." segments: "uni/x-[/../../aaaLogout]" would leave /api/mo/.
    if dn.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(QueryError::InvalidDn(
            "has an empty, '.' or '..' path segment",
        ));
    }
    // Path segments outside brackets: no empty, "." or ".." segment.
    let mut depth = 0i32;
    let mut seg = String::new();
    let check_seg = |seg: &str| {
        if seg.is_empty() || seg == "." || seg == ".." {
            Err(QueryError::InvalidDn(
                "has an empty, '.' or '..' path segment",
            ))
        } else {
            Ok(())
        }
    };
    for c in dn.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            '/' if depth <= 0 => {
                check_seg(&seg)?;
                seg.clear();
                continue;
            }
            _ => {}
        }
        seg.push(c);
    }
    check_seg(&seg)?;
    if depth != 0 {
        return Err(QueryError::InvalidDn("unbalanced brackets"));
    }
    Ok(())
}
