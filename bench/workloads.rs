//! Workloads beyond one channel's fan-out, each against a real meteord
//! started with the embedded configuration (admin UI on, snapshot
//! persistence in a fresh data directory):
//!
//! ```text
//! workloads channels --subs N --channels C --count K   # N subscribers over C channels,
//!                                                      # K pipelined publishes to random channels
//! workloads storm --subs N --rate R                    # restart under N subscribers, all resume
//!                                                      # (R × settle time must fit the cache)
//! workloads full --subs N --extra E                    # the fd limit: N held, E more refused
//! ```
//!
//! All take `--bin PATH` (default target/release/meteord). Each prints its
//! figures as one JSON line. Run with `ulimit -n` at the hard limit.

#[path = "support.rs"]
mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{arg, cpu_ms, Server};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How a subscriber asks to resume after its last id.
#[derive(Clone, Copy, PartialEq)]
enum Transport {
    /// `/push/<host>/xhrinteractive/<chan>.r<next id>`
    Legacy,
    /// `/sse/<chan>` with `Last-Event-ID`
    Sse,
}

/// What one subscriber saw.
#[derive(Default)]
struct Seen {
    ids: Mutex<Vec<u64>>,
    /// Times its response head arrived (1 + reconnections).
    heads: AtomicU64,
}

/// Totals over all subscribers.
#[derive(Default)]
struct Tally {
    received: AtomicU64,
    connected: AtomicU64,
    refused: AtomicU64,
}

/// The message id on one line of a stream, if the line carries one.
fn message_id(transport: Transport, line: &[u8]) -> Option<u64> {
    let digits = match transport {
        // <script>p(ID,"channel","text");</script>; pings carry -1, no digits.
        Transport::Legacy => {
            let at = line.windows(2).position(|w| w == b"p(")? + 2;
            &line[at..]
        }
        Transport::Sse => line.strip_prefix(b"id: ")?,
    };
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

/// One subscription until the server closes it: returns false if it was
/// refused (connect failed or a 503).
async fn subscribe_once(
    addr: SocketAddr,
    request: &str,
    transport: Transport,
    seen: &Seen,
    tally: &Tally,
) -> bool {
    let Ok(stream) = TcpStream::connect(addr).await else {
        return false;
    };
    let mut stream = BufReader::with_capacity(16 * 1024, stream);
    if stream
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .is_err()
    {
        return false;
    }
    let mut line = Vec::with_capacity(256);
    let mut in_head = true;
    loop {
        line.clear();
        match stream.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return !in_head,
            Ok(_) => {}
        }
        if in_head {
            if line.starts_with(b"HTTP/1.1 503") {
                tally.refused.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            if line == b"\r\n" {
                in_head = false;
                seen.heads.fetch_add(1, Ordering::Relaxed);
                tally.connected.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        }
        if let Some(id) = message_id(transport, &line) {
            seen.ids.lock().unwrap().push(id);
            tally.received.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The request that (re)subscribes, resuming after the last id seen.
fn request(transport: Transport, host: usize, channel: &str, last: Option<u64>) -> String {
    match (transport, last) {
        (Transport::Legacy, None) => {
            format!("GET /push/s{host}/xhrinteractive/{channel} HTTP/1.1\r\nHost: b\r\n\r\n")
        }
        (Transport::Legacy, Some(id)) => format!(
            "GET /push/s{host}/xhrinteractive/{channel}.r{} HTTP/1.1\r\nHost: b\r\n\r\n",
            id + 1
        ),
        (Transport::Sse, None) => {
            format!("GET /sse/{channel}?hostid=s{host} HTTP/1.1\r\nHost: b\r\n\r\n")
        }
        (Transport::Sse, Some(id)) => format!(
            "GET /sse/{channel}?hostid=s{host} HTTP/1.1\r\nHost: b\r\nLast-Event-ID: {id}\r\n\r\n"
        ),
    }
}

/// Publish `lines` back to back on one connection; the ids replied.
async fn pipeline(control: SocketAddr, lines: Vec<String>) -> Vec<u64> {
    let stream = TcpStream::connect(control).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (read, mut write) = stream.into_split();
    let count = lines.len();
    let replies = tokio::spawn(async move {
        let mut read = BufReader::new(read);
        let mut ids = Vec::with_capacity(count);
        let mut line = String::new();
        for _ in 0..count {
            line.clear();
            read.read_line(&mut line).await.unwrap();
            let id = line
                .strip_prefix("OK\t")
                .and_then(|s| s.trim().parse().ok());
            ids.push(id.unwrap_or_else(|| panic!("publish refused: {line:?}")));
        }
        ids
    });
    let mut batch = String::with_capacity(64 * 1024);
    for line in lines {
        batch.push_str(&line);
        if batch.len() > 60 * 1024 {
            write.write_all(batch.as_bytes()).await.unwrap();
            batch.clear();
        }
    }
    write.write_all(batch.as_bytes()).await.unwrap();
    replies.await.unwrap()
}

/// A small, fixed pseudo-random sequence (xorshift), the same every run.
struct Random(u64);
impl Random {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

async fn wait_for(what: &str, limit: Duration, done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            eprintln!("workloads: gave up waiting for {what}");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

/// N subscribers over C channels; K publishes to random channels.
async fn channels(bin: &str, subs: usize, channels: usize, count: usize) {
    let names: Vec<String> = (0..channels).map(|c| format!("n{c}")).collect();
    let mut random = Random(0x9E37_79B9_7F4A_7C15);
    let targets: Vec<usize> = (0..count).map(|_| random.below(channels)).collect();
    let lines = |targets: &[usize]| -> Vec<String> {
        targets
            .iter()
            .enumerate()
            .map(|(i, &c)| format!("ADDMESSAGE {} m{i}\r\n", names[c]))
            .collect()
    };

    // Without subscribers: memory per channel, then the publish rate.
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(bin, data.path(), (0, 0), &[]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.rss_kib();
    let every: Vec<usize> = (0..channels).collect();
    pipeline(server.control, lines(&every)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kib_per_channel = (server.rss_kib() - before) as f64 / channels as f64;
    let start = Instant::now();
    pipeline(server.control, lines(&targets)).await;
    let publish_rate = count as f64 / start.elapsed().as_secs_f64();
    server.stop();

    // With subscribers.
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(bin, data.path(), (0, 0), &[]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.rss_kib();
    let tally = Arc::new(Tally::default());
    let mut tasks = tokio::task::JoinSet::new();
    let mut per_channel = vec![0u64; channels];
    for host in 0..subs {
        let channel = host % channels;
        per_channel[channel] += 1;
        let request = request(Transport::Legacy, host, &names[channel], None);
        let (tally, addr) = (tally.clone(), server.subscriber);
        tasks.spawn(async move {
            let seen = Seen::default();
            subscribe_once(addr, &request, Transport::Legacy, &seen, &tally).await;
        });
    }
    let all = subs as u64;
    wait_for("subscribers", Duration::from_secs(120), || {
        tally.connected.load(Ordering::Relaxed) >= all
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let kib_per_subscriber = (server.rss_kib() - before) as f64 / subs as f64;
    let expected: u64 = targets.iter().map(|&c| per_channel[c]).sum();
    let (server_cpu, own_cpu) = (cpu_ms(server.child.id()), cpu_ms(std::process::id()));
    let start = Instant::now();
    pipeline(server.control, lines(&targets)).await;
    let published = start.elapsed().as_secs_f64();
    let complete = wait_for("deliveries", Duration::from_secs(120), || {
        tally.received.load(Ordering::Relaxed) >= expected
    })
    .await;
    let seconds = start.elapsed().as_secs_f64();
    let received = tally.received.load(Ordering::Relaxed);
    // Where the two cores went during the burst: the server, and this
    // program (subscribers and publisher).
    let server_cpu = cpu_ms(server.child.id()) - server_cpu;
    let own_cpu = cpu_ms(std::process::id()) - own_cpu;
    println!(
        "{{\"workload\":\"channels\",\"subs\":{subs},\"channels\":{channels},\"publishes\":{count},\
         \"deliveries\":{received},\"expected\":{expected},\"complete\":{complete},\
         \"messages_per_s\":{:.0},\"deliveries_per_s\":{:.0},\"publish_rate_no_subscribers\":{publish_rate:.0},\
         \"ratio\":{:.2},\"kib_per_subscriber\":{kib_per_subscriber:.2},\"kib_per_channel\":{kib_per_channel:.2},\
         \"published_in_s\":{published:.3},\"delivered_in_s\":{seconds:.3},\
         \"server_cpu_ms\":{server_cpu:.0},\"client_cpu_ms\":{own_cpu:.0},\"rss_kib\":{}}}",
        count as f64 / seconds,
        received as f64 / seconds,
        count as f64 / seconds / publish_rate,
        server.rss_kib()
    );
    tasks.abort_all();
    server.stop();
}

/// Publish at `rate` until `stop`, through restarts; the ids the server
/// confirmed, with when.
async fn publish_steadily(
    control: SocketAddr,
    rate: u64,
    stop: Arc<AtomicBool>,
    confirmed: Arc<Mutex<Vec<(u64, Instant)>>>,
) {
    let gap = Duration::from_micros(1_000_000 / rate);
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Ok(stream) = TcpStream::connect(control).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let mut stream = BufReader::new(stream);
        let mut line = String::new();
        while !stop.load(Ordering::Relaxed) {
            seq += 1;
            let sent = stream
                .get_mut()
                .write_all(format!("ADDMESSAGE storm m{seq}\r\n").as_bytes())
                .await;
            line.clear();
            if sent.is_err() || stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                break;
            }
            if let Some(id) = line
                .strip_prefix("OK\t")
                .and_then(|s| s.trim().parse().ok())
            {
                confirmed.lock().unwrap().push((id, Instant::now()));
            }
            tokio::time::sleep(gap).await;
        }
    }
}

/// N subscribers (half legacy, half SSE); restart the server while
/// publishing; every subscriber must resume with every message once.
async fn storm(bin: &str, subs: usize, rate: u64) {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(bin, data.path(), (0, 0), &[]);
    let (control, subscriber) = (server.control, server.subscriber);
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Vec<Arc<Seen>> = (0..subs).map(|_| Arc::default()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (host, seen) in seen.iter().enumerate() {
        let transport = if host % 2 == 0 {
            Transport::Legacy
        } else {
            Transport::Sse
        };
        let (tally, stop, seen) = (tally.clone(), stop.clone(), seen.clone());
        tasks.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let last = seen.ids.lock().unwrap().last().copied();
                let request = request(transport, host, "storm", last);
                if !subscribe_once(subscriber, &request, transport, &seen, &tally).await {
                    tokio::time::sleep(Duration::from_millis(25 + (host % 50) as u64)).await;
                }
            }
        });
    }
    wait_for("subscribers", Duration::from_secs(120), || {
        tally.connected.load(Ordering::Relaxed) >= subs as u64
    })
    .await;
    let confirmed = Arc::new(Mutex::new(Vec::new()));
    let publisher = tokio::spawn(publish_steadily(
        control,
        rate,
        stop.clone(),
        confirmed.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The restart: the same ports, the same data directory.
    let down = Instant::now();
    server.stop();
    let server = Server::start(bin, data.path(), (control.port(), subscriber.port()), &[]);
    let up = Instant::now();
    let reconnected = wait_for("reconnections", Duration::from_secs(60), || {
        seen.iter().all(|s| s.heads.load(Ordering::Relaxed) >= 2)
    })
    .await;
    let all_reconnected = up.elapsed();
    // Settled: everyone has the first message confirmed after the restart.
    wait_for(
        "a message after the restart",
        Duration::from_secs(30),
        || confirmed.lock().unwrap().iter().any(|(_, at)| *at > up),
    )
    .await;
    let first_after = confirmed
        .lock()
        .unwrap()
        .iter()
        .find(|(_, at)| *at > up)
        .map(|(id, _)| *id)
        .unwrap();
    let settled = wait_for("the storm to settle", Duration::from_secs(60), || {
        seen.iter()
            .all(|s| s.ids.lock().unwrap().last() >= Some(&first_after))
    })
    .await;
    let settle_time = up.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    publisher.await.unwrap();
    let confirmed: Vec<u64> = confirmed
        .lock()
        .unwrap()
        .iter()
        .map(|(id, _)| *id)
        .collect();
    let last = *confirmed.last().unwrap();
    wait_for("the last message", Duration::from_secs(30), || {
        seen.iter()
            .all(|s| s.ids.lock().unwrap().last() >= Some(&last))
    })
    .await;

    // Exactly once, in order: strictly increasing ids holding every
    // confirmed one. (A message whose reply was lost in the restart may be
    // there too; it must then be there once, like the rest.)
    let (mut missing, mut disorder, mut unconfirmed) = (0usize, 0usize, 0usize);
    let wanted: std::collections::HashSet<u64> = confirmed.iter().copied().collect();
    let mut missing_ids: HashMap<u64, usize> = HashMap::new();
    let mut extra_ids: HashMap<u64, usize> = HashMap::new();
    for s in &seen {
        let ids = s.ids.lock().unwrap();
        disorder += ids.windows(2).filter(|w| w[0] >= w[1]).count();
        let got: std::collections::HashSet<u64> = ids.iter().copied().collect();
        for id in wanted.difference(&got) {
            missing += 1;
            *missing_ids.entry(*id).or_default() += 1;
        }
        unconfirmed += got.difference(&wanted).count();
    }
    for s in &seen {
        for id in s
            .ids
            .lock()
            .unwrap()
            .iter()
            .filter(|id| !wanted.contains(id))
        {
            *extra_ids.entry(*id).or_default() += 1;
        }
    }
    println!(
        "{{\"workload\":\"storm\",\"subs\":{subs},\"rate\":{rate},\"messages\":{},\
         \"down_ms\":{},\"all_reconnected_ms\":{},\"settled_ms\":{},\"reconnected\":{reconnected},\
         \"settled\":{settled},\"missing\":{missing},\"out_of_order_or_duplicate\":{disorder},\
         \"unconfirmed_deliveries\":{unconfirmed},\"unconfirmed_ids\":{:?},\"missing_ids\":{:?}}}",
        confirmed.len(),
        (up - down).as_millis(),
        all_reconnected.as_millis(),
        settle_time.as_millis(),
        extra_ids,
        missing_ids,
    );
    tasks.abort_all();
    server.stop();
}

/// Fill the subscriber port to N, try E more, check the other ports, and
/// deliver to everyone held.
async fn full(bin: &str, subs: usize, extra: usize, messages: usize) {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(bin, data.path(), (0, 0), &[]);
    let tally = Arc::new(Tally::default());
    let mut tasks = tokio::task::JoinSet::new();
    let open = |tasks: &mut tokio::task::JoinSet<()>, host: usize| {
        let (tally, addr) = (tally.clone(), server.subscriber);
        tasks.spawn(async move {
            let seen = Seen::default();
            let request = request(Transport::Legacy, host, "full", None);
            if !subscribe_once(addr, &request, Transport::Legacy, &seen, &tally).await {
                eprintln!("workloads: subscriber {host} was refused or dropped");
            }
        });
    };
    let start = Instant::now();
    for host in 0..subs {
        open(&mut tasks, host);
    }
    let held = wait_for("subscribers", Duration::from_secs(180), || {
        tally.connected.load(Ordering::Relaxed) >= subs as u64
    })
    .await;
    let connect_s = start.elapsed().as_secs_f64();
    for host in subs..subs + extra {
        open(&mut tasks, host);
    }
    wait_for("the extra ones", Duration::from_secs(30), || {
        tally.connected.load(Ordering::Relaxed) + tally.refused.load(Ordering::Relaxed)
            >= (subs + extra) as u64
    })
    .await;
    let connected = tally.connected.load(Ordering::Relaxed);
    let refused = tally.refused.load(Ordering::Relaxed);

    // The other ports while the subscriber port is full.
    let control_ok = pipeline(server.control, vec!["ADDMESSAGE other x\r\n".into()])
        .await
        .len()
        == 1;
    let admin_status = http_status(server.admin, "/").await;
    let health = http_status(server.subscriber, "/healthz").await;

    let lines = (0..messages)
        .map(|i| format!("ADDMESSAGE full m{i}\r\n"))
        .collect();
    let start = Instant::now();
    pipeline(server.control, lines).await;
    let expected = connected * messages as u64;
    let complete = wait_for("deliveries", Duration::from_secs(120), || {
        tally.received.load(Ordering::Relaxed) >= expected
    })
    .await;
    println!(
        "{{\"workload\":\"full\",\"subs\":{subs},\"extra\":{extra},\"held\":{held},\"connected\":{connected},\
         \"refused_503\":{refused},\"connect_s\":{connect_s:.1},\"control_ok\":{control_ok},\
         \"admin_status\":{admin_status},\"subscriber_healthz_status\":{health},\"messages\":{messages},\
         \"deliveries\":{},\"expected\":{expected},\"complete\":{complete},\"deliver_ms\":{},\"rss_kib\":{}}}",
        tally.received.load(Ordering::Relaxed),
        start.elapsed().as_millis(),
        server.rss_kib()
    );
    tasks.abort_all();
    server.stop();
}

/// The status of one GET (0 if there was no answer).
async fn http_status(addr: SocketAddr, path: &str) -> u16 {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return 0;
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return 0;
    }
    let mut head = [0u8; 12];
    match tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut head)).await {
        Ok(Ok(_)) => std::str::from_utf8(&head[9..12])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = arg(&args, "--bin", "target/release/meteord");
    let number =
        |name: &str, default: &str| -> usize { arg(&args, name, default).parse().unwrap() };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    match args.get(1).map(String::as_str) {
        Some("channels") => runtime.block_on(channels(
            &bin,
            number("--subs", "10000"),
            number("--channels", "10000"),
            number("--count", "200000"),
        )),
        Some("storm") => runtime.block_on(storm(
            &bin,
            number("--subs", "10000"),
            number("--rate", "50") as u64,
        )),
        Some("full") => runtime.block_on(full(
            &bin,
            number("--subs", "19500"),
            number("--extra", "300"),
            number("--messages", "20"),
        )),
        _ => {
            eprintln!(
                "usage: workloads channels|storm|full [--bin PATH] [options] (see the source)"
            );
            std::process::exit(2);
        }
    }
}
