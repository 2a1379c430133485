//! The event WebSocket at `/socket<token>`: the upgrade, the token check, and the task that
//! writes a session's frames until either side ends it.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::http::StatusCode;
use axum::response::Response;

use crate::api::{auth_err, err, plain};
use crate::render::Format;
use crate::state::{AuthErr, Out, TEXT_THROTTLED};
use crate::Sim;

/// Takes the WebSocket upgrade out of a request, or answers 400 in the device envelope. The
/// request's parts stay available (the proxy needs its path).
pub(crate) async fn upgrade(
    req: Request,
) -> Result<(WebSocketUpgrade, axum::http::request::Parts), Response> {
    let (mut parts, _body) = req.into_parts();
    match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(w) => Ok((w, parts)),
        Err(_) => Err(err(
            Format::Json,
            400,
            "Invalid request: WebSocket upgrade expected",
        )),
    }
}

/// `/socket<token>`: the session's event socket (it replaces an older one of the session).
pub async fn socket(sim: &Arc<Sim>, token: &str, req: Request) -> Response {
    let ws = match upgrade(req).await {
        Ok((w, _)) => w,
        Err(r) => return r,
    };
    let attached = {
        let mut st = sim.lock();
        let now = Instant::now();
        if st.faults.down_until.is_some_and(|t| now < t) {
            return err(Format::Json, 503, TEXT_THROTTLED);
        }
        if st.faults.refuse_sockets > 0 {
            st.faults.refuse_sockets -= 1;
            st.counters.sockets_refused += 1;
            // As a proxy that does not pass WebSockets answers: a plain page, no envelope.
            return plain(StatusCode::FORBIDDEN, "WebSocket upgrades are not allowed");
        }
        match st.auth_socket(token, now) {
            Ok(sid) => st.attach_socket(sid).map(|(conn, rx)| (sid, conn, rx)),
            Err(e) => return auth_err(Format::Json, e),
        }
    };
    let Some((sid, conn, rx)) = attached else {
        return auth_err(Format::Json, AuthErr::NoCookie);
    };
    let sim = sim.clone();
    ws.on_upgrade(move |socket| socket_task(sim, sid, conn, rx, socket))
}

async fn socket_task(
    sim: Arc<Sim>,
    sid: u64,
    conn: u64,
    mut rx: tokio::sync::mpsc::Receiver<Out>,
    mut ws: WebSocket,
) {
    let mut stop = sim.shutdown_signal();
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Out::Text(t)) => {
                    if ws.send(Message::Text(t.into())).await.is_err() {
                        break;
                    }
                }
                Some(Out::Close(code, reason)) => {
                    let _ = ws
                        .send(Message::Close(Some(axum::extract::ws::CloseFrame { code, reason: reason.into() })))
                        .await;
                    break;
                }
                Some(Out::Abort) | None => break,
            },
            inc = ws.recv() => match inc {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                // The protocol has no client messages: ignore them.
                Some(Ok(_)) => {}
            },
            _ = crate::stopped(&mut stop) => break,
        }
    }
    sim.lock().detach_socket(sid, conn);
}
