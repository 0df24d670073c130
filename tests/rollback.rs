//! Keeping the previous program and going back to it, with the real
//! binary: `meteord update --rollback`, and the automatic rollback of an
//! update whose program dies or fails within its first seconds. Also which
//! feed applies: a copy installed by a package ignores the built-in one.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::release::*;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn test_key_hex() -> String {
    hex(test_key().verifying_key().as_bytes())
}

/// `<exe> update <extra>` against the feed.
fn update(exe: &Path, feed: &str, extra: &[&str]) -> Output {
    Command::new(exe)
        .arg("update")
        .args(extra)
        .args(["-ConfigFileLocation", builtin_config(), "-UpdateFeed", feed])
        .env("METEORD_UPDATE_TEST_KEY", test_key_hex())
        .output()
        .unwrap()
}

/// A copy of the binary, updated from the feed to "a newer build" (the
/// same program with a marker appended).
async fn updated_copy() -> Installed {
    let feed = Feed::start().await;
    let installed = install_copy();
    let newer = installed.newer();
    feed.offer(sign(&archive(&newer), &test_key(), &asset_name()));
    let (exe, url) = (installed.exe.clone(), feed.url());
    let out = tokio::task::spawn_blocking(move || update(&exe, &url, &[]))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::fs::read(&installed.exe).unwrap() == newer);
    installed
}

fn previous(installed: &Installed) -> std::path::PathBuf {
    installed.dir.path().join("meteord.previous")
}

#[tokio::test(flavor = "multi_thread")]
async fn update_keeps_the_previous_program_and_rollback_restores_it() {
    let installed = updated_copy().await;
    assert!(
        std::fs::read(previous(&installed)).unwrap() == installed.original,
        "the program before the update is kept"
    );
    let out = Command::new(&installed.exe)
        .args(["update", "--rollback"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("is back in place"),
        "{}",
        text(&out.stdout)
    );
    assert!(std::fs::read(&installed.exe).unwrap() == installed.original);
    // The replaced program is kept in turn: a second rollback undoes it.
    assert!(std::fs::read(previous(&installed)).unwrap() == installed.newer());
    let again = Command::new(&installed.exe)
        .args(["update", "--rollback"])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(std::fs::read(&installed.exe).unwrap() == installed.newer());
}

#[test]
fn without_a_kept_program_there_is_nothing_to_roll_back_to() {
    let installed = install_copy();
    let out = Command::new(&installed.exe)
        .args(["update", "--rollback"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no previous version is kept"),
        "{}",
        text(&out.stderr)
    );
    assert!(std::fs::read(&installed.exe).unwrap() == installed.original);
}

/// A server started from `exe`, its standard error collected.
struct Running {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn start(exe: &Path, data: &Path, trial_seconds: u64, extra: &[&str]) -> Running {
        let mut child = Command::new(exe)
            .arg("--no-tray")
            .args(["-ConfigFileLocation", builtin_config()])
            .args([
                "-DataDirectory",
                data.to_str().unwrap(),
                "-LogDirectory",
                "off",
            ])
            .args([
                "-ControllerPort",
                "0",
                "-SubscriberPort",
                "0",
                "-AdminPort",
                "0",
            ])
            .args(["-SubscriberIP", "127.0.0.1"])
            .args(extra)
            .env("METEORD_UPDATE_TRIAL_SECONDS", trial_seconds.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        Running { child, log }
    }

    fn wait_log(&self, needle: &str) {
        let started = Instant::now();
        while !self.log.lock().unwrap().iter().any(|l| l.contains(needle)) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "never logged {needle:?}: {:?}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill_hard(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn stop(mut self) -> i32 {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_version_that_dies_on_its_first_run_is_rolled_back_at_the_next_start() {
    let installed = updated_copy().await;
    let data = tempfile::tempdir().unwrap();
    let exe = installed.exe.clone();
    tokio::task::spawn_blocking(move || {
        // The new program starts, then dies before it has proven itself.
        let first = Running::start(&exe, data.path(), 60, &[]);
        first.wait_log("control listening on");
        first.kill_hard();
        // The next start goes back to the previous program, and serves.
        let second = Running::start(&exe, data.path(), 60, &[]);
        second.wait_log("did not stay up after its update");
        second.wait_log("control listening on");
        assert!(std::fs::read(&exe).unwrap() == installed.original);
        assert_eq!(second.stop(), 0);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_version_that_fails_to_start_is_rolled_back_at_once() {
    let installed = updated_copy().await;
    let data = tempfile::tempdir().unwrap();
    let exe = installed.exe.clone();
    let out = tokio::task::spawn_blocking(move || {
        // A configuration the program refuses: it exits within its first
        // second, so the previous program is put back and started (and,
        // with the same bad configuration, stops too).
        Command::new(&exe)
            .args(["--no-tray", "-ConfigFileLocation", builtin_config()])
            .args(["-DataDirectory", data.path().to_str().unwrap()])
            .args(["-SubscriberDynamicPageAddress", "no-slash"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = text(&out.stderr);
    assert!(err.contains("failed within its first seconds"), "{err}");
    assert!(std::fs::read(&installed.exe).unwrap() == installed.original);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_that_served_its_trial_stays() {
    let installed = updated_copy().await;
    let data = tempfile::tempdir().unwrap();
    let exe = installed.exe.clone();
    tokio::task::spawn_blocking(move || {
        let first = Running::start(&exe, data.path(), 1, &[]);
        first.wait_log("the update is confirmed");
        first.kill_hard();
        let second = Running::start(&exe, data.path(), 1, &[]);
        second.wait_log("control listening on");
        assert!(std::fs::read(&exe).unwrap() == installed.newer());
        assert_eq!(second.stop(), 0);
    })
    .await
    .unwrap();
}

#[test]
fn which_feed_applies() {
    let check = |exe: &Path, extra: &[&str]| {
        let out = Command::new(exe)
            .args(["update", "--check", "-ConfigFileLocation", builtin_config()])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        text(&out.stderr)
    };
    // A source build carries no feed.
    let installed = install_copy();
    let err = check(&installed.exe, &[]);
    assert!(err.contains("this build carries no release feed"), "{err}");
    let err = check(&installed.exe, &["-UpdateFeed", "off"]);
    assert!(err.contains("UpdateFeed is set to off"), "{err}");

    // Installed by a package: /usr/bin/meteord and /usr/share/meteord.
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("bin")).unwrap();
    std::fs::create_dir_all(root.path().join("share/meteord")).unwrap();
    let exe = root.path().join("bin/meteord");
    std::fs::copy(&installed.exe, &exe).unwrap();
    std::fs::write(root.path().join("share/meteord/meteord-package"), "deb\n").unwrap();
    let err = check(&exe, &[]);
    assert!(err.contains("installed by a package (deb)"), "{err}");
}
