//! Helpers for integration tests: start a real server on ephemeral loopback
//! ports (in this process, or as the real binary), and talk to it over real
//! sockets.
#![allow(dead_code)]

pub mod admin;
pub mod receiver;
pub mod release;
mod tls_client;
pub mod tokens;
pub mod ws;
#[allow(unused_imports)] // used by the TLS tests only
pub use tls_client::{connector, fingerprint, session_cookie};

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use meteord::config::{ConfigFile, LegacyArgs, Source, BUILTIN_CONFIG};
use meteord::node::Node;
use meteord::{Config, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(10);

/// A server running inside the test process.
pub struct TestServer {
    /// The data directory (database), removed with the server.
    pub data: tempfile::TempDir,
    pub control: SocketAddr,
    pub subscriber: SocketAddr,
    pub udp: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
    /// The plain-HTTP port kept beside a TLS subscriber port, if asked for.
    pub plain_subscriber: Option<SocketAddr>,
    pub node: Arc<Node>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Start with the built-in configuration plus these `-Key value` options.
    pub async fn start(options: &[(&str, &str)]) -> TestServer {
        TestServer::with_config(BUILTIN_CONFIG, options).await
    }

    /// Start with this config file text plus these options.
    pub async fn with_config(config_text: &str, options: &[(&str, &str)]) -> TestServer {
        TestServer::configured(config_text, options, |_| {}).await
    }

    /// Start with the built-in configuration plus these options, then
    /// `tweak` the typed configuration (for what no key sets, such as a
    /// shorter retry delay).
    pub async fn start_tweaked(
        options: &[(&str, &str)],
        tweak: impl FnOnce(&mut Config),
    ) -> TestServer {
        TestServer::configured(BUILTIN_CONFIG, options, tweak).await
    }

    async fn configured(
        config_text: &str,
        options: &[(&str, &str)],
        tweak: impl FnOnce(&mut Config),
    ) -> TestServer {
        let mut args = LegacyArgs::default();
        args.set("ControllerPort", None, "0");
        args.set("SubscriberPort", None, "0");
        args.set("SubscriberIP", None, "127.0.0.1");
        args.set("AdminPort", None, "0");
        // Nothing persisted unless a test asks; the database (accounts)
        // lives in a directory of the test's own.
        let data = tempfile::tempdir().unwrap();
        args.set("Persistence", None, "off");
        args.set("DataDirectory", None, data.path().to_str().unwrap());
        for (key, value) in options {
            let (key, mode) = match key.split_once('.') {
                Some((k, m)) => (k, Some(m)),
                None => (*key, None),
            };
            args.set(key, mode, *value);
        }
        let file = ConfigFile::parse(config_text.as_bytes(), "test.conf", Source::File).unwrap();
        let mut config = Config::from_parts(&args, &file, None).unwrap();
        tweak(&mut config);
        let server = Server::bind(config, args).await.unwrap();
        let control = server.control_addr();
        let subscriber = server.subscriber_addr();
        let udp = server.udp_addr();
        let admin = server.admin_addr();
        let plain_subscriber = server.plain_subscriber_addr();
        let node = server.node();
        let shutdown = server.shutdown_token();
        let task = Some(tokio::spawn(server.run()));
        TestServer {
            data,
            control,
            subscriber,
            udp,
            admin,
            plain_subscriber,
            node,
            shutdown,
            task,
        }
    }

    pub async fn control(&self) -> Control {
        Control::connect(self.control).await
    }

    /// Publish one message and return its id.
    pub async fn publish(&self, channel: &str, text: &str) -> u64 {
        let mut c = self.control().await;
        let reply = c.command(&format!("ADDMESSAGE {channel} {text}")).await;
        reply
            .strip_prefix("OK\t")
            .and_then(|s| s.trim_end().parse().ok())
            .unwrap_or_else(|| panic!("unexpected reply {reply:?}"))
    }

    /// Wait until a channel has `n` subscribers.
    pub async fn wait_subscribers(&self, channel: &str, n: usize) {
        let hub = self.node.hub.clone();
        let channel = channel.as_bytes().to_vec();
        timeout(WAIT, async {
            while hub.count_subscribers(&channel) != n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("subscriber count never reached");
    }

    /// Shut down gracefully and wait for the server to finish.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            timeout(Duration::from_secs(15), task)
                .await
                .expect("server did not stop")
                .unwrap()
                .unwrap();
        }
    }

    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A control-port client.
pub struct Control {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Control {
    pub async fn connect(addr: SocketAddr) -> Control {
        Control {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Read until the buffered reply ends with `terminator`, return it all.
    pub async fn read_until(&mut self, terminator: &[u8]) -> Vec<u8> {
        timeout(WAIT, async {
            loop {
                if let Some(pos) = find(&self.buf, terminator) {
                    let rest = self.buf.split_off(pos + terminator.len());
                    return std::mem::replace(&mut self.buf, rest);
                }
                let mut chunk = [0u8; 4096];
                let n = self.stream.read(&mut chunk).await.unwrap();
                assert!(
                    n > 0,
                    "connection closed; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
                self.buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out; got {:?}", String::from_utf8_lossy(&self.buf)))
    }

    /// Send one command line, return its one-line reply.
    pub async fn command(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        String::from_utf8(self.read_until(b"\r\n").await).unwrap()
    }

    /// Read everything until the server closes the connection.
    pub async fn read_to_end(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        timeout(WAIT, self.stream.read_to_end(&mut out))
            .await
            .expect("server did not close")
            .unwrap();
        out
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Send a raw HTTP request and read the whole response until close.
pub async fn http_raw(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut out))
        .await
        .unwrap_or_else(|_| panic!("no close; got {:?}", String::from_utf8_lossy(&out)))
        .unwrap();
    out
}

/// `GET path` (HTTP/1.1) read until the server closes.
pub async fn get(addr: SocketAddr, path: &str) -> Vec<u8> {
    http_raw(
        addr,
        format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: tests\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
}

/// A streaming subscriber: keeps the connection (plain TCP unless said
/// otherwise) and reads as data comes.
pub struct Stream<S = TcpStream> {
    pub stream: S,
    pub received: Vec<u8>,
}

impl Stream {
    pub async fn open(addr: SocketAddr, path: &str) -> Stream {
        Stream::request(TcpStream::connect(addr).await.unwrap(), path).await
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Stream<S> {
    /// Send `GET path` on a connection already open.
    pub async fn request(mut stream: S, path: &str) -> Stream<S> {
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
            .await
            .unwrap();
        Stream {
            stream,
            received: Vec::new(),
        }
    }

    /// Read until everything received so far contains `needle`.
    pub async fn until(&mut self, needle: &[u8]) -> &[u8] {
        let result = timeout(WAIT, async {
            // Only the new bytes (and a needle's length before them) can
            // complete a match.
            let mut searched = 0;
            while find(&self.received[searched..], needle).is_none() {
                searched = self.received.len().saturating_sub(needle.len());
                let mut chunk = [0u8; 65536];
                let n = self.stream.read(&mut chunk).await.unwrap();
                if n == 0 {
                    return false;
                }
                self.received.extend_from_slice(&chunk[..n]);
            }
            true
        })
        .await;
        assert!(
            matches!(result, Ok(true)),
            "never got {:?}; got {:?}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(&self.received)
        );
        &self.received
    }

    /// Read until the server closes; returns everything received.
    pub async fn read_to_close(&mut self) -> &[u8] {
        timeout(WAIT, self.stream.read_to_end(&mut self.received))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "server did not close; got {:?}",
                    String::from_utf8_lossy(&self.received)
                )
            })
            .unwrap();
        &self.received
    }

    /// True if the server has not closed after waiting `d`; collects data.
    pub async fn still_open_after(&mut self, d: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return true,
                Ok(Ok(0)) | Ok(Err(_)) => return false,
                Ok(Ok(n)) => self.received.extend_from_slice(&chunk[..n]),
            }
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.received).into_owned()
    }
}

/// The HTTP header block meteord's templates produce for text/html modes.
pub const HTML_HEADER: &str = "HTTP/1.1 200 OK\r\nServer: meteord\r\nContent-Type: text/html; charset=utf-8\r\nPragma: no-cache\r\nCache-Control: no-cache, no-store, must-revalidate\r\nExpires: Thu, 1 Jan 1970 00:00:00 GMT\r\n\r\n";

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
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
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

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Send one HTTP/1.1 request (closing the connection) and parse the reply,
/// chunked or not.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let bytes = request_bytes(method, path, headers, body);
    parse_response(&http_raw(addr, &bytes).await)
}

/// The bytes of one HTTP/1.1 request that closes its connection.
pub fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Parse a whole HTTP/1.1 response, de-chunking its body.
pub fn parse_response(reply: &[u8]) -> Response {
    let split = find(reply, b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8_lossy(&reply[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = reply[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut plain = Vec::new();
        let mut rest = &body[..];
        while let Some(eol) = find(rest, b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16)
                .unwrap();
            if size == 0 {
                break;
            }
            plain.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        body = plain;
    }
    Response { status, head, body }
}

/// A real `redis-server` on a free loopback port, with its own directory;
/// killed when dropped.
pub struct Redis {
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// Serving TLS only, with a certificate of its own CA (`ca.crt`).
    tls: bool,
    options: Vec<String>,
    child: Option<Child>,
}

impl Redis {
    /// Nothing kept on disk: a restart comes back empty.
    pub fn start() -> Redis {
        Redis::start_with(&["--save", "", "--appendonly", "no"])
    }

    /// Every write on disk before Redis answers it: a restart keeps all.
    pub fn start_durable() -> Redis {
        Redis::start_with(&[
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ])
    }

    /// Nothing kept on disk, and clients must give this password.
    pub fn start_with_password(password: &str) -> Redis {
        Redis::start_with(&[
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            password,
        ])
    }

    pub fn start_with(options: &[&str]) -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Redis {
            port,
            tls: false,
            dir: tempfile::tempdir().unwrap(),
            options: options.iter().map(|o| o.to_string()).collect(),
            child: None,
        };
        redis.restart();
        redis
    }

    /// TLS only, with a server certificate (for 127.0.0.1) signed by a CA
    /// made for it: `ca_file()`.
    pub fn start_tls() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl");
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-days",
                    "1",
                    "-subj",
                    "/CN=test-ca",
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-subj",
                    "/CN=localhost",
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                ],
            ]
            .concat(),
        );
        std::fs::write(
            dir.path().join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ]);
        let path = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
        let options = vec![
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            "no".into(),
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            path("server.crt"),
            "--tls-key-file".into(),
            path("server.key"),
            "--tls-ca-cert-file".into(),
            path("ca.crt"),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        let mut redis = Redis {
            port,
            tls: true,
            dir,
            options,
            child: None,
        };
        redis.restart();
        redis
    }

    /// The CA file of a TLS server.
    pub fn ca_file(&self) -> String {
        self.dir.path().join("ca.crt").to_str().unwrap().to_string()
    }

    /// The URL to reach it (with the password, if it has one).
    pub fn url(&self) -> String {
        let password = self
            .options
            .iter()
            .position(|o| o == "--requirepass")
            .map(|i| format!(":{}@", self.options[i + 1]))
            .unwrap_or_default();
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://{password}127.0.0.1:{}/", self.port)
    }

    /// Start it (again, on the same port and directory) and wait until it
    /// answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server is already running");
        // (A TLS server's --port 0 --tls-port come later and win.)
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--dir", self.dir.path().to_str().unwrap()])
            .args(["--protected-mode", "no", "--daemonize", "no"])
            .args(&self.options)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test.sh installs it)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                if self.tls {
                    return;
                }
                // Any reply (PONG, or NOAUTH with a password) means it is up.
                let mut reply = [0u8; 1];
                if s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut reply).is_ok() {
                    return;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL it, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Run one command with redis-cli; returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-u", &self.url(), "--no-auth-warning"])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
