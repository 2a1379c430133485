//! HTTPS and WSS on the listening port, as the devices speak: the certificate (made at start or
//! read from PEM files), the TLS listener axum serves from, and a clear answer to plain HTTP.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Where the certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// A self-signed certificate for 127.0.0.1, ::1 and localhost, made at start.
    SelfSigned,
    /// A certificate chain and its private key, PEM files.
    Files { cert: PathBuf, key: PathBuf },
}

/// The certificate a TLS simulator presents (public: printed at start for clients to pin).
#[derive(Debug, Clone)]
pub struct TlsInfo {
    /// The end-entity certificate, PEM.
    pub cert_pem: String,
    /// SHA-256 of the end-entity certificate's DER, `AB:CD:...` as `openssl x509 -fingerprint`.
    pub fingerprint: String,
    pub self_signed: bool,
}

/// The server side: rustls' configuration and what is printed about it.
pub struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    pub info: TlsInfo,
}

/// The body of the answer to a plain HTTP request on the TLS port.
pub const PLAIN_HTTP_ANSWER: &str =
    "This port speaks HTTPS: use https:// for the API and wss:// for the socket.\n";

/// A TLS handshake (or the plain-HTTP answer) must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; more connections wait to be accepted.
const MAX_HANDSHAKES: usize = 256;

/// `AB:CD:..` (upper-case hex, colon-separated) of a DER certificate's SHA-256.
pub fn fingerprint(der: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    let hex: Vec<String> = d.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

impl Tls {
    pub fn load(src: &TlsSource) -> io::Result<Tls> {
        let (chain, key, self_signed) = match src {
            TlsSource::SelfSigned => {
                let names = vec!["127.0.0.1".into(), "::1".into(), "localhost".into()];
                let made = rcgen::generate_simple_self_signed(names).map_err(io::Error::other)?;
                let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
                (vec![made.cert.der().clone()], key.into(), true)
            }
            TlsSource::Files { cert, key } => {
                let bad = |what: &str, p: &PathBuf, e: rustls::pki_types::pem::Error| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{what} {}: {e}", p.display()),
                    )
                };
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| bad("cannot read the certificate file", cert, e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad("no PEM certificate in", cert, e))?;
                if chain.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("no certificate in {}", cert.display()),
                    ));
                }
                let k = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| bad("no PEM private key in", key, e))?;
                (chain, k, false)
            }
        };
        let leaf = chain[0].as_ref();
        let info = TlsInfo {
            cert_pem: pem("CERTIFICATE", leaf),
            fingerprint: fingerprint(leaf),
            self_signed,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            config: Arc::new(config),
            info,
        })
    }
}

/// PEM armour for one DER object.
fn pem(label: &str, der: &[u8]) -> String {
    let b64 = crate::state::b64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Connections that finished their TLS handshake, for `axum::serve`. Handshakes run in tasks
/// of their own, so a slow or silent client holds up no one.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accept on `tcp` until `stop` is set.
    pub fn new(tcp: TcpListener, tls: &Tls, mut stop: watch::Receiver<bool>) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(tls.config.clone());
        let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let (tcp_stream, peer) = tokio::select! {
                    r = tcp.accept() => match r {
                        Ok(c) => c,
                        // Out of descriptors and the like: wait, as axum's own listener does.
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    _ = crate::stopped(&mut stop) => break,
                    _ = tx.closed() => break,
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let done =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(acceptor, tcp_stream))
                            .await;
                    drop(permit);
                    if let Ok(Some(s)) = done {
                        let _ = tx.send((s, peer)).await;
                    }
                });
            }
        });
        Ok(TlsListener { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept loop ended (shutting down): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// The TLS handshake, unless the client speaks plain HTTP: every TLS connection opens with a
/// handshake record (first byte 0x16), so anything else gets the 400 that says so.
async fn handshake(acceptor: TlsAcceptor, tcp: TcpStream) -> Option<TlsStream<TcpStream>> {
    let _ = tcp.set_nodelay(true);
    let mut first = [0u8; 1];
    if tcp.peek(&mut first).await.ok()? == 0 {
        return None;
    }
    if first[0] != 0x16 {
        answer_plain_http(tcp).await;
        return None;
    }
    acceptor.accept(tcp).await.ok()
}

/// Read the request head (bounded), answer 400, close. Reading first lets the client see the
/// answer rather than a reset.
async fn answer_plain_http(mut tcp: TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut n = 0;
    while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
        match tcp.read(&mut buf[n..]).await {
            Ok(0) | Err(_) => return,
            Ok(k) => n += k,
        }
    }
    let head = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        PLAIN_HTTP_ANSWER.len()
    );
    if tcp.write_all(head.as_bytes()).await.is_err()
        || tcp.write_all(PLAIN_HTTP_ANSWER.as_bytes()).await.is_err()
    {
        return;
    }
    let _ = tcp.shutdown().await;
    // Drain what the client still sends (a body) briefly so the close is clean.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while matches!(tcp.read(&mut buf).await, Ok(k) if k > 0) {}
    })
    .await;
}
