//! dme-sim over TLS: a real TLS client (rustls, the certificate pinned by its SHA-256
//! fingerprint) logs in, opens the socket over wss and gets a push; the strict answers hold;
//! plain HTTP on the TLS port gets a clear 400; certificates load from PEM files; the CLI prints
//! the https URL and the fingerprint.

use std::sync::Arc;
use std::time::Duration;

use dme_sim::{Flavor, SimHandle, TlsSource};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::Connector;

use crate::common::*;

/// Accepts exactly the certificate with this SHA-256 fingerprint (and checks the handshake's
/// signatures with it), as a client pinning a device's self-signed certificate does.
#[derive(Debug)]
struct Pinned {
    fingerprint: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if dme_sim::fingerprint(end_entity.as_ref()) == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "certificate fingerprint differs".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn pinned(fingerprint: &str) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned {
            fingerprint: fingerprint.to_string(),
            provider,
        }))
        .with_no_client_auth();
    Arc::new(cfg)
}

fn https(tls: &Arc<rustls::ClientConfig>) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .use_preconfigured_tls((**tls).clone())
        .build()
        .expect("client")
}

async fn start_tls(src: TlsSource) -> SimHandle {
    let mut c = cfg(Flavor::Apic);
    c.tls = Some(src);
    start(c).await
}

/// Logs in over https; returns the token.
async fn login(http: &reqwest::Client, base: &str) -> String {
    let r = send(
        http.post(format!("{base}/api/aaaLogin.json"))
            .body(login_body()),
    )
    .await;
    assert_eq!(r.status, 200, "login: {}", r.text);
    let cookie = r.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("Secure"),
        "over TLS the cookie is Secure: {cookie}"
    );
    r.attrs(0)["token"].as_str().expect("token").to_string()
}

async fn wss(
    sim: &SimHandle,
    tls: &Arc<rustls::ClientConfig>,
    token: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let fut = tokio_tungstenite::connect_async_tls_with_config(
        sim.ws_url(token),
        None,
        false,
        Some(Connector::Rustls(tls.clone())),
    );
    let (ws, _) = tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("socket answer in time")?;
    Ok(Ws(ws))
}

#[tokio::test]
async fn tls_login_socket_subscribe_and_push() {
    let sim = start_tls(TlsSource::SelfSigned).await;
    let base = sim.base_url();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    assert!(sim.ws_url("t").starts_with("wss://127.0.0.1:"));
    let info = sim.tls().expect("tls info").clone();
    assert!(info.self_signed && info.cert_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert_eq!(info.fingerprint.len(), 32 * 3 - 1, "{}", info.fingerprint);
    let tls = pinned(&info.fingerprint);
    let http = https(&tls);
    let token = login(&http, &base).await;
    let mut ws = wss(&sim, &tls, &token).await.expect("wss opens");
    let cookie = format!("APIC-cookie={token}");
    let r = send(
        http.get(format!("{base}/api/class/fvTenant.json?subscription=yes"))
            .header("Cookie", &cookie),
    )
    .await;
    assert_eq!(r.status, 200, "subscribe: {}", r.text);
    let id = r.json()["subscriptionId"].as_str().unwrap().to_string();
    let body = json!({"fvTenant": {"attributes": {"name": "tls-t1"}}});
    let r = send(
        http.post(format!("{base}/api/mo/uni.json"))
            .header("Cookie", &cookie)
            .body(body.to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "write: {}", r.text);
    let f = ws.frame_json().await;
    assert_eq!(ids(&f), vec![id]);
    let (class, a) = entry(&f["imdata"][0]);
    assert_eq!(class, "fvTenant");
    assert_eq!(a["dn"], "uni/tn-tls-t1");
    assert_eq!(a["status"], "created");
    // Churn reaches the socket too.
    for cls in ["faultInst", "ethpmPhysIf", "l1PhysIf", "fvCEp", "fvAEPg"] {
        let r = send(
            http.get(format!(
                "{base}/api/class/{cls}.json?page-size=1&subscription=yes"
            ))
            .header("Cookie", &cookie),
        )
        .await;
        assert_eq!(r.status, 200, "subscribe {cls}: {}", r.text);
    }
    sim_call_tls(&http, &base, "churn?rate=50").await;
    let f = ws.frame_json().await;
    assert!(f["imdata"].as_array().is_some_and(|a| !a.is_empty()));
    ws.close().await;
    sim.shutdown().await;
}

async fn sim_call_tls(http: &reqwest::Client, base: &str, what: &str) {
    let r = send(http.post(format!("{base}/_sim/{what}"))).await;
    assert_eq!(r.status, 200, "/_sim/{what}: {}", r.text);
}

#[tokio::test]
async fn tls_keeps_the_strict_answers() {
    let sim = start_tls(TlsSource::SelfSigned).await;
    let base = sim.base_url();
    let tls = pinned(&sim.tls().unwrap().fingerprint);
    let http = https(&tls);
    // No cookie: 403 in the device's envelope.
    let r = send(http.get(format!("{base}/api/class/fvTenant.json"))).await;
    assert_eq!(r.status, 403);
    assert!(r.error().1.contains("Need a valid webtoken cookie"));
    // A made-up token opens no socket.
    match wss(&sim, &tls, "bm90LWEtdG9rZW4=").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 403)
        }
        Err(e) => panic!("expected a 403 answer, got {e}"),
        Ok(_) => panic!("a bad token opened a socket"),
    }
    // A subscription needs the session's open socket, over TLS as over plain HTTP.
    let token = login(&http, &base).await;
    let r = send(
        http.get(format!("{base}/api/class/fvTenant.json?subscription=yes"))
            .header("Cookie", format!("APIC-cookie={token}")),
    )
    .await;
    assert_eq!(r.status, 405, "{}", r.text);
    // A client pinning another certificate refuses this one.
    let other = pinned(&["00"; 32].join(":"));
    let r = https(&other)
        .post(format!("{base}/api/aaaLogin.json"))
        .body(login_body())
        .send()
        .await;
    assert!(r.is_err(), "the pin must fail");
    sim.shutdown().await;
}

#[tokio::test]
async fn plain_http_to_the_tls_port_gets_a_clear_400() {
    let sim = start_tls(TlsSource::SelfSigned).await;
    let mut tcp = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    tcp.write_all(b"POST /api/aaaLogin.json HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer))
        .await
        .expect("answered and closed within 5 s, not a hang")
        .expect("read");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    assert!(text.ends_with(dme_sim::PLAIN_HTTP_ANSWER), "{text}");
    // The same through an HTTP client.
    let url = sim.base_url().replacen("https://", "http://", 1);
    let r = send(http().get(format!("{url}/api/class/fvTenant.json"))).await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("speaks HTTPS"), "{}", r.text);
    // The port still serves TLS afterwards.
    let tls = pinned(&sim.tls().unwrap().fingerprint);
    login(&https(&tls), &sim.base_url()).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn tls_from_pem_files() {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let dir = std::env::temp_dir().join(format!("dme-sim-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let sim = start_tls(TlsSource::Files {
        cert: cert.clone(),
        key: key.clone(),
    })
    .await;
    let info = sim.tls().unwrap().clone();
    assert!(!info.self_signed);
    assert_eq!(info.fingerprint, dme_sim::fingerprint(made.cert.der()));
    assert_eq!(
        info.cert_pem.replace('\r', ""),
        made.cert.pem().replace('\r', "")
    );
    let tls = pinned(&info.fingerprint);
    login(&https(&tls), &sim.base_url()).await;
    sim.shutdown().await;
    // A key file without a key is a typed start error, not a panic.
    std::fs::write(&key, "not a key").unwrap();
    let mut c = cfg(Flavor::Apic);
    c.tls = Some(TlsSource::Files {
        cert,
        key: key.clone(),
    });
    let e = dme_sim::spawn(c).await.err().expect("refused");
    assert!(e.to_string().contains("key.pem"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn cli_tls_prints_the_https_url_and_fingerprint() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let exe = env!("CARGO_BIN_EXE_dme-sim");
    let mut child = tokio::process::Command::new(exe)
        .args(["--tls", "--bind", "127.0.0.1:0", "--exit-after", "20"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    while printed.len() < 4 {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("prints in time")
            .unwrap()
            .expect("a line");
        printed.push(line);
    }
    let url = &printed[0];
    let base = url
        .strip_prefix("dme-sim listening on https://127.0.0.1:")
        .unwrap_or_else(|| panic!("{url}"));
    assert!(base.parse::<u16>().is_ok(), "{url}");
    let fp = printed[1]
        .strip_prefix("dme-sim TLS certificate SHA-256 fingerprint ")
        .unwrap_or_else(|| panic!("{}", printed[1]))
        .to_string();
    assert_eq!(
        printed[2],
        "dme-sim self-signed certificate, made at start:"
    );
    assert_eq!(printed[3], "-----BEGIN CERTIFICATE-----");
    let tls = pinned(&fp);
    login(&https(&tls), &url["dme-sim listening on ".len()..]).await;
    child.kill().await.unwrap();
}
