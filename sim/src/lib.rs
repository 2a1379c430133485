//! dme-sim: a strict Cisco APIC / NX-OS simulator for the event-subscription protocol
//! (login, cookies, the token-bound WebSocket, subscriptions, refresh, expiry, pushes in JSON
//! and XML, the devices' error answers, throttling) with a fault-injection API.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let cfg = dme_sim::SimConfig::for_tests(dme_sim::Flavor::Apic);
//! let sim = dme_sim::spawn(cfg).await?;
//! println!("{}", sim.base_url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod api;
pub mod catalog;
mod churn;
mod faults;
pub mod mit;
mod proxy;
pub mod query;
pub mod render;
mod routes;
mod seed;
mod socket;
pub mod state;
mod statics;
mod tls;
pub mod util;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::serve::ListenerExt;
use tokio::sync::watch;

use crate::catalog::Catalog;
use crate::state::State;
pub use crate::tls::{fingerprint, TlsInfo, TlsSource, PLAIN_HTTP_ANSWER};

/// Which device to behave like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Apic,
    Nxos,
}

impl FromStr for Flavor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "apic" | "aci" => Ok(Flavor::Apic),
            "nxos" | "nx-os" => Ok(Flavor::Nxos),
            _ => Err(format!("unknown flavor '{s}' (apic or nxos)")),
        }
    }
}

impl Flavor {
    pub fn as_str(self) -> &'static str {
        match self {
            Flavor::Apic => "apic",
            Flavor::Nxos => "nxos",
        }
    }
}

/// Everything the simulator can be told at start.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub flavor: Flavor,
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Seed for the fabric content and the churn.
    pub seed: u64,
    /// Changes per second made by the activity generator (0 = none).
    pub churn: f64,
    /// Approximate number of objects in the seeded tree.
    pub objects: usize,
    /// The advertised session `refreshTimeoutSeconds`.
    pub refresh_timeout: u64,
    /// Enforced token lifetime without aaaRefresh (default: `refresh_timeout`).
    pub idle_timeout: Option<Duration>,
    /// Hard session lifetime from login (default: 86400 s on APIC, none on NX-OS).
    pub max_lifetime: Option<Duration>,
    /// Default subscription lifetime (default: 60 s APIC, 90 s NX-OS).
    pub sub_lifetime: Option<Duration>,
    /// How long a token replaced by aaaRefresh keeps working.
    pub token_grace: Duration,
    /// Login and aaaRefresh requests per second per client address (0 = unlimited).
    pub throttle_per_sec: f64,
    pub user: String,
    pub password: String,
    /// Answer CORS for loopback origins (for browser tests on another port).
    pub cors: bool,
    pub www_dir: Option<PathBuf>,
    pub pkg_dir: Option<PathBuf>,
    /// Reverse-proxy `/api/*` and `/socket*` to this device instead of simulating.
    pub upstream: Option<String>,
    /// Stop by itself after this long.
    pub exit_after: Option<Duration>,
    /// Largest result without paging (beyond it: 400 "result dataset is too big").
    pub max_result: usize,
    /// Frames queued per socket before a slow client's socket is dropped.
    pub socket_queue: usize,
    /// Speak HTTPS and WSS (only) on the port, with this certificate.
    pub tls: Option<TlsSource>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig::new(Flavor::Apic)
    }
}

impl SimConfig {
    /// Device-like defaults for a flavor, listening on 127.0.0.1:8000.
    pub fn new(flavor: Flavor) -> SimConfig {
        SimConfig {
            flavor,
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            seed: 1,
            churn: 0.0,
            objects: 3000,
            refresh_timeout: 600,
            idle_timeout: None,
            max_lifetime: None,
            sub_lifetime: None,
            token_grace: Duration::from_secs(5),
            throttle_per_sec: 2.0,
            user: "admin".into(),
            password: "ins3965!".into(),
            cors: false,
            www_dir: None,
            pkg_dir: None,
            upstream: None,
            exit_after: None,
            max_result: 100_000,
            socket_queue: 1024,
            tls: None,
        }
    }

    /// Defaults for tests: ephemeral loopback port, a small fabric, no throttling, and a
    /// 120 s safety exit.
    pub fn for_tests(flavor: Flavor) -> SimConfig {
        SimConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            objects: 400,
            throttle_per_sec: 0.0,
            exit_after: Some(Duration::from_secs(120)),
            ..SimConfig::new(flavor)
        }
    }

    pub fn effective_max_lifetime(&self) -> Option<Duration> {
        match (self.max_lifetime, self.flavor) {
            (Some(d), _) => Some(d),
            (None, Flavor::Apic) => Some(Duration::from_secs(86_400)),
            (None, Flavor::Nxos) => None,
        }
    }

    pub fn default_sub_lifetime(&self) -> Duration {
        self.sub_lifetime.unwrap_or(match self.flavor {
            Flavor::Apic => Duration::from_secs(60),
            Flavor::Nxos => Duration::from_secs(90),
        })
    }
}

/// The shared simulator.
pub struct Sim {
    pub cfg: SimConfig,
    pub cat: Catalog,
    st: Mutex<State>,
    shutdown: watch::Sender<bool>,
    churn_rate: watch::Sender<f64>,
    pub started: Instant,
    upstream: Option<proxy::Upstream>,
    /// The certificate, when serving TLS.
    pub tls: Option<TlsInfo>,
}

impl Sim {
    /// Lock the state (a poisoned lock is recovered: no panics leak out).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn set_churn(&self, rate: f64) {
        let _ = self.churn_rate.send(rate.clamp(0.0, 1000.0));
    }

    pub fn churn(&self) -> f64 {
        *self.churn_rate.borrow()
    }
}

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    addr: SocketAddr,
    sim: Arc<Sim>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS)
    pub fn base_url(&self) -> String {
        let s = if self.sim.tls.is_some() { "s" } else { "" };
        format!("http{s}://{}", self.addr)
    }

    /// `ws://127.0.0.1:PORT/socket<token>` (`wss://` with TLS)
    pub fn ws_url(&self, token: &str) -> String {
        let s = if self.sim.tls.is_some() { "s" } else { "" };
        format!("ws{s}://{}/socket{}", self.addr, token)
    }

    /// The certificate presented, when serving TLS.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.sim.tls.as_ref()
    }

    pub fn sim(&self) -> &Arc<Sim> {
        &self.sim
    }

    /// Stop and wait for the server to finish.
    pub async fn shutdown(mut self) {
        let _ = self.sim.shutdown.send(true);
        if let Some(mut h) = self.done.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut h)
                .await
                .is_err()
            {
                h.abort();
            }
        }
    }

    /// Wait until the server is told to stop (`exit_after`, or another holder's shutdown),
    /// then give open connections at most 5 s to finish.
    pub async fn wait(&mut self) {
        let Some(mut h) = self.done.take() else {
            return;
        };
        let mut rx = self.sim.shutdown_signal();
        tokio::select! {
            _ = &mut h => return,
            _ = stopped(&mut rx) => {}
        }
        if tokio::time::timeout(Duration::from_secs(5), &mut h)
            .await
            .is_err()
        {
            h.abort();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.sim.shutdown.send(true);
    }
}

/// Start a simulator; returns once it listens.
pub async fn spawn(cfg: SimConfig) -> std::io::Result<SimHandle> {
    let tls = cfg.tls.as_ref().map(tls::Tls::load).transpose()?;
    let listener = tokio::net::TcpListener::bind(cfg.bind).await?;
    let addr = listener.local_addr()?;
    let cat = Catalog::load(cfg.flavor);
    let (mit, clock) = seed::build(&cfg, &cat);
    let state = State::new(&cfg, mit, clock);
    let upstream = match &cfg.upstream {
        Some(u) => Some(proxy::Upstream::new(u).map_err(std::io::Error::other)?),
        None => None,
    };
    let (shutdown, _) = watch::channel(false);
    let (churn_rate, _) = watch::channel(cfg.churn.clamp(0.0, 1000.0));
    let sim = Arc::new(Sim {
        cfg,
        cat,
        st: Mutex::new(state),
        shutdown,
        churn_rate,
        started: Instant::now(),
        upstream,
        tls: tls.as_ref().map(|t| t.info.clone()),
    });
    if let Some(d) = sim.cfg.exit_after {
        let s = sim.clone();
        tokio::spawn(async move {
            let mut rx = s.shutdown_signal();
            tokio::select! {
                _ = tokio::time::sleep(state::cap(d)) => { let _ = s.shutdown.send(true); }
                _ = crate::stopped(&mut rx) => {}
            }
        });
    }
    tokio::spawn(housekeeping(sim.clone()));
    if sim.upstream.is_none() {
        tokio::spawn(churn::run(sim.clone()));
    }
    let app = routes::router(sim.clone());
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let mut rx = sim.shutdown_signal();
    let stop = async move { crate::stopped(&mut rx).await };
    let done = match tls {
        None => tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await;
        }),
        Some(t) => {
            // `tap_io` also gives the connections the peer address (axum's ConnectInfo).
            let listener =
                tls::TlsListener::new(listener, &t, sim.shutdown_signal())?.tap_io(|_| {});
            tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await;
            })
        }
    };
    Ok(SimHandle {
        addr,
        sim,
        done: Some(done),
    })
}

async fn housekeeping(sim: Arc<Sim>) {
    let mut rx = sim.shutdown_signal();
    let mut iv = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = iv.tick() => {
                let mut st = sim.lock();
                st.tick(&sim.cat, Instant::now());
            }
            _ = crate::stopped(&mut rx) => break,
        }
    }
    // Close every socket so graceful shutdown can finish.
    sim.lock().restart(Instant::now());
}

/// Resolves once the shutdown flag is set (no lock guard is held across awaits).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}
