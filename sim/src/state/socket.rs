//! Sockets: one per session, attached, detached, dropped or forgotten by a fault, and raw frames.

use std::collections::HashSet;

use tokio::sync::mpsc;

use super::{DropMode, Out, SockRef, State};

impl State {
    /// A socket opened for a session: it replaces any previous one.
    pub fn attach_socket(&mut self, sid: u64) -> Option<(u64, mpsc::Receiver<Out>)> {
        let conn = self.next_conn;
        self.next_conn += 1;
        let (tx, rx) = mpsc::channel(self.socket_queue);
        let s = self.sessions.get_mut(&sid)?;
        if let Some(old) = s.socket.replace(SockRef { conn, tx }) {
            let _ = old.tx.try_send(Out::Close(1000, String::new()));
        }
        self.counters.sockets_opened += 1;
        Some((conn, rx))
    }

    /// A socket went away: its session's subscriptions go with it.
    pub fn detach_socket(&mut self, sid: u64, conn: u64) {
        if let Some(s) = self.sessions.get_mut(&sid) {
            if s.socket.as_ref().is_some_and(|k| k.conn == conn) {
                s.socket = None;
                self.subs.retain(|_, sub| sub.session != sid);
            }
        }
    }

    pub fn has_open_socket(&self, sid: u64) -> bool {
        self.sessions
            .get(&sid)
            .and_then(|s| s.socket.as_ref())
            .is_some_and(|k| !k.tx.is_closed())
    }

    /// Close sockets (all, or a user's); sessions stay valid. `mode`: abort (no close frame),
    /// close (a close frame), or forget: the connection stays open but the device no longer
    /// knows it, so pushes stop silently and a subscribe answers 405, as after a failover that
    /// the client did not see.
    pub fn drop_sockets(&mut self, user: Option<&str>, mode: DropMode) -> usize {
        let mut n = 0;
        let ids: Vec<u64> = self
            .sessions
            .values()
            .filter(|s| user.into_iter().all(|u| s.user == u))
            .map(|s| s.id)
            .collect();
        for sid in ids {
            if let Some(s) = self.sessions.get_mut(&sid) {
                if let Some(sock) = s.socket.take() {
                    match mode {
                        DropMode::Abort => drop(sock.tx.try_send(Out::Abort)),
                        DropMode::Close => {
                            drop(sock.tx.try_send(Out::Close(1001, "going away".into())))
                        }
                        DropMode::Forget => self.forgotten.push(sock),
                    }
                    n += 1;
                }
            }
            self.subs.retain(|_, sub| sub.session != sid);
        }
        n
    }

    /// Send one raw (malformed) frame to every open socket; returns how many got it.
    pub fn send_raw(&mut self, text: &str) -> usize {
        let mut n = 0;
        for s in self.sessions.values() {
            if let Some(sock) = &s.socket {
                if sock.tx.try_send(Out::Text(text.to_string())).is_ok() {
                    n += 1;
                }
            }
        }
        n
    }

    pub fn socket_count(&self) -> usize {
        self.sessions
            .values()
            .filter(|s| s.socket.is_some())
            .count()
    }

    pub fn users(&self) -> HashSet<String> {
        self.sessions.values().map(|s| s.user.clone()).collect()
    }
}
