//! `--upstream <url>`: reverse-proxy the REST API and the socket to a real device, so a page
//! served by dme-sim can watch a real fabric same-origin (no CORS). Devices usually have
//! self-signed certificates: the upstream certificate is not verified (dme-sim is a loopback
//! development tool).

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::ws::Message as AMsg;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as TMsg;

use crate::api::{err, MAX_BODY};
use crate::render::Format;
use crate::Sim;

pub struct Upstream {
    /// `https://host:port` (no trailing slash).
    base: String,
    http: reqwest::Client,
    tls: Arc<rustls::ClientConfig>,
}

#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Request headers worth forwarding.
const FORWARD: &[&str] = &[
    "cookie",
    "devcookie",
    "apic-challenge",
    "content-type",
    "accept",
];

impl Upstream {
    pub fn new(url: &str) -> Result<Upstream, String> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "--upstream must be an http:// or https:// URL, got '{url}'"
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Upstream {
            base,
            http,
            tls: Arc::new(tls),
        })
    }

    pub async fn forward(&self, sim: &Arc<Sim>, req: Request) -> Response {
        if req.uri().path().starts_with("/socket") {
            return self.socket(sim, req).await;
        }
        let enc = Format::of_path(req.uri().path());
        let (parts, body) = req.into_parts();
        let pq = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let Ok(body) = to_bytes(body, MAX_BODY).await else {
            return err(enc, 400, "Invalid request: body too large or unreadable");
        };
        let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
            .unwrap_or(reqwest::Method::GET);
        let mut rb = self.http.request(method, format!("{}{}", self.base, pq));
        for (k, v) in parts.headers.iter() {
            if FORWARD.contains(&k.as_str()) {
                rb = rb.header(k.as_str(), v.as_bytes());
            }
        }
        if !body.is_empty() {
            rb = rb.body(body.to_vec());
        }
        let up = match rb.send().await {
            Ok(r) => r,
            Err(e) => {
                return err(
                    enc,
                    502,
                    &format!("dme-sim upstream error: {}", e.without_url()),
                )
            }
        };
        let status = StatusCode::from_u16(up.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let ct = up
            .headers()
            .get("content-type")
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
        let cookies: Vec<String> = up
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(rewrite_cookie)
            .collect();
        let bytes = match up.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return err(
                    enc,
                    502,
                    &format!("dme-sim upstream error: {}", e.without_url()),
                )
            }
        };
        let mut r = Response::new(Body::from(bytes));
        *r.status_mut() = status;
        if let Some(ct) = ct {
            r.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        for c in cookies {
            if let Ok(v) = HeaderValue::from_str(&c) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        let _ = sim;
        r
    }

    async fn socket(&self, sim: &Arc<Sim>, req: Request) -> Response {
        let (ws, parts) = match crate::socket::upgrade(req).await {
            Ok(u) => u,
            Err(r) => return r,
        };
        let pq = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let url = if let Some(h) = self.base.strip_prefix("https://") {
            format!("wss://{h}{pq}")
        } else {
            format!("ws://{}{pq}", self.base.trim_start_matches("http://"))
        };
        // Open the device's socket before answering 101, so a subscribe right after the
        // client's open finds it.
        let connector = url
            .starts_with("wss://")
            .then(|| tokio_tungstenite::Connector::Rustls(self.tls.clone()));
        let upstream =
            match tokio_tungstenite::connect_async_tls_with_config(url, None, false, connector)
                .await
            {
                Ok((s, _)) => s,
                Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                    let code = resp.status().as_u16();
                    let text = resp
                        .body()
                        .as_ref()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default();
                    let mut r = Response::new(Body::from(text));
                    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
                    return r;
                }
                Err(e) => {
                    return err(
                        Format::Json,
                        502,
                        &format!("dme-sim upstream socket error: {e}"),
                    )
                }
            };
        let mut stop = sim.shutdown_signal();
        ws.on_upgrade(move |client| async move {
            let (mut up_tx, mut up_rx) = upstream.split();
            let (mut cl_tx, mut cl_rx) = client.split();
            loop {
                tokio::select! {
                    m = up_rx.next() => match m {
                        Some(Ok(TMsg::Text(t))) => {
                            if cl_tx.send(AMsg::Text(t.as_str().to_string().into())).await.is_err() { break; }
                        }
                        Some(Ok(TMsg::Binary(b))) => {
                            if cl_tx.send(AMsg::Binary(b.to_vec().into())).await.is_err() { break; }
                        }
                        Some(Ok(TMsg::Close(f))) => {
                            let frame = f.map(|f| axum::extract::ws::CloseFrame { code: f.code.into(), reason: f.reason.as_str().to_string().into() });
                            let _ = cl_tx.send(AMsg::Close(frame)).await;
                            break;
                        }
                        Some(Ok(_)) => {}
                        None | Some(Err(_)) => break,
                    },
                    m = cl_rx.next() => match m {
                        Some(Ok(AMsg::Text(t))) => {
                            if up_tx.send(TMsg::Text(t.as_str().to_string().into())).await.is_err() { break; }
                        }
                        Some(Ok(AMsg::Binary(b))) => {
                            if up_tx.send(TMsg::Binary(b.to_vec().into())).await.is_err() { break; }
                        }
                        Some(Ok(AMsg::Close(_))) | None | Some(Err(_)) => {
                            let _ = up_tx.send(TMsg::Close(None)).await;
                            break;
                        }
                        Some(Ok(_)) => {}
                    },
                    _ = crate::stopped(&mut stop) => break,
                }
            }
        })
    }
}

/// Served over plain http, a `Secure` cookie would be dropped by browsers, and a `Domain`
/// naming the device would not match: strip both.
pub fn rewrite_cookie(c: &str) -> String {
    c.split(';')
        .map(str::trim)
        .filter(|p| {
            let l = p.to_ascii_lowercase();
            l != "secure" && !l.starts_with("domain=")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn cookie() {
        assert_eq!(
            super::rewrite_cookie("APIC-cookie=a+b/c=; path=/; HttpOnly; Secure; Domain=apic1"),
            "APIC-cookie=a+b/c=; path=/; HttpOnly"
        );
    }
}
