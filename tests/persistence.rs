//! Channels that survive restarts: the real binary, a real SQLite file,
//! graceful restarts and `kill -9`.
#![cfg(unix)]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Control, Process};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

fn start(dir: &std::path::Path, mode: &str, extra: &[&str]) -> Process {
    let dir = dir.to_str().unwrap();
    let mut args = vec!["-DataDirectory", dir, "-Persistence", mode, "-MaxTime", "0"];
    args.extend_from_slice(extra);
    Process::start(&args)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Every cached id of a channel, via a non-persistent legacy request.
async fn cached_ids(subscriber: SocketAddr, channel: &str) -> Vec<u64> {
    let body = common::get(subscriber, &format!("/push/check/simplepoll/{channel}.h")).await;
    let body = String::from_utf8_lossy(&body).into_owned();
    body.split("<script>p(")
        .skip(1)
        .map(|s| s.split(',').next().unwrap().parse().unwrap())
        .collect()
}

fn stop(mut process: Process) {
    process.signal(libc::SIGTERM);
    assert_eq!(process.wait_exit(Duration::from_secs(15)), Some(0));
}

fn kill9(mut process: Process) {
    process.signal(libc::SIGKILL);
    process.wait_exit(Duration::from_secs(15));
}

#[test]
fn snapshot_survives_a_clean_restart_and_ids_continue() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let first = start(dir.path(), "snapshot", &[]);
    rt.block_on(async {
        let mut c = Control::connect(first.control).await;
        for i in 0..5 {
            let channel = if i % 2 == 0 { "even" } else { "odd" };
            assert_eq!(
                c.command(&format!("ADDMESSAGE {channel} m{i}")).await,
                format!("OK\t{i}\r\n")
            );
        }
    });
    stop(first);

    let second = start(dir.path(), "snapshot", &[]);
    second.wait_log("restored 5 messages");
    rt.block_on(async {
        assert_eq!(cached_ids(second.subscriber, "even").await, [0, 2, 4]);
        assert_eq!(cached_ids(second.subscriber, "odd").await, [1, 3]);
        let mut c = Control::connect(second.control).await;
        // A clean shutdown leaves no gap in the ids.
        assert_eq!(c.command("ADDMESSAGE odd m5").await, "OK\t5\r\n");
        // A subscriber that had seen up to id 1 gets exactly what it missed.
        let body = common::get(second.subscriber, "/push/r/simplepoll/odd.r2").await;
        let body = String::from_utf8_lossy(&body).into_owned();
        assert!(body.ends_with("<script>p(3,\"odd\",\"m3\");</script>\r\n<script>p(5,\"odd\",\"m5\");</script>\r\n"), "{body}");
        // And over SSE, resuming after id 2.
        let mut sse = tokio::net::TcpStream::connect(second.subscriber).await.unwrap();
        sse.write_all(b"GET /sse/even/odd HTTP/1.1\r\nHost: t\r\nLast-Event-ID: 2\r\n\r\n").await.unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !String::from_utf8_lossy(&got).contains("\"m5\"") {
            assert!(Instant::now() < deadline, "{}", String::from_utf8_lossy(&got));
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), sse.read(&mut buf)).await.unwrap().unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        let got = String::from_utf8_lossy(&got).into_owned();
        let ids: Vec<&str> = got.lines().filter_map(|l| l.strip_prefix("id: ")).collect();
        assert_eq!(ids, ["3", "4", "5"]);
    });
    stop(second);
}

#[test]
fn restored_channels_honour_the_current_limits() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let first = start(dir.path(), "snapshot", &[]);
    rt.block_on(async {
        let mut c = Control::connect(first.control).await;
        for i in 0..6 {
            c.command(&format!("ADDMESSAGE lim m{i}")).await;
        }
    });
    stop(first);
    let second = start(dir.path(), "snapshot", &["-MaxMessagesPerChannel", "2"]);
    rt.block_on(async {
        assert_eq!(cached_ids(second.subscriber, "lim").await, [4, 5]);
    });
    stop(second);
    // Old messages are not revived: wait until they are older than the
    // allowed age, then restart.
    std::thread::sleep(Duration::from_millis(2200));
    let third = start(dir.path(), "snapshot", &["-MaxMessageAge", "1"]);
    rt.block_on(async {
        assert!(cached_ids(third.subscriber, "lim").await.is_empty());
        let mut c = Control::connect(third.control).await;
        // Ids still never go back.
        assert_eq!(c.command("ADDMESSAGE lim new").await, "OK\t6\r\n");
    });
    stop(third);
}

/// Publish from several pipelining connections until killed; returns the
/// acknowledged ids (with their channel).
async fn publish_until_killed(control: SocketAddr, publishers: usize) -> Vec<(String, u64)> {
    let mut tasks = Vec::new();
    for p in 0..publishers {
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let Ok(mut stream) = tokio::net::TcpStream::connect(control).await else {
                return acked;
            };
            let channel = format!("crash{p}");
            let mut pending = Vec::new();
            loop {
                let batch: String = (0..20)
                    .map(|i| format!("ADDMESSAGE {channel} text{i}\r\n"))
                    .collect();
                if stream.write_all(batch.as_bytes()).await.is_err() {
                    return acked;
                }
                let mut replies = 0;
                while replies < 20 {
                    let mut buf = [0u8; 4096];
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return acked,
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                    }
                    while let Some(end) = pending.windows(2).position(|w| w == b"\r\n") {
                        let line: Vec<u8> = pending.drain(..end + 2).collect();
                        let line = String::from_utf8_lossy(&line);
                        let id: u64 = line.trim().strip_prefix("OK\t").unwrap().parse().unwrap();
                        acked.push((channel.clone(), id));
                        replies += 1;
                    }
                }
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

#[test]
fn durable_mode_loses_no_acknowledged_message_under_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let mut highest_seen = None::<u64>;
    for round in 0..6u64 {
        let process = start(dir.path(), "durable", &["-MaxMessagesPerChannel", "0"]);
        let control = process.control;
        let publishing = rt.spawn(publish_until_killed(control, 4));
        // Kill at a different moment each round.
        std::thread::sleep(Duration::from_millis(150 + round * 70));
        kill9(process);
        let acked = rt.block_on(publishing).unwrap();
        assert!(!acked.is_empty(), "round {round}: nothing was acknowledged");

        let restarted = start(dir.path(), "durable", &["-MaxMessagesPerChannel", "0"]);
        rt.block_on(async {
            let mut stored = BTreeSet::new();
            for p in 0..4 {
                stored.extend(cached_ids(restarted.subscriber, &format!("crash{p}")).await);
            }
            let missing: Vec<_> = acked
                .iter()
                .filter(|(_, id)| !stored.contains(id))
                .collect();
            assert!(
                missing.is_empty(),
                "round {round}: {} acknowledged messages lost, e.g. {:?}",
                missing.len(),
                &missing[..missing.len().min(5)]
            );
            // Ids never repeat or go back.
            let max_acked = acked.iter().map(|(_, id)| *id).max().unwrap();
            let mut c = Control::connect(restarted.control).await;
            let reply = c.command("ADDMESSAGE probe x").await;
            let next: u64 = reply.trim().strip_prefix("OK\t").unwrap().parse().unwrap();
            assert!(
                next > max_acked,
                "round {round}: id {next} after {max_acked}"
            );
            if let Some(seen) = highest_seen {
                assert!(next > seen, "round {round}: id {next} after {seen}");
            }
            highest_seen = Some(next);
        });
        stop(restarted);
    }
}

#[test]
fn snapshot_mode_kill_9_loses_at_most_the_last_interval_and_ids_stay_monotonic() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let first = start(dir.path(), "snapshot", &["-SnapshotInterval", "1"]);
    let last_before = rt.block_on(async {
        let mut c = Control::connect(first.control).await;
        let mut last = 0;
        for i in 0..50 {
            let reply = c.command(&format!("ADDMESSAGE snap early{i}")).await;
            last = reply
                .trim()
                .strip_prefix("OK\t")
                .unwrap()
                .parse::<u64>()
                .unwrap();
        }
        last
    });
    // Let one snapshot pass, then publish more and crash at once.
    std::thread::sleep(Duration::from_millis(2500));
    let last_issued = rt.block_on(async {
        let mut c = Control::connect(first.control).await;
        let mut last = 0;
        for i in 0..50 {
            let reply = c.command(&format!("ADDMESSAGE snap late{i}")).await;
            last = reply
                .trim()
                .strip_prefix("OK\t")
                .unwrap()
                .parse::<u64>()
                .unwrap();
        }
        last
    });
    kill9(first);
    let second = start(dir.path(), "snapshot", &["-SnapshotInterval", "1"]);
    rt.block_on(async {
        let ids = cached_ids(second.subscriber, "snap").await;
        // Everything up to the last snapshot is there, in order.
        assert!(ids.len() >= 50, "{ids:?}");
        assert_eq!(ids[..50], (0..=last_before).collect::<Vec<_>>()[..]);
        let mut c = Control::connect(second.control).await;
        let reply = c.command("ADDMESSAGE snap after").await;
        let next: u64 = reply.trim().strip_prefix("OK\t").unwrap().parse().unwrap();
        assert!(
            next > last_issued,
            "id {next} reused after a crash (issued up to {last_issued})"
        );
    });
    stop(second);
}

#[test]
fn a_corrupt_database_is_set_aside_and_the_server_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("meteord.db"), b"definitely not sqlite").unwrap();
    let process = start(dir.path(), "snapshot", &[]);
    process.wait_log("could not be used");
    let log = process.log.lock().unwrap().join("\n");
    assert!(
        log.contains(&format!("{}", dir.path().join("meteord.db").display())),
        "{log}"
    );
    let rt = rt();
    rt.block_on(async {
        let mut c = Control::connect(process.control).await;
        assert_eq!(c.command("ADDMESSAGE fresh x").await, "OK\t0\r\n");
    });
    let aside = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().contains("corrupt"))
        .expect("the bad file was kept");
    assert_eq!(
        std::fs::read(aside.path()).unwrap(),
        b"definitely not sqlite"
    );
    stop(process);
}

/// A small tmpfs: a real "disk full" that can be grown again.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("running mount");
        assert!(
            status.success(),
            "this test needs root to mount a small tmpfs"
        );
        SmallDisk { dir }
    }

    fn grow(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_keeps_publishing_in_memory_and_persistence_resumes() {
    let disk = SmallDisk::mount("300k");
    let rt = rt();
    let process = start(
        disk.dir.path(),
        "snapshot",
        &["-SnapshotInterval", "1", "-MaxMessagesPerChannel", "0"],
    );
    let text = "y".repeat(4000);
    rt.block_on(async {
        let mut c = Control::connect(process.control).await;
        for i in 0..150 {
            // Publishing never fails because the disk did.
            assert_eq!(
                c.command(&format!("ADDMESSAGE full {i}{text}")).await,
                format!("OK\t{i}\r\n")
            );
        }
    });
    process.wait_log("persistence failed");
    disk.grow("32m");
    process.wait_log("persistence works again");
    stop(process);
    let restarted = start(
        disk.dir.path(),
        "snapshot",
        &["-MaxMessagesPerChannel", "0"],
    );
    rt.block_on(async {
        assert_eq!(
            cached_ids(restarted.subscriber, "full").await,
            (0..150).collect::<Vec<_>>()
        );
    });
    stop(restarted);
}

#[test]
fn ids_continue_across_restarts_even_with_persistence_off() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let publish = |control: SocketAddr| {
        rt.block_on(async move {
            let mut c = Control::connect(control).await;
            let reply = c.command("ADDMESSAGE off x").await;
            reply
                .trim()
                .strip_prefix("OK\t")
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
    };
    let first = start(dir.path(), "off", &[]);
    assert_eq!(publish(first.control), 0);
    assert_eq!(publish(first.control), 1);
    stop(first);
    // Nothing cached survives, but the ids go on from where they were.
    let second = start(dir.path(), "off", &[]);
    rt.block_on(async {
        assert!(cached_ids(second.subscriber, "off").await.is_empty());
    });
    assert_eq!(publish(second.control), 2);
    kill9(second);
    // After a crash they jump forward rather than repeat.
    let third = start(dir.path(), "off", &[]);
    assert!(publish(third.control) > 2);
    stop(third);
}

/// One subscriber that reconnects whenever its stream ends, resuming after
/// the last id it saw: `.r<next>` for the legacy transport,
/// `Last-Event-ID` for SSE. Records every id, and each response head.
async fn follow(
    addr: SocketAddr,
    host: usize,
    sse: bool,
    ids: Arc<Mutex<Vec<u64>>>,
    heads: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
) {
    while !done.load(Ordering::Relaxed) {
        let last = ids.lock().unwrap().last().copied();
        let request = match (sse, last) {
            (false, None) => format!("GET /push/h{host}/xhrinteractive/storm HTTP/1.1\r\n\r\n"),
            (false, Some(id)) => format!(
                "GET /push/h{host}/xhrinteractive/storm.r{} HTTP/1.1\r\n\r\n",
                id + 1
            ),
            (true, None) => format!("GET /sse/storm?hostid=h{host} HTTP/1.1\r\n\r\n"),
            (true, Some(id)) => {
                format!("GET /sse/storm?hostid=h{host} HTTP/1.1\r\nLast-Event-ID: {id}\r\n\r\n")
            }
        };
        if let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await {
            if stream.write_all(request.as_bytes()).await.is_ok() {
                let mut lines = tokio::io::BufReader::new(stream).lines();
                let mut in_head = true;
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_head {
                        if line.is_empty() {
                            in_head = false;
                            heads.fetch_add(1, Ordering::Relaxed);
                        }
                        continue;
                    }
                    let id = match sse {
                        false => line
                            .split_once("<script>p(")
                            .and_then(|(_, rest)| rest.split(',').next()?.parse().ok()),
                        true => line.strip_prefix("id: ").and_then(|id| id.parse().ok()),
                    };
                    if let Some(id) = id {
                        ids.lock().unwrap().push(id);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Publish one message every few milliseconds until `done`, through
/// restarts; the ids the server confirmed.
async fn publish_through_restarts(
    control: SocketAddr,
    done: Arc<AtomicBool>,
    confirmed: Arc<Mutex<Vec<u64>>>,
) {
    let mut seq = 0;
    while !done.load(Ordering::Relaxed) {
        let Ok(stream) = tokio::net::TcpStream::connect(control).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (read, mut write) = stream.into_split();
        let mut replies = tokio::io::BufReader::new(read).lines();
        while !done.load(Ordering::Relaxed) {
            seq += 1;
            let line = format!("ADDMESSAGE storm m{seq}\r\n");
            if write.write_all(line.as_bytes()).await.is_err() {
                break;
            }
            let Ok(Some(reply)) = replies.next_line().await else {
                break;
            };
            if let Some(id) = reply
                .strip_prefix("OK\t")
                .and_then(|s| s.trim().parse().ok())
            {
                confirmed.lock().unwrap().push(id);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[test]
fn subscribers_resume_exactly_once_when_the_server_restarts_under_them() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let first = start(dir.path(), "snapshot", &[]);
    let (control, subscriber) = (first.control, first.subscriber);
    let done = Arc::new(AtomicBool::new(false));
    let heads = Arc::new(AtomicUsize::new(0));
    let seen: Vec<Arc<Mutex<Vec<u64>>>> = (0..200).map(|_| Arc::default()).collect();
    for (host, ids) in seen.iter().enumerate() {
        let task = follow(
            subscriber,
            host,
            host % 2 == 1,
            ids.clone(),
            heads.clone(),
            done.clone(),
        );
        rt.spawn(task);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while heads.load(Ordering::Relaxed) < seen.len() {
        assert!(Instant::now() < deadline, "subscribers never connected");
        std::thread::sleep(Duration::from_millis(10));
    }
    let publishing = Arc::new(AtomicBool::new(false));
    let confirmed = Arc::new(Mutex::new(Vec::new()));
    let publisher = rt.spawn(publish_through_restarts(
        control,
        publishing.clone(),
        confirmed.clone(),
    ));
    std::thread::sleep(Duration::from_millis(500));

    // The restart: the same ports, the same data directory.
    stop(first);
    let ports = [control.port().to_string(), subscriber.port().to_string()];
    let second = start(
        dir.path(),
        "snapshot",
        &["-ControllerPort", &ports[0], "-SubscriberPort", &ports[1]],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while heads.load(Ordering::Relaxed) < 2 * seen.len() {
        assert!(Instant::now() < deadline, "subscribers never came back");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500));
    publishing.store(true, Ordering::Relaxed);
    rt.block_on(publisher).unwrap();

    let confirmed = confirmed.lock().unwrap().clone();
    let last = *confirmed.last().expect("messages were confirmed");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen
        .iter()
        .all(|ids| ids.lock().unwrap().last() >= Some(&last))
    {
        assert!(Instant::now() < deadline, "not every subscriber caught up");
        std::thread::sleep(Duration::from_millis(10));
    }
    done.store(true, Ordering::Relaxed);
    for (host, ids) in seen.iter().enumerate() {
        let ids = ids.lock().unwrap();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "subscriber {host}: a duplicate or out of order: {ids:?}"
        );
        let got: BTreeSet<u64> = ids.iter().copied().collect();
        let missing: Vec<&u64> = confirmed.iter().filter(|id| !got.contains(id)).collect();
        assert!(missing.is_empty(), "subscriber {host} missed {missing:?}");
    }
    stop(second);
}
