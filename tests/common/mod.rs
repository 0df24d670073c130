//! Helpers for integration tests: start a real server on ephemeral loopback
//! ports (in this process, or as the real binary), and talk to it over real
//! sockets.
#![allow(dead_code)]

pub mod admin;
mod process;
pub mod receiver;
mod redis;
pub mod release;
mod tls_client;
pub mod tokens;
pub mod ws;
#[allow(unused_imports)] // used by the TLS tests only
pub use tls_client::{connector, fingerprint, session_cookie};
#[allow(unused_imports)] // each test crate uses some of these
pub use {process::Process, redis::Redis};

use std::net::SocketAddr;
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

/// A loopback TCP port for a server that must be told it before it
/// starts (pebble and meteord must agree on the port ACME validates, a
/// child process takes its ports on the command line). Chosen below the
/// kernel's ephemeral range: a port from `bind(0)` is free only for a
/// moment, since any outgoing connection of any test running beside this
/// one may take it as its local port before the server binds it.
pub fn free_port() -> u16 {
    use std::hash::BuildHasher;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768u16);
    let (low, span) = (10_000u16, ephemeral_low.saturating_sub(10_000).max(1));
    // A random start, so tests choosing at the same time keep apart.
    let start = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
    // Never the same port twice in one test process.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let port = (0..span)
        .map(|i| low + ((start + u64::from(i)) % u64::from(span)) as u16)
        .find(|&port| {
            !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        })
        .expect("a free loopback port below the ephemeral range");
    given.push(port);
    port
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
