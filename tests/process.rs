//! The real binary: command line, config files, signals, shutdown.
#![cfg(unix)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Control, Process, Stream};

fn meteord(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_meteord"))
        .args(args)
        .output()
        .unwrap()
}

fn write_config(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

#[test]
fn help_and_version() {
    let out = meteord(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for key in [
        "-ControllerPort",
        "-SubscriberDynamicPageAddress",
        "-MaxMessagesPerChannel",
        "-Key.mode",
        "-LogDirectory",
        "meteord.YYYY-MM-DD.log",
        "update --check",
        "--no-tray",
    ] {
        assert!(help.contains(key), "{key} missing from --help");
    }
    assert_eq!(String::from_utf8(meteord(&["-help"]).stdout).unwrap(), help);
    let version = String::from_utf8(meteord(&["-v"]).stdout).unwrap();
    assert_eq!(version, format!("meteord {}\n", env!("CARGO_PKG_VERSION")));
    assert_eq!(
        String::from_utf8(meteord(&["--version"]).stdout).unwrap(),
        version
    );
}

#[test]
fn command_line_errors_are_clear() {
    let out = meteord(&["-Bogus", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("unknown parameter name 'Bogus'"), "{err}");
    let err = String::from_utf8(meteord(&["-Sub", "1"]).stderr).unwrap();
    assert!(err.contains("ambiguous parameter name 'Sub'"), "{err}");
    let err = String::from_utf8(meteord(&["-ControllerPort", "99999"]).stderr).unwrap();
    assert!(
        err.contains("ControllerPort (command line): expected a port number"),
        "{err}"
    );
}

#[test]
fn bad_config_files_name_the_line_and_the_key() {
    let file = write_config("# ok\nPingInterval 3\n[longpoll]\nMaxMesages 1\n");
    let out = meteord(&["-ConfigFileLocation", file.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!(
            "{}: line 4: unknown key 'MaxMesages'",
            file.path().display()
        )),
        "{err}"
    );

    let file = write_config("PingInterval 3\n\n[longpoll]\nMaxMessages lots\n");
    let err =
        String::from_utf8(meteord(&["-ConfigFileLocation", file.path().to_str().unwrap()]).stderr)
            .unwrap();
    assert!(err.contains("MaxMessages (mode [longpoll], config file line 4): expected a whole number (got 'lots')"), "{err}");

    let err =
        String::from_utf8(meteord(&["-ConfigFileLocation", "/nonexistent/meteord.conf"]).stderr)
            .unwrap();
    assert!(err.contains("/nonexistent/meteord.conf"), "{err}");
}

#[test]
fn the_port_already_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let builtin = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/meteord.conf");
    let out = meteord(&[
        "-ConfigFileLocation",
        builtin,
        "-ControllerPort",
        &port,
        "-SubscriberPort",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!(
            "cannot listen on control address 127.0.0.1:{port}"
        )),
        "{err}"
    );
}

#[test]
fn config_file_and_command_line_combine_with_escapes() {
    let file = write_config(
        "MessageTemplate file:~text~\\n\n[custom]\nPersist 1\nMaxMessages 2\nMessageTemplate [~id~\\s~text~]\\t\n",
    );
    let process = Process::start(&[
        "-ConfigFileLocation",
        file.path().to_str().unwrap(),
        "-HeaderT",
        "H\\r\\n",
        "-MaxMessages.custom",
        "1",
    ]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = Control::connect(process.control).await;
        assert_eq!(c.command("ADDMESSAGE x one").await, "OK\t0\r\n");
        assert_eq!(c.command("ADDMESSAGE x two").await, "OK\t1\r\n");
        let body = common::get(process.subscriber, "/push/h/custom/x.h").await;
        // Command line beats the file (MaxMessages.custom 1); the backlog is
        // one batch, then the limit closes.
        assert_eq!(String::from_utf8(body).unwrap(), "H\r\n[0 one]\t[1 two]\t");
        let body = common::get(process.subscriber, "/push/h/other/x.b1").await;
        assert_eq!(String::from_utf8(body).unwrap(), "H\r\nfile:two\n");
    });
}

#[test]
fn sighup_reloads_the_config_and_sigusr1_empties_the_caches() {
    let file = write_config("MessageTemplate old:~text~\n");
    let mut process = Process::start(&[
        "-ConfigFileLocation",
        file.path().to_str().unwrap(),
        "-HeaderTemplate",
        "",
    ]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = Control::connect(process.control).await;
        c.command("ADDMESSAGE r a").await;
        let body = common::get(process.subscriber, "/push/h/m/r.h").await;
        assert_eq!(body, b"old:a");

        std::fs::write(file.path(), "MessageTemplate new:~text~\n").unwrap();
        process.signal(libc::SIGHUP);
        process.wait_log("SIGHUP");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let body = common::get(process.subscriber, "/push/h/m/r.h").await;
        assert_eq!(body, b"new:a");

        // A broken file is refused and the running config stays.
        std::fs::write(file.path(), "NoSuchKey 1\n").unwrap();
        process.signal(libc::SIGHUP);
        process.wait_log("reload failed");
        let body = common::get(process.subscriber, "/push/h/m/r.h").await;
        assert_eq!(body, b"new:a");

        process.signal(libc::SIGUSR1);
        process.wait_log("SIGUSR1");
        tokio::time::sleep(Duration::from_millis(200)).await;
        c.send(b"LISTCHANNELS\r\n").await;
        assert_eq!(c.read_until(b"--EOT--\r\n").await, b"OK\r\n--EOT--\r\n");
        // Ids keep counting after the caches are emptied.
        assert_eq!(c.command("ADDMESSAGE r b").await, "OK\t1\r\n");
    });
    process.signal(libc::SIGTERM);
    assert_eq!(process.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn sigusr2_drops_the_document_cache() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.js"), "one").unwrap();
    let process = Process::start(&["-SubscriberDocumentRoot", dir.path().to_str().unwrap()]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        assert!(common::get(process.subscriber, "/a.js")
            .await
            .ends_with(b"\r\n\r\none"));
        std::fs::write(dir.path().join("a.js"), "two").unwrap();
        // Cached until told otherwise.
        assert!(common::get(process.subscriber, "/a.js")
            .await
            .ends_with(b"\r\n\r\none"));
        process.signal(libc::SIGUSR2);
        process.wait_log("SIGUSR2");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(common::get(process.subscriber, "/a.js")
            .await
            .ends_with(b"\r\n\r\ntwo"));
    });
}

#[test]
fn sigterm_shuts_down_gracefully_with_shutdown_messages() {
    let mut process = Process::start(&["-ControllerShutdownMsg", "SHUTDOWN\\r\\n"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (mut sub, mut c) = rt.block_on(async {
        let mut c = Control::connect(process.control).await;
        c.command("ADDMESSAGE g x").await;
        let mut sub = Stream::open(process.subscriber, "/push/g1/xhrinteractive/g").await;
        sub.until(b"ch(\"g\", 0)").await;
        // Make sure the subscription is attached before the signal.
        loop {
            if c.command("COUNTSUBSCRIBERS g").await == "OK 1\r\n" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (sub, c)
    });
    process.signal(libc::SIGTERM);
    rt.block_on(async {
        let body = String::from_utf8(sub.read_to_close().await.to_vec()).unwrap();
        assert!(body.ends_with("<script>eof();</script>\r\n"), "{body}");
        assert_eq!(c.read_to_end().await, b"SHUTDOWN\r\n");
    });
    assert_eq!(process.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn default_config_location_falls_back_to_the_builtin_configuration() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meteord"))
        .args([
            "--no-tray",
            "-LogDirectory",
            "off",
            "-ControllerPort",
            "0",
            "-SubscriberPort",
            "0",
            "-SubscriberIP",
            "127.0.0.1",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stderr), &mut first).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    if std::path::Path::new("/etc/meteord.conf").is_file() {
        assert!(
            first.contains("configuration from /etc/meteord.conf"),
            "{first}"
        );
    } else {
        assert!(
            first.contains("using the built-in configuration"),
            "{first}"
        );
    }
}

#[test]
fn sighup_reloads_under_load_lose_nothing() {
    let file =
        write_config("PingInterval 0\n[xhrinteractive]\nPersist 1\nMessageTemplate <~id~>\n");
    let process = Process::start(&["-ConfigFileLocation", file.path().to_str().unwrap()]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (mut sub, publishing) = rt.block_on(async {
        let mut sub = Stream::open(process.subscriber, "/push/s/xhrinteractive/load").await;
        sub.until(b"\r\n\r\n").await;
        let mut c = Control::connect(process.control).await;
        loop {
            if c.command("COUNTSUBSCRIBERS load").await == "OK 1\r\n" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Publish 2,000 messages in pipelined batches while reloads happen.
        let publishing = tokio::spawn(async move {
            let mut next = 0;
            for _ in 0..100 {
                let batch: String = (0..20).map(|_| "ADDMESSAGE load x\r\n").collect();
                c.send(batch.as_bytes()).await;
                for _ in 0..20 {
                    assert_eq!(
                        c.read_until(b"\r\n").await,
                        format!("OK\t{next}\r\n").as_bytes()
                    );
                    next += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        (sub, publishing)
    });
    for _ in 0..10 {
        process.signal(libc::SIGHUP);
        std::thread::sleep(Duration::from_millis(40));
    }
    rt.block_on(async {
        publishing.await.unwrap();
        sub.until(b"<1999>").await;
        let text = sub.text();
        let body = text.split_once("\r\n\r\n").unwrap().1;
        let ids: Vec<u64> = body
            .split('<')
            .filter_map(|p| p.split_once('>'))
            .filter_map(|(id, _)| id.parse().ok())
            .collect();
        assert_eq!(ids, (0..2000).collect::<Vec<_>>());
    });
    process.wait_log("SIGHUP");
}

#[test]
fn without_a_display_the_server_runs_headless() {
    // No --no-tray: a `tray` build looks for a display, finds none and
    // says so; a default build has no tray to look for.
    let process = Process::start_without_display(&[]);
    let log = process.log.lock().unwrap().join("\n");
    let said_headless = log.contains("no display (DISPLAY, WAYLAND_DISPLAY): running headless");
    assert_eq!(said_headless, cfg!(feature = "tray"), "{log}");
    assert!(!log.contains("tray icon ready"), "{log}");
}
