//! How fast subscriptions start, with and without a token: starts a server
//! (the binary given) on loopback ports, then opens N SSE subscriptions
//! (C at a time, each held until the server has answered its head) to
//!
//! - a public channel, no token;
//! - a private channel with a signed subscribe token (JWT, HS256): checked
//!   with the key alone;
//! - a private channel with an API token: one database lookup each.
//!
//! Prints subscriptions/s for each, and the ratios to the public case.
//!
//! cargo run --release --example subscribe-rate -- --bin target/release/meteord [--count 1000] [--concurrency 50]

#[path = "support.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{arg, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "subscribe-rate benchmark secret";

/// Open `count` subscriptions to `path`, `concurrency` at a time; each is
/// held open until all are done. Returns subscriptions per second.
async fn rate(addr: SocketAddr, path: &str, count: usize, concurrency: usize) -> f64 {
    let path = Arc::new(path.to_string());
    let started = Instant::now();
    let mut held = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(concurrency) {
        let opening: Vec<_> = chunk
            .iter()
            .map(|_| {
                let path = path.clone();
                tokio::spawn(async move {
                    let mut stream = TcpStream::connect(addr).await.unwrap();
                    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
                    stream.write_all(request.as_bytes()).await.unwrap();
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(5).any(|w| w == b"retry") {
                        let n = stream.read(&mut buf).await.unwrap();
                        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&head));
                        head.extend_from_slice(&buf[..n]);
                    }
                    assert!(
                        head.starts_with(b"HTTP/1.1 200"),
                        "{}",
                        String::from_utf8_lossy(&head)
                    );
                    stream
                })
            })
            .collect();
        for opened in opening {
            held.push(opened.await.unwrap());
        }
    }
    let per_second = count as f64 / started.elapsed().as_secs_f64();
    drop(held);
    per_second
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = arg(&args, "--bin", "target/release/meteord");
    let count: usize = arg(&args, "--count", "1000").parse().unwrap();
    let concurrency: usize = arg(&args, "--concurrency", "50").parse().unwrap();
    let data = tempfile::tempdir().unwrap();
    let extra = ["-LogDirectory", "off", "-Persistence", "off"];
    let secrets = ["-TokenSecret", SECRET, "-PrivateChannels", "private*"];
    let server = Server::start(&bin, data.path(), (0, 0), &[&extra[..], &secrets].concat());
    // An API token, made through the database the server uses.
    std::thread::sleep(Duration::from_millis(300));
    let accounts = meteord::store::accounts::Accounts::open(&data.path().join("meteord.db"))
        .expect("the server's database");
    let (_, api_token) = accounts.create_token("bench").unwrap();
    let exp = meteord::hub::unix_now() + 3600;
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"channels": ["private*"], "exp": exp, "sub": "bench"}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let addr = server.subscriber;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cases = [
        ("public channel, no token", "/sse/public".to_string()),
        (
            "private channel, signed token",
            format!("/sse/privateA?token={jwt}"),
        ),
        (
            "private channel, API token",
            format!("/sse/privateB?token={api_token}"),
        ),
    ];
    let mut results = Vec::new();
    for (what, path) in &cases {
        // A warm-up round, then the measured one.
        runtime.block_on(rate(addr, path, count / 10, concurrency));
        let per_second = runtime.block_on(rate(addr, path, count, concurrency));
        results.push((what, per_second));
    }
    server.stop();
    let public = results[0].1;
    println!(
        "| subscriptions ({count}, {concurrency} at a time) | per second | ratio to no token |"
    );
    println!("|---|---|---|");
    for (what, per_second) in results {
        println!("| {what} | {per_second:.0} | {:.2}x |", per_second / public);
    }
}
