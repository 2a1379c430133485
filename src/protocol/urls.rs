//! The fixed endpoints of a session (PROTOCOL.md §1, §3, §5) and the device base URL.

use std::fmt;

use thiserror::Error;

/// `https://apic1` or `http://127.0.0.1:8000`: scheme, authority and an optional path prefix (for
/// a reverse proxy that serves the device below a path). Never holds credentials.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BaseUrl {
    secure: bool,
    /// `host[:port][/prefix]` without a trailing slash.
    rest: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum UrlError {
    #[error("the device URL must start with http:// or https://")]
    Scheme,
    #[error("the device URL has no host")]
    NoHost,
    #[error("the device URL must not carry a user, a query or a fragment")]
    Extra,
    #[error("the device URL contains whitespace or a control character")]
    Whitespace,
}

impl BaseUrl {
    pub fn parse(url: &str) -> Result<BaseUrl, UrlError> {
        let url = url.trim();
        let (secure, rest) = if let Some(r) = strip_prefix_ci(url, "https://") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(url, "http://") {
            (false, r)
        } else {
            return Err(UrlError::Scheme);
        };
        if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::Whitespace);
        }
        if rest.contains(['@', '?', '#']) {
            return Err(UrlError::Extra);
        }
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.starts_with('/') {
            return Err(UrlError::NoHost);
        }
        Ok(BaseUrl {
            secure,
            rest: rest.to_owned(),
        })
    }

    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// `https://host[:port][/prefix]`.
    pub fn origin_and_prefix(&self) -> String {
        format!(
            "{}://{}",
            if self.secure { "https" } else { "http" },
            self.rest
        )
    }

    /// The URL of a REST path (`path` starts with `/`).
    pub fn http(&self, path: &str) -> String {
        format!("{}{}", self.origin_and_prefix(), path)
    }

    /// The socket URL `wss://host/socket<token>` (`ws://` for plain http). The token follows
    /// `socket` directly, unencoded (§3). The result holds the token: never log it.
    pub fn socket(&self, token: &str) -> String {
        format!(
            "{}://{}/socket{}",
            if self.secure { "wss" } else { "ws" },
            self.rest,
            token
        )
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({})", self.origin_and_prefix())
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin_and_prefix())
    }
}

/// `POST /api/aaaLogin.json`, with `?gui-token-request=yes` when a `urlToken` is wanted.
pub fn login_path(gui_token: bool) -> &'static str {
    if gui_token {
        "/api/aaaLogin.json?gui-token-request=yes"
    } else {
        "/api/aaaLogin.json"
    }
}

/// `GET /api/aaaRefresh.json`.
pub const REFRESH_SESSION_PATH: &str = "/api/aaaRefresh.json";

/// `POST /api/aaaLogout.json`.
pub const LOGOUT_PATH: &str = "/api/aaaLogout.json";

/// `GET /api/subscriptionRefresh.json?id=<id>`; `None` if the id is not a decimal string.
pub fn subscription_refresh_path(id: &str) -> Option<String> {
    if !id.is_empty() && id.len() <= 40 && id.bytes().all(|b| b.is_ascii_digit()) {
        Some(format!("/api/subscriptionRefresh.json?id={id}"))
    } else {
        None
    }
}

/// `{"aaaUser":{"attributes":{"name":"<user>","pwd":"<password>"}}}`, properly escaped.
pub fn login_body(user: &str, password: &str) -> String {
    serde_json::json!({"aaaUser": {"attributes": {"name": user, "pwd": password}}}).to_string()
}

/// `{"aaaUser":{"attributes":{"name":"<user>"}}}`.
pub fn logout_body(user: &str) -> String {
    serde_json::json!({"aaaUser": {"attributes": {"name": user}}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_and_socket() {
        let b = BaseUrl::parse("https://apic1/").unwrap();
        assert_eq!(
            b.http("/api/aaaLogin.json"),
            "https://apic1/api/aaaLogin.json"
        );
        assert_eq!(b.socket("a+b/c="), "wss://apic1/socketa+b/c=");
        let b = BaseUrl::parse("http://127.0.0.1:8000").unwrap();
        assert_eq!(b.socket("T"), "ws://127.0.0.1:8000/socketT");
        assert!(!b.is_secure());
        let b = BaseUrl::parse("HTTPS://proxy.example/apic").unwrap();
        assert_eq!(b.socket("T"), "wss://proxy.example/apic/socketT");
        for bad in [
            "ftp://x",
            "https://",
            "https:///x",
            "https://u:p@apic",
            "https://apic?x=1",
            "https://ap ic",
            "apic1",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies_escape_their_values() {
        assert_eq!(
            login_body("ad\"min", "p\\w"),
            r#"{"aaaUser":{"attributes":{"name":"ad\"min","pwd":"p\\w"}}}"#
        );
        assert_eq!(
            logout_body("admin"),
            r#"{"aaaUser":{"attributes":{"name":"admin"}}}"#
        );
    }

    #[test]
    fn refresh_path_takes_decimal_ids_only() {
        assert_eq!(
            subscription_refresh_path("18374686685813276673").as_deref(),
            Some("/api/subscriptionRefresh.json?id=18374686685813276673")
        );
        assert_eq!(subscription_refresh_path("1&x=2"), None);
        assert_eq!(subscription_refresh_path(""), None);
    }
}
