//! What the bench programs share: starting a real meteord with the
//! embedded configuration's defaults (admin UI on, snapshot persistence),
//! finding its ports in its log, and reading its memory.

// Each bench program uses a part of this.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU time a process has used so far, in milliseconds.
pub fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised name: utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks * 1000.0 / hz
}

/// A running meteord.
pub struct Server {
    pub child: Child,
    pub control: SocketAddr,
    pub subscriber: SocketAddr,
    pub admin: SocketAddr,
    /// The plain subscriber port beside a TLS one, if asked for.
    pub plain: Option<SocketAddr>,
}

impl Server {
    /// Start `bin` with its data in `data`; `ports` (control, subscriber)
    /// are 0 for any free one. `extra` adds command-line settings.
    pub fn start(bin: &str, data: &Path, ports: (u16, u16), extra: &[&str]) -> Server {
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/meteord.conf");
        let mut child = Command::new(bin)
            .args(["--no-tray", "-ConfigFileLocation", config])
            .args(["-ControllerPort", &ports.0.to_string()])
            .args(["-SubscriberPort", &ports.1.to_string()])
            .args([
                "-SubscriberIP",
                "127.0.0.1",
                "-AdminPort",
                "0",
                "-MaxTime",
                "0",
            ])
            .args(["-DataDirectory", data.to_str().unwrap()])
            .args(extra)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start meteord");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = |line: &str, what: &str| -> Option<SocketAddr> {
            line.split_once(what)
                .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        };
        let (mut control, mut subscriber, mut admin, mut plain) = (None, None, None, None);
        let wants_plain = extra.contains(&"-PlainSubscriberPort");
        while control.is_none()
            || subscriber.is_none()
            || admin.is_none()
            || (wants_plain && plain.is_none())
        {
            let line = lines.next().expect("meteord exited").unwrap();
            control = control.or(addr(&line, "control listening on "));
            admin = admin.or(addr(&line, "admin listening on "));
            if line.contains("plain subscriber") {
                plain = plain.or(addr(&line, "subscriber listening on "));
            } else {
                subscriber = subscriber.or(addr(&line, "subscriber listening on "));
            }
        }
        // Keep draining the log so the server never blocks on it; into
        // the file named by METEORD_BENCH_LOG, if set.
        let mut keep = std::env::var_os("METEORD_BENCH_LOG").map(|path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap()
        });
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(file) = keep.as_mut() {
                    let _ = writeln!(file, "{line}");
                }
            }
        });
        Server {
            child,
            control: control.unwrap(),
            subscriber: subscriber.unwrap(),
            admin: admin.unwrap(),
            plain,
        }
    }

    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }

    /// SIGTERM, as a service manager would, and wait for the exit.
    pub fn stop(mut self) {
        // SAFETY: kill() on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}
