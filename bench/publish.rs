//! Publisher load for the control port: N connections, each sending
//! batches of ADDMESSAGE and waiting for their replies, for a fixed time
//! or a fixed number of messages. Prints messages/s as JSON.
//!
//! cargo run --release --example publish -- --addr 127.0.0.1:4671 \
//!     --connections 16 --batch 100 --seconds 5 [--channels 1] [--count N] [--size 64]

#[path = "support.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::arg;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = arg(&args, "--addr", "127.0.0.1:4671");
    let connections: usize = arg(&args, "--connections", "1").parse().unwrap();
    let batch: usize = arg(&args, "--batch", "100").parse().unwrap();
    let seconds: f64 = arg(&args, "--seconds", "5").parse().unwrap();
    let channels: usize = arg(&args, "--channels", "1").parse().unwrap();
    let count: u64 = arg(&args, "--count", "0").parse().unwrap();
    let size: usize = arg(&args, "--size", "64").parse().unwrap();

    let text = "x".repeat(size);
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..connections)
        .map(|c| {
            let (addr, text, sent, stop) = (addr.clone(), text.clone(), sent.clone(), stop.clone());
            std::thread::spawn(move || {
                let stream = TcpStream::connect(&addr).expect("connect");
                stream.set_nodelay(true).ok();
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                let mut n = c as u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut out = Vec::with_capacity(batch * (text.len() + 32));
                    for _ in 0..batch {
                        let channel = n % channels as u64;
                        n += connections as u64;
                        out.extend_from_slice(
                            format!("ADDMESSAGE ch{channel} {text}\r\n").as_bytes(),
                        );
                    }
                    writer.write_all(&out).unwrap();
                    for _ in 0..batch {
                        line.clear();
                        reader.read_line(&mut line).unwrap();
                        assert!(line.starts_with("OK\t"), "unexpected reply {line:?}");
                    }
                    let total = sent.fetch_add(batch as u64, Ordering::Relaxed) + batch as u64;
                    if (count > 0 && total >= count) || (count == 0 && Instant::now() >= deadline) {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = sent.load(Ordering::Relaxed);
    println!(
        "{{\"connections\":{connections},\"batch\":{batch},\"messages\":{total},\"seconds\":{elapsed:.3},\"per_second\":{:.0}}}",
        total as f64 / elapsed
    );
}
