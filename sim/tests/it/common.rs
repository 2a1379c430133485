//! Test helpers: start a simulator, a plain HTTP client that handles the token by hand, and a
//! WebSocket reader with timeouts. Only loopback is contacted; every wait is bounded.

#![allow(dead_code)]

use std::time::Duration;

use dme_sim::{Flavor, SimConfig, SimHandle};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const USER: &str = "admin";
pub const PWD: &str = "ins3965!";

pub fn cfg(flavor: Flavor) -> SimConfig {
    let mut c = SimConfig::for_tests(flavor);
    c.exit_after = Some(Duration::from_secs(90));
    c
}

pub async fn start(cfg: SimConfig) -> SimHandle {
    dme_sim::spawn(cfg).await.expect("sim starts")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    /// The error attributes of an error envelope.
    pub fn error(&self) -> (String, String) {
        let v = self.json();
        let a = &v["imdata"][0]["error"]["attributes"];
        (
            a["code"].as_str().unwrap_or("").into(),
            a["text"].as_str().unwrap_or("").into(),
        )
    }
    pub fn attrs(&self, i: usize) -> Value {
        let v = self.json();
        let o = v["imdata"][i].as_object().expect("object").clone();
        let (_, inner) = o.into_iter().next().expect("one class");
        inner["attributes"].clone()
    }
    pub fn total(&self) -> usize {
        self.json()["totalCount"]
            .as_str()
            .expect("totalCount string")
            .parse()
            .expect("number")
    }
}

pub async fn send(rb: reqwest::RequestBuilder) -> Resp {
    let r = rb.send().await.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.expect("body");
    Resp {
        status,
        text,
        headers,
    }
}

#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
    pub token: String,
    pub url_token: Option<String>,
}

pub fn login_body() -> String {
    format!(r#"{{"aaaUser":{{"attributes":{{"name":"{USER}","pwd":"{PWD}"}}}}}}"#)
}

impl Client {
    pub async fn login(base: &str) -> Client {
        Self::login_with(base, "").await
    }

    pub async fn login_with(base: &str, query: &str) -> Client {
        let http = http();
        let r = send(
            http.post(format!("{base}/api/aaaLogin.json{query}"))
                .body(login_body()),
        )
        .await;
        assert_eq!(r.status, 200, "login: {}", r.text);
        let a = r.attrs(0);
        let token = a["token"].as_str().expect("token").to_string();
        let url_token = a
            .get("urlToken")
            .and_then(|u| u.as_str())
            .map(str::to_string);
        Client {
            base: base.to_string(),
            http,
            token,
            url_token,
        }
    }

    fn req(&self, m: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut rb = self
            .http
            .request(m, format!("{}{}", self.base, path))
            .header("Cookie", format!("APIC-cookie={}", self.token));
        if let Some(u) = &self.url_token {
            rb = rb.header("APIC-challenge", u);
        }
        rb
    }

    pub async fn get(&self, path: &str) -> Resp {
        send(self.req(reqwest::Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: &str) -> Resp {
        send(self.req(reqwest::Method::POST, path).body(body.to_string())).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        send(self.req(reqwest::Method::DELETE, path)).await
    }

    pub async fn socket(&self) -> Ws {
        let url = format!(
            "{}/socket{}",
            self.base.replacen("http://", "ws://", 1),
            self.token
        );
        let (ws, _) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(url),
        )
        .await
        .expect("socket connect in time")
        .expect("socket connects");
        Ws(ws)
    }

    /// Subscribe; returns (response, id).
    pub async fn subscribe(&self, path: &str) -> (Resp, String) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let r = self.get(&format!("{path}{sep}subscription=yes")).await;
        assert_eq!(r.status, 200, "subscribe {path}: {}", r.text);
        let id = if path.contains(".xml") {
            let t = &r.text;
            let i = t.find("subscriptionId=\"").expect("id attr") + 16;
            t[i..i + t[i..].find('"').unwrap()].to_string()
        } else {
            r.json()["subscriptionId"]
                .as_str()
                .expect("string id")
                .to_string()
        };
        (r, id)
    }

    pub async fn write(&self, dn: &str, body: Value) -> Resp {
        let r = self
            .post(&format!("/api/mo/{dn}.json"), &body.to_string())
            .await;
        assert_eq!(r.status, 200, "write {dn}: {}", r.text);
        r
    }
}

pub struct Ws(pub WebSocketStream<MaybeTlsStream<TcpStream>>);

pub enum Next {
    Text(String),
    Closed,
    Timeout,
}

impl Ws {
    pub async fn next(&mut self, within: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.0.next()).await {
                Err(_) => return Next::Timeout,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => {
                    return Next::Closed
                }
                Ok(Some(Ok(Message::Text(t)))) => return Next::Text(t.as_str().to_string()),
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The next text frame, or panic.
    pub async fn frame(&mut self) -> String {
        match self.next(Duration::from_secs(5)).await {
            Next::Text(t) => t,
            Next::Closed => panic!("socket closed while waiting for a frame"),
            Next::Timeout => panic!("no frame within 5 s"),
        }
    }

    pub async fn frame_json(&mut self) -> Value {
        let t = self.frame().await;
        serde_json::from_str(&t).unwrap_or_else(|e| panic!("frame not JSON ({e}): {t}"))
    }

    /// True when no frame arrives for `d` (and the socket stays open).
    pub async fn quiet(&mut self, d: Duration) -> bool {
        matches!(self.next(d).await, Next::Timeout)
    }

    /// True when the socket closes within `d` (frames before the close are skipped).
    pub async fn closes(&mut self, d: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Next::Closed => return true,
                Next::Timeout => return false,
                Next::Text(_) => continue,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.0.send(Message::Close(None)).await;
    }
}

/// Sim-side helper: `/_sim/` call, JSON answer.
pub async fn sim_call(base: &str, what: &str) -> Value {
    let r = send(http().post(format!("{base}/_sim/{what}"))).await;
    assert!(r.status == 200, "/_sim/{what}: {} {}", r.status, r.text);
    r.json()
}

pub async fn stats(base: &str) -> Value {
    send(http().get(format!("{base}/_sim/stats"))).await.json()
}

/// The captures shipped with the project (for shape comparisons).
pub fn capture(id: &str) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/captures.jsonl"
    );
    let text = std::fs::read_to_string(path).expect("captures.jsonl");
    for line in text.lines() {
        let v: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) => continue,
        };
        if v["id"] == id {
            return v;
        }
    }
    panic!("no capture {id}");
}

/// The one object of a push entry: (class, attributes).
pub fn entry(v: &Value) -> (String, Value) {
    let o = v.as_object().expect("entry object");
    let (k, inner) = o.iter().next().expect("class key");
    (k.clone(), inner["attributes"].clone())
}

pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

pub fn ids(frame: &Value) -> Vec<String> {
    frame["subscriptionId"]
        .as_array()
        .expect("ids array")
        .iter()
        .map(|i| i.as_str().expect("string id").to_string())
        .collect()
}

pub async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
