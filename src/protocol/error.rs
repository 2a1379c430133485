//! Typed errors of the protocol layer: what the device said (a [`DeviceError`], classified), what
//! we could not parse (a [`MalformedError`]), and queries we refuse to build ([`QueryError`]).
//!
//! No message here ever carries a session token: device texts are the device's own, and our own
//! messages name fields and positions, never values that could be credentials.

use thiserror::Error;

/// What kind of failure a device answer means, which decides what the engine does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// 401 at login: user or password rejected. Retrying will not help.
    AuthRejected,
    /// 403 "Token was invalid (Error: Token timeout)" or "Need a valid webtoken cookie": the
    /// session is gone; log in again.
    SessionExpired,
    /// 405 "unable to locate opened web socket": rebuild the socket and every subscription.
    SocketNotFound,
    /// 400 "Subscription refresh timeout": that subscription has lapsed; resubscribe it.
    RefreshRejected,
    /// 400 "Request failed, unresolved class for X".
    UnknownClass,
    /// 400 (or 503) "Unable to process the query, result dataset is too big".
    ResultTooBig,
    /// 503: overloaded or throttled; back off.
    Throttled,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// The stable code exposed to JavaScript.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::AuthRejected => "AUTH_REJECTED",
            ErrorKind::SessionExpired => "SESSION_EXPIRED",
            ErrorKind::SocketNotFound => "SOCKET_NOT_FOUND",
            ErrorKind::RefreshRejected => "REFRESH_REJECTED",
            ErrorKind::UnknownClass => "UNKNOWN_CLASS",
            ErrorKind::ResultTooBig => "RESULT_TOO_BIG",
            ErrorKind::Throttled => "THROTTLED",
            ErrorKind::Other => "DEVICE_ERROR",
        }
    }
}

/// An error answer from the device: HTTP status, the device's `code` and `text` (verbatim), and
/// its classification.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{} (HTTP {http_status}{}): {text}", kind.code(), code.as_deref().map(|c| format!(", device code {c}")).unwrap_or_default())]
pub struct DeviceError {
    pub kind: ErrorKind,
    pub http_status: u16,
    /// The `code` attribute of the device's error object, when there was one.
    pub code: Option<String>,
    /// The device's text (empty when the body carried none).
    pub text: String,
}

impl DeviceError {
    /// Classifies an answer by its HTTP status and the device's text (PROTOCOL.md §2).
    pub fn classify(http_status: u16, code: Option<String>, text: String) -> DeviceError {
        let kind = classify(http_status, &text);
        DeviceError {
            kind,
            http_status,
            code,
            text,
        }
    }
}

fn classify(status: u16, text: &str) -> ErrorKind {
    let lower = text.to_ascii_lowercase();
    if lower.contains("unable to locate opened web socket") || status == 405 {
        return ErrorKind::SocketNotFound;
    }
    if lower.contains("subscription refresh timeout") {
        return ErrorKind::RefreshRejected;
    }
    if lower.contains("unresolved class") {
        return ErrorKind::UnknownClass;
    }
    if lower.contains("dataset is too big") {
        return ErrorKind::ResultTooBig;
    }
    match status {
        401 => ErrorKind::AuthRejected,
        403 => {
            // Every session-related 403 names the token, the cookie or the session. A 403 whose
            // text says something else (an access rule, say) is not a reason to log in again.
            let about_session = lower.is_empty()
                || ["token", "cookie", "session", "login"]
                    .iter()
                    .any(|w| lower.contains(w));
            if about_session {
                ErrorKind::SessionExpired
            } else {
                ErrorKind::Other
            }
        }
        503 => ErrorKind::Throttled,
        _ => ErrorKind::Other,
    }
}

/// Input we could not make sense of. `what` names the document (notification, login response,
/// ...), `detail` says what was wrong without quoting credentials.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("malformed {what}: {detail}")]
pub struct MalformedError {
    pub what: &'static str,
    pub detail: String,
}

impl MalformedError {
    pub(crate) fn new(what: &'static str, detail: impl Into<String>) -> MalformedError {
        MalformedError {
            what,
            detail: detail.into(),
        }
    }
}

/// The result of parsing an HTTP answer: the device said no, or the body made no sense.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ResponseError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Malformed(#[from] MalformedError),
}

/// A query we refuse to build: it would not mean what the caller wrote, or could inject
/// parameters or path segments into the request.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum QueryError {
    #[error("invalid class name {0:?}: a class name is a letter followed by letters and digits")]
    InvalidClass(String),
    #[error("invalid dn: {0}")]
    InvalidDn(&'static str),
    #[error("invalid value for {option}: {reason}")]
    InvalidValue {
        option: &'static str,
        reason: &'static str,
    },
    #[error("request line of {0} bytes exceeds the 4096-byte limit devices accept")]
    TooLong(usize),
    #[error("unrecognised query path: {0}")]
    BadPath(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_the_protocol_table() {
        let c = |s, t: &str| DeviceError::classify(s, None, t.to_owned()).kind;
        assert_eq!(
            c(
                401,
                "Username or password is incorrect - FAILED local authentication"
            ),
            ErrorKind::AuthRejected
        );
        assert_eq!(
            c(403, "Token was invalid (Error: Token timeout)"),
            ErrorKind::SessionExpired
        );
        assert_eq!(c(403, "Need a valid webtoken cookie (named APIC-Cookie) or a signed request with signature in the cookie APIC-Request-Signature for all REST API requests"), ErrorKind::SessionExpired);
        assert_eq!(c(403, ""), ErrorKind::SessionExpired);
        assert_eq!(
            c(403, "Unable to access the object: rule denies"),
            ErrorKind::Other
        );
        assert_eq!(c(405, "Subscription request failed, unable to locate opened web socket. Please re-login to the application"), ErrorKind::SocketNotFound);
        assert_eq!(
            c(400, "Request failed, unresolved class for fvTenantt"),
            ErrorKind::UnknownClass
        );
        assert_eq!(
            c(
                400,
                "Unable to process the query, result dataset is too big"
            ),
            ErrorKind::ResultTooBig
        );
        assert_eq!(
            c(
                503,
                "Unable to process the query, result dataset is too big"
            ),
            ErrorKind::ResultTooBig
        );
        assert_eq!(
            c(400, "Subscription refresh timeout"),
            ErrorKind::RefreshRejected
        );
        assert_eq!(c(503, ""), ErrorKind::Throttled);
        assert_eq!(c(500, "boom"), ErrorKind::Other);
    }

    #[test]
    fn display_keeps_status_code_and_text() {
        let e = DeviceError::classify(
            403,
            Some("403".into()),
            "Token was invalid (Error: Token timeout)".into(),
        );
        assert_eq!(
            e.to_string(),
            "SESSION_EXPIRED (HTTP 403, device code 403): Token was invalid (Error: Token timeout)"
        );
    }
}
