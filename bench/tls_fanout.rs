//! Fan-out over TLS against plain HTTP, side by side in one run: meteord
//! serves a TLS subscriber port and a plain one (PlainSubscriberPort), and
//! this program takes turns with the two, on a fresh server each time.
//! The shared load generator speaks no TLS, hence this client.
//!
//! cargo build --release && cargo run --release --example tls-fanout -- \
//!     [--bin target/release/meteord] [--subs 5000] [--msgs 200] [--runs 3]
//!
//! Per kind and run: RSS per idle subscriber (the server's VmRSS before and
//! after connecting them), publish→deliver latency p50/p99 at 20 msg/s, and
//! deliveries/s for a burst of --msgs messages published back to back.
//! Prints one JSON line per measurement and a summary of medians with the
//! TLS/plain ratios.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[path = "support.rs"]
mod support;

use rustls::pki_types::ServerName;
use support::{arg, cpu_ms, rss_kib, Server};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// What every subscriber reports into.
#[derive(Default)]
struct Tally {
    /// Messages received, all subscribers together.
    received: AtomicU64,
    /// Subscribers whose response head has arrived.
    connected: AtomicU64,
    /// While set, each delivery's latency is recorded.
    sampling: AtomicBool,
    latencies: Mutex<Vec<u64>>,
}

/// Read a subscription, counting messages (texts `m<send time in µs>`).
async fn subscribe<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, id: usize, tally: Arc<Tally>) {
    let request = format!("GET /push/s{id}/xhrinteractive/bench HTTP/1.1\r\nHost: b\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return;
    }
    let _ = stream.flush().await;
    let mut pending: Vec<u8> = Vec::with_capacity(256);
    let mut chunk = vec![0u8; 16384];
    let mut head = false;
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if !head {
            head = true;
            tally.connected.fetch_add(1, Ordering::Relaxed);
        }
        pending.extend_from_slice(&chunk[..n]);
        // Each message's text is "m<digits>" in quotes.
        let mut start = 0;
        while let Some(at) = memchr::memmem::find(&pending[start..], b"\"m") {
            let digits = start + at + 2;
            let Some(end) = pending[digits..].iter().position(|b| *b == b'"') else {
                break;
            };
            let sent: u64 = std::str::from_utf8(&pending[digits..digits + end])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            tally.received.fetch_add(1, Ordering::Relaxed);
            if tally.sampling.load(Ordering::Relaxed) {
                let latency = micros_now().saturating_sub(sent);
                tally.latencies.lock().unwrap().push(latency);
            }
            start = digits + end + 1;
        }
        pending.drain(
            ..start
                .max(pending.len().saturating_sub(64))
                .min(pending.len()),
        );
    }
}

/// A fresh server with a TLS subscriber port and a plain one beside it,
/// everything else as configured by default.
fn start_server(bin: &str, data: &std::path::Path) -> Server {
    let plain_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let extra = ["-TLS", "self-signed", "-PlainSubscriberPort", &plain_port];
    Server::start(bin, data, (0, 0), &extra)
}

/// Publish `count` messages on one connection, `gap` apart (zero: back to
/// back, pipelined), and wait for every reply.
fn publish(control: SocketAddr, count: usize, gap: Duration) {
    let mut stream = std::net::TcpStream::connect(control).unwrap();
    stream.set_nodelay(true).unwrap();
    let reader = stream.try_clone().unwrap();
    let replies = std::thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        for _ in 0..count {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert!(line.starts_with("OK"), "{line}");
        }
    });
    for _ in 0..count {
        let line = format!("ADDMESSAGE bench m{}\r\n", micros_now());
        stream.write_all(line.as_bytes()).unwrap();
        if !gap.is_zero() {
            std::thread::sleep(gap);
        }
    }
    replies.join().unwrap();
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[derive(Clone, Copy)]
enum Kind {
    Plain,
    Tls,
}

/// A figure of a run, with its label.
type Metric = (&'static str, fn(&Run) -> f64);

struct Run {
    rss_per_sub_kib: f64,
    p50_ms: f64,
    p99_ms: f64,
    deliveries_per_s: f64,
    /// The server's CPU time (user and system) per million deliveries of
    /// the burst: its own cost, apart from the client's on the same cores.
    server_cpu_ms_per_m: f64,
    /// This program's CPU time (the subscribers reading and decrypting) per
    /// million deliveries: it shares the cores with the server.
    client_cpu_ms_per_m: f64,
}

async fn run(server: &Server, kind: Kind, subs: usize, msgs: usize) -> Run {
    let tally = Arc::new(Tally::default());
    // Offer the suites in the order browsers do (Chrome, Firefox and
    // Safari all put AES-128-GCM first); rustls' own client would ask for
    // AES-256 first, which no browser subscriber does.
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|suite| match suite.suite() {
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => 0,
            rustls::CipherSuite::TLS13_AES_256_GCM_SHA384 => 1,
            _ => 2,
        });
    let provider = Arc::new(provider);
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let pid = server.child.id();
    let before = rss_kib(pid);
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..subs {
        let tally = tally.clone();
        let connector = connector.clone();
        let (addr, tls) = match kind {
            Kind::Plain => (server.plain.expect("a plain port"), false),
            Kind::Tls => (server.subscriber, true),
        };
        tasks.spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            if tls {
                let name = ServerName::try_from("localhost").unwrap();
                // rustls reads the socket 4 KiB at a time; the plain
                // client (and a browser) reads up to 16 KiB. Read the same
                // amounts for both kinds, so the comparison is the server's.
                let tcp = tokio::io::BufReader::with_capacity(16384, tcp);
                let stream = connector.connect(name, tcp).await.unwrap();
                subscribe(stream, id, tally).await
            } else {
                subscribe(tcp, id, tally).await
            }
        });
        // Don't flood the accept queue.
        if id % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    while tally.connected.load(Ordering::Relaxed) < subs as u64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_per_sub_kib = (rss_kib(pid) as f64 - before as f64) / subs as f64;

    // Latency at a calm 20 msg/s.
    tally.sampling.store(true, Ordering::Relaxed);
    let control = server.control;
    let latency_msgs = 40;
    let expect = tally.received.load(Ordering::Relaxed) + (latency_msgs * subs) as u64;
    tokio::task::spawn_blocking(move || publish(control, latency_msgs, Duration::from_millis(50)))
        .await
        .unwrap();
    while tally.received.load(Ordering::Relaxed) < expect {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tally.sampling.store(false, Ordering::Relaxed);
    let mut latencies = std::mem::take(&mut *tally.latencies.lock().unwrap());
    latencies.sort_unstable();

    // Deliveries per second for a burst.
    let expect = tally.received.load(Ordering::Relaxed) + (msgs * subs) as u64;
    let started = Instant::now();
    let cpu_before = cpu_ms(pid);
    let own_before = cpu_ms(std::process::id());
    tokio::task::spawn_blocking(move || publish(control, msgs, Duration::ZERO))
        .await
        .unwrap();
    while tally.received.load(Ordering::Relaxed) < expect {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let deliveries_per_s = (msgs * subs) as f64 / started.elapsed().as_secs_f64();
    let server_cpu_ms_per_m = (cpu_ms(pid) - cpu_before) / (msgs * subs) as f64 * 1e6;
    let client_cpu_ms_per_m =
        (cpu_ms(std::process::id()) - own_before) / (msgs * subs) as f64 * 1e6;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    tokio::time::sleep(Duration::from_secs(1)).await;
    Run {
        rss_per_sub_kib,
        p50_ms: percentile(&latencies, 0.50) as f64 / 1000.0,
        p99_ms: percentile(&latencies, 0.99) as f64 / 1000.0,
        deliveries_per_s,
        server_cpu_ms_per_m,
        client_cpu_ms_per_m,
    }
}

/// The bench trusts whatever certificate its own server shows.
#[derive(Debug)]
struct AnyCertificate;

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = arg(&args, "--bin", "target/release/meteord");
    let subs: usize = arg(&args, "--subs", "5000").parse().unwrap();
    let msgs: usize = arg(&args, "--msgs", "200").parse().unwrap();
    let runs: usize = arg(&args, "--runs", "3").parse().unwrap();
    // For profiling one kind alone: --only plain | --only tls.
    let only = args
        .iter()
        .any(|a| a == "--only")
        .then(|| arg(&args, "--only", ""));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut results: Vec<(&str, Run)> = Vec::new();
    for round in 0..runs {
        // Alternate which kind goes first, so warm-up favours neither.
        let order = if round % 2 == 0 {
            [Kind::Plain, Kind::Tls]
        } else {
            [Kind::Tls, Kind::Plain]
        };
        for kind in order {
            let name = match kind {
                Kind::Plain => "plain",
                Kind::Tls => "tls",
            };
            if only.as_deref().is_some_and(|only| only != name) {
                continue;
            }
            // A fresh server each time: memory a previous run freed stays
            // with the process and would hide the next run's growth.
            let data = tempfile::tempdir().unwrap();
            let server = start_server(&bin, data.path());
            let r = runtime.block_on(run(&server, kind, subs, msgs));
            server.stop();
            println!(
                "{{\"kind\":\"{name}\",\"round\":{round},\"subs\":{subs},\"rss_per_sub_kib\":{:.2},\"p50_ms\":{:.2},\"p99_ms\":{:.2},\"deliveries_per_s\":{:.0},\"server_cpu_ms_per_m\":{:.1},\"client_cpu_ms_per_m\":{:.1}}}",
                r.rss_per_sub_kib,
                r.p50_ms,
                r.p99_ms,
                r.deliveries_per_s,
                r.server_cpu_ms_per_m,
                r.client_cpu_ms_per_m
            );
            results.push((name, r));
        }
    }
    if only.is_some() {
        return;
    }
    let pick = |kind: &str, f: fn(&Run) -> f64| {
        median(
            results
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, r)| f(r))
                .collect(),
        )
    };
    let metrics: [Metric; 6] = [
        ("deliveries/s", |r| r.deliveries_per_s),
        ("server CPU ms per 1M deliveries", |r| r.server_cpu_ms_per_m),
        ("client CPU ms per 1M deliveries", |r| r.client_cpu_ms_per_m),
        ("p50 ms @20/s", |r| r.p50_ms),
        ("p99 ms @20/s", |r| r.p99_ms),
        ("KiB per idle subscriber", |r| r.rss_per_sub_kib),
    ];
    println!("\n| {subs} subscribers, medians of {runs} | plain | TLS | TLS / plain |");
    println!("|---|---|---|---|");
    for (label, f) in metrics {
        let (plain, tls) = (pick("plain", f), pick("tls", f));
        println!("| {label} | {plain:.1} | {tls:.1} | {:.2}x |", tls / plain);
    }
}
