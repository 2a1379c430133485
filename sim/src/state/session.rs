//! Sessions: login, tokens (and a refreshed token's grace), aaaRefresh, authentication, the
//! login throttle, and ending a session.

use std::net::IpAddr;
use std::time::Instant;

use rand::Rng;

use super::{AuthErr, Bucket, EndReason, Out, Session, State, TokenRef, MAX_SESSIONS};

impl State {
    /// A new opaque token: base64 with `+`, `/` and `=` (like older APIC releases).
    pub fn new_token(&mut self) -> String {
        loop {
            let mut b = [0u8; 94];
            self.token_rng.fill(&mut b[..]);
            let t = b64(&b);
            if (t.contains('+') || t.contains('/')) && !self.tokens.contains_key(&t) {
                return t;
            }
        }
    }

    pub fn new_short_id(&mut self) -> String {
        let mut b = [0u8; 16];
        self.token_rng.fill(&mut b[..]);
        b64(&b)
    }

    pub fn throttle_ok(&mut self, ip: IpAddr, now: Instant) -> bool {
        let rate = self.throttle_rate;
        if rate <= 0.0 {
            return true;
        }
        let cap = rate.max(1.0);
        if self.throttle.len() > 10_000 {
            self.throttle.clear();
        }
        let b = self.throttle.entry(ip).or_insert(Bucket {
            tokens: cap,
            at: now,
        });
        let dt = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + dt * rate).min(cap);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub fn login(&mut self, user: &str, gui_token: bool, now: Instant) -> u64 {
        if self.sessions.len() >= MAX_SESSIONS {
            // Bounded: the oldest session makes room.
            if let Some(old) = self
                .sessions
                .values()
                .min_by_key(|s| s.created)
                .map(|s| s.id)
            {
                self.end_session(old, EndReason::Logout, now);
            }
        }
        let id = self.next_session;
        self.next_session += 1;
        let token = self.new_token();
        let url_token = if gui_token {
            Some(self.new_short_id())
        } else {
            None
        };
        let session_id = self.new_short_id();
        self.tokens.insert(
            token.clone(),
            TokenRef {
                session: id,
                grace_until: None,
            },
        );
        self.sessions.insert(
            id,
            Session {
                id,
                user: user.to_string(),
                token,
                url_token,
                created: now,
                created_unix: crate::util::now_ms() / 1000,
                token_expires: now + self.idle,
                session_id,
                socket: None,
            },
        );
        self.counters.logins += 1;
        id
    }

    /// aaaRefresh: a new token; the old one keeps working for the grace period.
    pub fn refresh_session(&mut self, sid: u64, now: Instant) -> Result<(), AuthErr> {
        let Some(s) = self.sessions.get(&sid) else {
            return Err(AuthErr::NoCookie);
        };
        if let Some(ml) = self.max_life {
            if now >= s.created + ml {
                self.end_session(sid, EndReason::Timeout, now);
                return Err(AuthErr::Timeout);
            }
        }
        let token = self.new_token();
        let grace = now + self.token_grace;
        let idle = self.idle;
        let Some(s) = self.sessions.get_mut(&sid) else {
            return Err(AuthErr::NoCookie);
        };
        let old = std::mem::replace(&mut s.token, token.clone());
        s.token_expires = now + idle;
        if let Some(r) = self.tokens.get_mut(&old) {
            r.grace_until = Some(grace);
        }
        self.tokens.insert(
            token,
            TokenRef {
                session: sid,
                grace_until: None,
            },
        );
        self.counters.refreshes += 1;
        Ok(())
    }

    /// Find the session for the request's tokens (tried in order).
    pub fn auth(
        &mut self,
        tokens: &[String],
        challenge: Option<&str>,
        now: Instant,
    ) -> Result<u64, AuthErr> {
        let mut err = AuthErr::NoCookie;
        for t in tokens {
            if let Some(r) = self.tokens.get(t).copied() {
                if r.grace_until.is_some_and(|g| now > g) {
                    self.tokens.remove(t);
                    self.bury(t.clone(), now);
                    err = AuthErr::Timeout;
                    continue;
                }
                let Some(s) = self.sessions.get(&r.session) else {
                    self.tokens.remove(t);
                    continue;
                };
                let expired =
                    now >= s.token_expires || self.max_life.is_some_and(|ml| now >= s.created + ml);
                if expired {
                    self.end_session(r.session, EndReason::Timeout, now);
                    err = AuthErr::Timeout;
                    continue;
                }
                if let Some(u) = &s.url_token {
                    if challenge != Some(u.as_str()) {
                        err = AuthErr::Challenge;
                        continue;
                    }
                }
                return Ok(r.session);
            } else if self.dead_tokens.contains_key(t) {
                err = AuthErr::Timeout;
            }
        }
        Err(err)
    }

    pub(super) fn bury(&mut self, token: String, now: Instant) {
        if self.dead_tokens.len() >= 10_000 {
            self.dead_tokens.clear();
        }
        self.dead_tokens.insert(token, now);
    }

    /// The session a token (current or within its grace) belongs to.
    pub fn session_of_token(&self, token: &str) -> Option<u64> {
        self.tokens.get(token).map(|r| r.session)
    }

    /// Socket lookup for `/socket<token>`: same rules as REST but no challenge.
    pub fn auth_socket(&mut self, token: &str, now: Instant) -> Result<u64, AuthErr> {
        let challenge = self
            .tokens
            .get(token)
            .and_then(|r| self.sessions.get(&r.session))
            .and_then(|s| s.url_token.clone());
        self.auth(&[token.to_string()], challenge.as_deref(), now)
    }

    pub fn end_session(&mut self, sid: u64, why: EndReason, now: Instant) {
        let Some(mut s) = self.sessions.remove(&sid) else {
            return;
        };
        let toks: Vec<String> = self
            .tokens
            .iter()
            .filter(|(_, r)| r.session == sid)
            .map(|(t, _)| t.clone())
            .collect();
        for t in toks {
            self.tokens.remove(&t);
            if why == EndReason::Timeout {
                self.bury(t, now);
            }
        }
        if let Some(sock) = s.socket.take() {
            let msg = match why {
                EndReason::Restart => Out::Abort,
                _ => Out::Close(1000, String::new()),
            };
            let _ = sock.tx.try_send(msg);
        }
        self.subs.retain(|_, sub| sub.session != sid);
    }
}

/// Standard base64 with padding.
pub fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn b64() {
        assert_eq!(super::b64(b"foob"), "Zm9vYg==");
        assert_eq!(super::b64(b"foobar"), "Zm9vYmFy");
    }
}
