//! The real binary as a child process: started on ephemeral loopback ports
//! (learned from its log), signalled, waited for.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use super::WAIT;

/// The real binary, started with these arguments (ports should be 0).
pub struct Process {
    /// The data directory, unless the test named its own.
    pub data: Option<tempfile::TempDir>,
    pub child: Child,
    pub control: SocketAddr,
    pub subscriber: SocketAddr,
    pub udp: Option<SocketAddr>,
    pub log: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Process {
    /// Without `-ConfigFileLocation` in `args`, the repository's copy of the
    /// built-in configuration is named, so no file on the machine matters.
    pub fn start(args: &[&str]) -> Process {
        Process::launch(args, true, None)
    }

    /// Like [`Process::start`], with at most `limit` open files (soft and
    /// hard), as `ulimit -n` would set.
    pub fn start_with_fd_limit(args: &[&str], limit: u64) -> Process {
        Process::launch(args, true, Some(limit))
    }

    /// Like [`Process::start`], but without `--no-tray` and without a
    /// display, as a desktop build started on a server would be.
    pub fn start_without_display(args: &[&str]) -> Process {
        Process::launch(args, false, None)
    }

    fn launch(args: &[&str], no_tray: bool, fd_limit: Option<u64>) -> Process {
        let builtin = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/meteord.conf");
        let mut command = Command::new(env!("CARGO_BIN_EXE_meteord"));
        if let Some(limit) = fd_limit {
            use std::os::unix::process::CommandExt;
            // SAFETY: only setrlimit runs between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    let limits = libc::rlimit {
                        rlim_cur: limit as libc::rlim_t,
                        rlim_max: limit as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limits) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        if !args.iter().any(|a| a.starts_with("-ConfigFile")) {
            command.args(["-ConfigFileLocation", builtin]);
        }
        // Nothing on disk unless a test asks for it.
        if !args.iter().any(|a| a.starts_with("-Persistence")) {
            command.args(["-Persistence", "off"]);
        }
        // Never a tray icon, even from a `tray` build on a desktop.
        if no_tray {
            command.arg("--no-tray");
        } else {
            command.env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY");
        }
        if !args.iter().any(|a| a.starts_with("-LogDirectory")) {
            command.args(["-LogDirectory", "off"]);
        }
        let data = if args.iter().any(|a| a.starts_with("-DataDirectory")) {
            None
        } else {
            let dir = tempfile::tempdir().unwrap();
            command.args(["-DataDirectory", dir.path().to_str().unwrap()]);
            Some(dir)
        };
        command
            .args([
                "-ControllerPort",
                "0",
                "-SubscriberPort",
                "0",
                "-SubscriberIP",
                "127.0.0.1",
                "-AdminPort",
                "0",
            ])
            .args(args);
        let wants_udp = args.iter().any(|a| a.starts_with("-UDPP"));
        let mut process = Process::spawn(command, wants_udp, WAIT);
        process.data = data;
        process
    }

    /// Start a prepared command (any meteord binary, perhaps behind a
    /// runner such as qemu or Wine) and learn its ports from its log.
    /// `startup` bounds the wait for the "listening on" lines.
    pub fn spawn(mut command: Command, wants_udp: bool, startup: Duration) -> Process {
        let mut child = command
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line.clone());
                log2.lock().unwrap().push(line);
            }
        });
        let (mut control, mut subscriber, mut udp) = (None, None, None);
        while control.is_none() || subscriber.is_none() || (wants_udp && udp.is_none()) {
            let line = rx.recv_timeout(startup).unwrap_or_else(|_| {
                let status = child.try_wait().ok().flatten();
                panic!(
                    "server did not start (exit: {status:?}): {:?}",
                    log.lock().unwrap()
                )
            });
            let addr = |prefix: &str| {
                line.split_once(prefix).and_then(|(_, rest)| {
                    rest.split_whitespace().next()?.parse::<SocketAddr>().ok()
                })
            };
            control = control.or(addr("control listening on "));
            subscriber = subscriber.or(addr("subscriber listening on "));
            udp = udp.or(addr("udp listening on "));
        }
        Process {
            data: None,
            child,
            control: control.unwrap(),
            subscriber: subscriber.unwrap(),
            udp,
            log,
        }
    }

    pub fn signal(&self, signal: i32) {
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0);
    }

    /// Wait for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        self.wait_status(within).and_then(|status| status.code())
    }

    /// Wait for the process to exit; returns how it ended (`None`: it
    /// did not within `within`).
    pub fn wait_status(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The address a log line `<prefix><address>` names (waiting for it).
    pub fn logged_addr(&self, prefix: &str) -> SocketAddr {
        self.wait_log(prefix);
        let log = self.log.lock().unwrap();
        log.iter()
            .find_map(|line| {
                let (_, rest) = line.split_once(prefix)?;
                rest.split_whitespace().next()?.parse().ok()
            })
            .unwrap_or_else(|| panic!("no address after {prefix:?}"))
    }

    /// Wait until a log line contains `needle`.
    pub fn wait_log(&self, needle: &str) {
        let deadline = std::time::Instant::now() + WAIT;
        while std::time::Instant::now() < deadline {
            if self.log.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("log never had {needle:?}: {:?}", self.log.lock().unwrap());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
