//! A real `redis-server` for the multi-node tests.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::WAIT;

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
        let port = super::free_port();
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
        let port = super::free_port();
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
