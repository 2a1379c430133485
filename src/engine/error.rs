//! The engine's one error type. Every variant maps to a stable code for JavaScript
//! ([`EngineError::code`]). No variant ever holds a token, a password or a socket URL.

use std::fmt;

use thiserror::Error;

use crate::protocol::{DeviceError, ErrorKind, MalformedError, QueryError, ResponseError};

/// Why an HTTP request produced no answer, as the shell saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportFailure {
    /// Connection refused, DNS failure, network down.
    Network,
    /// The browser refused to show the answer (cross-origin without CORS). Indistinguishable from
    /// a network error in `fetch`, so the shell only reports it when it knows.
    Cors,
    /// No answer within the request's timeout.
    Timeout,
    /// The request was aborted (the shell or page went away).
    Aborted,
}

impl TransportFailure {
    pub fn code(self) -> &'static str {
        match self {
            TransportFailure::Network => "NETWORK",
            TransportFailure::Cors => "CORS_BLOCKED",
            TransportFailure::Timeout => "TIMEOUT",
            TransportFailure::Aborted => "ABORTED",
        }
    }
}

/// Why a socket would not open, as far as the engine can tell: the close code the runtime gave,
/// and whether the session's `aaaRefresh`, sent right after, was answered. A refused socket with
/// a working HTTP side points at something between client and device that refuses WebSocket
/// upgrades (a proxy), not at the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SocketFailure {
    /// The close code reported for the socket (1006: closed without a handshake), if any.
    pub close_code: Option<u16>,
    /// Whether the device answered the session check over HTTP (`None`: not checked). A 503 or
    /// an error answer counts as an answer: the HTTP path works.
    pub http_works: Option<bool>,
}

impl fmt::Display for SocketFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.close_code {
            Some(c) => write!(f, "close code {c}")?,
            None => f.write_str("no close code")?,
        }
        match self.http_works {
            Some(true) => {
                f.write_str("; the device answers over HTTP, so the socket itself is refused")
            }
            Some(false) => f.write_str("; the device does not answer over HTTP either"),
            None => Ok(()),
        }
    }
}

/// Everything that can go wrong, typed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EngineError {
    /// The device answered with an error (its status, code and text).
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// An answer or frame we could not read.
    #[error(transparent)]
    Malformed(#[from] MalformedError),
    /// A query the engine refused to send.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// No answer at all.
    #[error("request failed: {}", .0.code())]
    Transport(TransportFailure),
    /// The socket closed before it opened (device down, a proxy refusing upgrades, no socket
    /// support in the runtime), with what is known of the cause.
    #[error("the event socket could not be opened ({0})")]
    SocketFailed(SocketFailure),
    /// The adopted session ended and there is no password to log in again.
    #[error("the adopted session expired and cannot be renewed without credentials")]
    SessionLost,
    /// `max_reconnect_attempts` consecutive attempts failed.
    #[error("gave up after {0} failed connection attempts")]
    RetryCap(u32),
    /// The engine was closed or logged out.
    #[error("the engine is closed")]
    Closed,
    /// A handle the engine does not know.
    #[error("unknown subscription handle")]
    UnknownHandle,
    /// The configuration cannot work (no controller URL, say).
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
}

impl EngineError {
    /// The stable code shown to JavaScript.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Device(e) => e.kind.code(),
            EngineError::Malformed(_) => "PROTOCOL",
            EngineError::Query(_) => "INVALID_QUERY",
            EngineError::Transport(t) => t.code(),
            EngineError::SocketFailed(_) => "SOCKET_FAILED",
            EngineError::SessionLost => "SESSION_EXPIRED",
            EngineError::RetryCap(_) => "RETRY_CAP",
            EngineError::Closed => "CLOSED",
            EngineError::UnknownHandle => "UNKNOWN_HANDLE",
            EngineError::InvalidConfig(_) => "INVALID_CONFIG",
        }
    }

    /// The device's classification, when the device said it.
    pub fn device_kind(&self) -> Option<ErrorKind> {
        match self {
            EngineError::Device(e) => Some(e.kind),
            _ => None,
        }
    }
}

impl From<ResponseError> for EngineError {
    fn from(e: ResponseError) -> EngineError {
        match e {
            ResponseError::Device(d) => EngineError::Device(d),
            ResponseError::Malformed(m) => EngineError::Malformed(m),
        }
    }
}
