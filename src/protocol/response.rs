//! Parsers for every answer and push the client meets: login / aaaRefresh, query and subscribe
//! answers, subscriptionRefresh, the error envelope, and notifications (PROTOCOL.md §1, §2, §4-§6).

use std::fmt;

use super::doc::{self, EntryError, MissingStatus};
use super::error::{DeviceError, MalformedError, ResponseError};
use super::mo::Mo;
use super::query::Format;

/// What a login (or aaaRefresh) answer says about the session.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginInfo {
    /// The session token. Never printed: `Debug` redacts it.
    pub token: String,
    /// `refreshTimeoutSeconds`: the idle timeout; refresh well before it.
    pub refresh_timeout_secs: u64,
    /// `maximumLifetimeSeconds` (APIC only): the hard lifetime from `creationTime`.
    pub maximum_lifetime_secs: Option<u64>,
    /// `creationTime`, seconds since the epoch.
    pub creation_time: Option<u64>,
    /// `urlToken`, only when the login asked `gui-token-request=yes`, and only when not empty
    /// (aaaRefresh may return an empty one: keep the previous). Never printed.
    pub url_token: Option<String>,
    pub version: Option<String>,
    pub user_name: Option<String>,
    /// `node`: the controller that answered (APIC).
    pub node: Option<String>,
}

impl fmt::Debug for LoginInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginInfo")
            .field("token", &"<redacted>")
            .field("refresh_timeout_secs", &self.refresh_timeout_secs)
            .field("maximum_lifetime_secs", &self.maximum_lifetime_secs)
            .field("creation_time", &self.creation_time)
            .field("url_token", &self.url_token.as_ref().map(|_| "<redacted>"))
            .field("version", &self.version)
            .field("user_name", &self.user_name)
            .field("node", &self.node)
            .finish()
    }
}

/// The refresh timeout assumed when a login answer does not say (every capture says 600).
pub const DEFAULT_REFRESH_TIMEOUT_SECS: u64 = 600;

/// A query answer; for a subscribe, also the device's subscription id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryResponse {
    pub format: Format,
    /// The scalar `subscriptionId` of a subscribe answer, kept as a decimal string.
    pub subscription_id: Option<String>,
    pub total_count: Option<u64>,
    /// The snapshot (`status:""`), with children when `rsp-subtree` asked for them.
    pub mos: Vec<Mo>,
    /// Entries that could not be read; the others are in `mos`.
    pub rejected: Vec<EntryError>,
}

/// One push frame from the socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub format: Format,
    /// Every subscription the frame is for (one change matching several arrives once).
    pub subscription_ids: Vec<String>,
    /// Every `imdata` entry, in order.
    pub mos: Vec<Mo>,
    /// Entries that could not be read; the others are in `mos`.
    pub rejected: Vec<EntryError>,
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// Reads an error answer. A body in the device envelope gives the device's code and text; any
/// other body (a proxy's HTML page, say) is not quoted, so nothing unexpected reaches a message.
pub fn parse_error(http_status: u16, body: &str) -> DeviceError {
    if let Ok(d) = doc::read("error response", body) {
        if let Some(Ok(raw)) = d.entries.first() {
            if raw.class_name == "error" {
                return DeviceError::classify(
                    http_status,
                    raw.attributes.get("code").cloned(),
                    raw.attributes.get("text").cloned().unwrap_or_default(),
                );
            }
        }
    }
    DeviceError::classify(http_status, None, String::new())
}

/// A 2xx answer can still carry an error envelope; this finds it.
fn envelope_error(http_status: u16, d: &doc::Doc) -> Option<DeviceError> {
    match d.entries.first() {
        Some(Ok(raw)) if raw.class_name == "error" => Some(DeviceError::classify(
            if is_success(http_status) {
                // Keep the device's own code as the status when the transport said 200.
                raw.attributes
                    .get("code")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(http_status)
            } else {
                http_status
            },
            raw.attributes.get("code").cloned(),
            raw.attributes.get("text").cloned().unwrap_or_default(),
        )),
        _ => None,
    }
}

fn secs(v: Option<&String>) -> Option<u64> {
    v.and_then(|s| s.trim().parse().ok())
}

/// Parses the answer to `aaaLogin` or `aaaRefresh` (APIC envelope, NX-OS bare shape, or XML).
pub fn parse_login(http_status: u16, body: &str) -> Result<LoginInfo, ResponseError> {
    if !is_success(http_status) {
        return Err(parse_error(http_status, body).into());
    }
    let d = doc::read("login response", body)?;
    if let Some(e) = envelope_error(http_status, &d) {
        return Err(e.into());
    }
    let raw = d
        .entries
        .iter()
        .filter_map(|e| e.as_ref().ok())
        .find(|r| r.class_name == "aaaLogin")
        .ok_or_else(|| MalformedError::new("login response", "no aaaLogin object"))?;
    let a = &raw.attributes;
    let token = a
        .get("token")
        .filter(|t| !t.is_empty())
        .cloned()
        .ok_or_else(|| MalformedError::new("login response", "aaaLogin without a token"))?;
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(MalformedError::new("login response", "token contains whitespace").into());
    }
    let refresh_timeout_secs = match a.get("refreshTimeoutSeconds") {
        None => DEFAULT_REFRESH_TIMEOUT_SECS,
        Some(v) => match secs(Some(v)) {
            Some(n) if n > 0 => n,
            _ => {
                return Err(MalformedError::new(
                    "login response",
                    "refreshTimeoutSeconds is not a positive number",
                )
                .into())
            }
        },
    };
    let opt = |k: &str| a.get(k).filter(|v| !v.is_empty()).cloned();
    Ok(LoginInfo {
        token,
        refresh_timeout_secs,
        maximum_lifetime_secs: secs(a.get("maximumLifetimeSeconds")).filter(|n| *n > 0),
        creation_time: secs(a.get("creationTime")),
        url_token: opt("urlToken"),
        version: opt("version"),
        user_name: opt("userName"),
        node: opt("node"),
    })
}

/// Parses a query or subscribe answer.
pub fn parse_query(http_status: u16, body: &str) -> Result<QueryResponse, ResponseError> {
    if !is_success(http_status) {
        return Err(parse_error(http_status, body).into());
    }
    let d = doc::read("query response", body)?;
    if let Some(e) = envelope_error(http_status, &d) {
        return Err(e.into());
    }
    if !d.has_imdata {
        return Err(MalformedError::new("query response", "no imdata").into());
    }
    let subscription_id = match d.ids {
        None => None,
        Some(Ok(mut ids)) if ids.len() == 1 => ids.pop(),
        Some(Ok(_)) => {
            return Err(
                MalformedError::new("query response", "subscriptionId is not a single id").into(),
            )
        }
        Some(Err(reason)) => return Err(MalformedError::new("query response", reason).into()),
    };
    let total_count = secs(d.total_count.as_ref());
    let (mos, rejected) = doc::finish(d.entries, MissingStatus::Snapshot);
    Ok(QueryResponse {
        format: d.format,
        subscription_id,
        total_count,
        mos,
        rejected,
    })
}

/// Parses the answer to `subscriptionRefresh` (200 `{"imdata":[]}`; 400 "Subscription refresh
/// timeout" when the subscription has lapsed).
pub fn parse_refresh(http_status: u16, body: &str) -> Result<(), ResponseError> {
    if !is_success(http_status) {
        return Err(parse_error(http_status, body).into());
    }
    if body.trim().is_empty() {
        return Ok(());
    }
    let d = doc::read("refresh response", body)?;
    if let Some(e) = envelope_error(http_status, &d) {
        return Err(e.into());
    }
    Ok(())
}

/// Parses one push frame, JSON or XML (detected per frame). Every `imdata` entry is read; an
/// entry that cannot be is reported in `rejected` while the others are kept. A frame without
/// subscription ids or `imdata` is malformed as a whole.
pub fn parse_notification(frame: &str) -> Result<Notification, MalformedError> {
    let d = doc::read("notification", frame)?;
    let subscription_ids = match d.ids {
        Some(Ok(ids)) if !ids.is_empty() => ids,
        Some(Ok(_)) => return Err(MalformedError::new("notification", "no subscription ids")),
        Some(Err(reason)) => return Err(MalformedError::new("notification", reason)),
        None => return Err(MalformedError::new("notification", "no subscriptionId")),
    };
    if !d.has_imdata {
        return Err(MalformedError::new("notification", "no imdata"));
    }
    let (mos, rejected) = doc::finish(d.entries, MissingStatus::Modified);
    Ok(Notification {
        format: d.format,
        subscription_ids,
        mos,
        rejected,
    })
}

/// Parses one MO on its own (`{"fvTenant":{"attributes":{...}}}`), as pushes quote them.
pub fn parse_mo(body: &str) -> Result<Mo, MalformedError> {
    let d = doc::read("object", body)?;
    let (mut mos, rejected) = doc::finish(d.entries, MissingStatus::Modified);
    if let Some(e) = rejected.into_iter().next() {
        return Err(MalformedError::new("object", e.reason));
    }
    match (mos.pop(), mos.is_empty()) {
        (Some(mo), true) => Ok(mo),
        _ => Err(MalformedError::new("object", "expected exactly one object")),
    }
}
