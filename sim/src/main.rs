//! `dme-sim`: run the simulator from the command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use dme_sim::{Flavor, SimConfig, TlsSource};

/// A strict Cisco APIC / NX-OS simulator for the event-subscription protocol (login, the
/// token-bound WebSocket, subscriptions, refresh, expiry, pushes, errors, throttling), with a
/// fault-injection API under /_sim/. Prints `dme-sim listening on http://ADDR` once ready
/// (`https://ADDR` with --tls).
#[derive(Parser, Debug)]
#[command(
    name = "dme-sim",
    version,
    about,
    long_about = None,
    after_help = "Prints `dme-sim listening on http://ADDR` on stdout once it listens (with --tls: \
                  `https://ADDR`, then the certificate's SHA-256 fingerprint).\n\
                  REST under /api/, the WebSocket at /socket<token>, fault injection and the true \
                  state under /_sim/ (drop-sockets, restart, expire-session, expire-subscription, \
                  fail-refresh, fail-503, delay, silence, duplicate, lose, strip-status, batch, \
                  malformed, churn, reset-faults, write, delete, truth, stats): see sim/README.md."
)]
struct Cli {
    /// Device to behave like: apic (ACI controller) or nxos (Nexus switch).
    #[arg(long, default_value = "apic", value_parser = parse_flavor)]
    flavor: Flavor,

    /// Address to listen on (port 0 picks a free port; the bound URL is printed).
    #[arg(long, default_value = "127.0.0.1:8000")]
    bind: SocketAddr,

    /// Activity generator: changes per second (0 = a quiet fabric; at most 1000).
    #[arg(long, default_value_t = 0.0)]
    churn: f64,

    /// Seed for the fabric content and the churn (same seed, same fabric).
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Approximate number of objects in the seeded tree (e.g. 100000 for a big fabric).
    #[arg(long, default_value_t = 3000)]
    objects: usize,

    /// Seconds a token lives without aaaRefresh (default: the --refresh-timeout value).
    #[arg(long, value_name = "SECS")]
    idle_timeout: Option<f64>,

    /// Hard session lifetime in seconds from login; refresh fails with 403 after it
    /// (default: 86400 on apic, none on nxos).
    #[arg(long, value_name = "SECS")]
    max_lifetime: Option<f64>,

    /// The session refreshTimeoutSeconds advertised by aaaLogin.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    refresh_timeout: u64,

    /// Default subscription lifetime without subscriptionRefresh (default: 60 apic, 90 nxos).
    #[arg(long, value_name = "SECS")]
    sub_lifetime: Option<f64>,

    /// Seconds a token replaced by aaaRefresh keeps working.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    token_grace: f64,

    /// Login and aaaRefresh requests allowed per second per client address (0 = unlimited);
    /// beyond it the answer is 503.
    #[arg(long, value_name = "PER_SEC", default_value_t = 2.0)]
    throttle: f64,

    /// User name accepted by aaaLogin.
    #[arg(long, default_value = "admin")]
    user: String,

    /// Password accepted by aaaLogin.
    #[arg(long, default_value = "ins3965!")]
    password: String,

    /// Serve this directory at / (the demo page), same-origin with the fabric.
    #[arg(long, value_name = "DIR")]
    www: Option<PathBuf>,

    /// Serve this directory (wasm-pack output) at /pkg/.
    #[arg(long, value_name = "DIR")]
    pkg: Option<PathBuf>,

    /// Reverse-proxy /api/* and /socket* to this device (e.g. https://apic1) instead of
    /// simulating; its certificate is not verified.
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,

    /// Answer CORS (with credentials) for loopback origins http://127.0.0.1:*, http://localhost:*.
    #[arg(long)]
    cors: bool,

    /// Stop by itself after this many seconds (tests and scripts pass it).
    #[arg(long, value_name = "SECS")]
    exit_after: Option<f64>,

    /// Largest unpaged query result; beyond it: 400 "result dataset is too big".
    #[arg(long, default_value_t = 100_000)]
    max_result: usize,

    /// Frames queued per socket before a slow client's socket is dropped.
    #[arg(long, default_value_t = 1024)]
    socket_queue: usize,

    /// Speak HTTPS and WSS (only) on the port, like the devices, with a self-signed certificate
    /// made at start (its SHA-256 fingerprint and PEM are printed), unless --cert / --key.
    #[arg(long)]
    tls: bool,

    /// With --key: serve TLS with this certificate chain (PEM) instead of a self-signed one.
    #[arg(long, value_name = "PEM", requires = "key")]
    cert: Option<PathBuf>,

    /// With --cert: the certificate's private key (PEM).
    #[arg(long, value_name = "PEM", requires = "cert")]
    key: Option<PathBuf>,
}

fn parse_flavor(s: &str) -> Result<Flavor, String> {
    s.parse()
}

fn secs(v: f64) -> Duration {
    Duration::from_secs_f64(if v.is_finite() {
        v.clamp(0.0, 1e9)
    } else {
        0.0
    })
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let cfg = SimConfig {
        flavor: cli.flavor,
        bind: cli.bind,
        seed: cli.seed,
        churn: cli.churn,
        objects: cli.objects,
        refresh_timeout: cli.refresh_timeout,
        idle_timeout: cli.idle_timeout.map(secs),
        max_lifetime: cli.max_lifetime.map(secs),
        sub_lifetime: cli.sub_lifetime.map(secs),
        token_grace: secs(cli.token_grace),
        throttle_per_sec: cli.throttle,
        user: cli.user,
        password: cli.password,
        cors: cli.cors,
        www_dir: cli.www,
        pkg_dir: cli.pkg,
        upstream: cli.upstream,
        exit_after: cli.exit_after.map(secs),
        max_result: cli.max_result,
        socket_queue: cli.socket_queue,
        tls: match (cli.cert, cli.key) {
            (Some(cert), Some(key)) => Some(TlsSource::Files { cert, key }),
            _ => cli.tls.then_some(TlsSource::SelfSigned),
        },
    };
    let mut handle = match dme_sim::spawn(cfg).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("dme-sim: cannot start: {e}");
            std::process::exit(1);
        }
    };
    println!("dme-sim listening on {}", handle.base_url());
    if let Some(t) = handle.tls() {
        println!(
            "dme-sim TLS certificate SHA-256 fingerprint {}",
            t.fingerprint
        );
        if t.self_signed {
            print!(
                "dme-sim self-signed certificate, made at start:\n{}",
                t.cert_pem
            );
        }
    }
    let sim = handle.sim().clone();
    tokio::select! {
        _ = handle.wait() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    drop(sim);
    handle.shutdown().await;
}
