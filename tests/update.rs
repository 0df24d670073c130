//! Self-update end to end: a copy of the real binary updates itself from a
//! release feed served on 127.0.0.1 — a signed newer build is installed; a
//! tampered, an unsigned and a wrongly signed one are refused and the old
//! file stays. Then a running server updates from its admin UI and comes
//! back on the same ports, its messages kept.
//!
//! The archives are signed with a key of the tests' own (`common/release.rs`),
//! which debug builds of meteord trust when it is named in
//! METEORD_UPDATE_TEST_KEY. Rollback: `tests/rollback.rs`.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::free_port;
use common::release::*;

/// Run `<exe> update <extra>` against the feed.
fn run_update(exe: &Path, feed: &Feed, extra: &[&str]) -> std::process::Output {
    Command::new(exe)
        .arg("update")
        .args(extra)
        .args(["-ConfigFileLocation", builtin_config()])
        .args(["-UpdateFeed", &feed.url()])
        .env(
            "METEORD_UPDATE_TEST_KEY",
            hex(test_key().verifying_key().as_bytes()),
        )
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_update_is_installed() {
    let feed = Feed::start().await;
    let installed = install_copy();
    let newer = installed.newer();
    feed.offer(sign(&archive(&newer), &test_key(), &asset_name()));

    let exe = installed.exe.clone();
    let check = tokio::task::spawn_blocking({
        let url = feed.url();
        let exe = exe.clone();
        move || {
            Command::new(&exe)
                .args(["update", "--check"])
                .args(["-ConfigFileLocation", builtin_config()])
                .args(["-UpdateFeed", &url])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(
        text(&check.stdout).contains(&format!("meteord {NEW_VERSION} is available")),
        "{}",
        text(&check.stdout)
    );
    assert_eq!(std::fs::read(&exe).unwrap(), installed.original);

    let out = tokio::task::spawn_blocking(move || run_update(&exe, &feed, &[]))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains(&format!("meteord {NEW_VERSION} installed")),
        "{}",
        text(&out.stdout)
    );
    let now = std::fs::read(&installed.exe).unwrap();
    assert!(now == newer, "the executable is not the served build");
    // And the new file runs.
    let version = Command::new(&installed.exe)
        .arg("--version")
        .output()
        .unwrap();
    assert!(version.status.success());
}

/// Serve `archive`, run `update`, and expect a refusal naming the
/// signature with the executable unchanged.
async fn refused(archive: Vec<u8>) -> String {
    let feed = Feed::start().await;
    let installed = install_copy();
    feed.offer(archive);
    let exe = installed.exe.clone();
    let out = tokio::task::spawn_blocking(move || run_update(&exe, &feed, &[]))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        std::fs::read(&installed.exe).unwrap() == installed.original,
        "the executable was changed"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("meteord update: the update was refused, its signature does not verify against the trusted release key"),
        "{err}"
    );
    assert!(
        err.contains("the installed program was not changed"),
        "{err}"
    );
    err
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_update_is_refused() {
    let mut signed = sign(
        &archive(b"#!/bin/sh\necho evil\n"),
        &test_key(),
        &asset_name(),
    );
    // Change one byte of the signed content (past the gzip header that
    // carries the signature).
    let at = signed.len() - 12;
    signed[at] ^= 0x01;
    refused(signed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsigned_update_is_refused() {
    refused(archive(b"#!/bin/sh\necho unsigned\n")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_signed_with_another_key_is_refused() {
    refused(sign(&archive(b"#!/bin/sh\n"), &other_key(), &asset_name())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signature_for_another_file_name_is_refused() {
    // Signed as another platform's archive, then offered as this one.
    refused(sign(
        &archive(b"#!/bin/sh\n"),
        &test_key(),
        "meteord-99.0.0-other.tar.gz",
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_older_signed_archive_announced_as_new_is_refused() {
    let feed = Feed::start().await;
    let installed = install_copy();
    // A genuine, signed archive of an old release, offered as 99.0.0: the
    // signature holds (it covers the old name), the version does not.
    let old_name = format!("meteord-0.0.1-{}.tar.gz", self_update::get_target());
    feed.offer_as(
        sign(&archive(&installed.newer()), &test_key(), &old_name),
        &old_name,
    );
    let exe = installed.exe.clone();
    let out = tokio::task::spawn_blocking(move || run_update(&exe, &feed, &[]))
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("announces meteord 99.0.0 but its archive is"),
        "{err}"
    );
    assert_eq!(std::fs::read(&installed.exe).unwrap(), installed.original);
}

#[test]
fn update_without_a_feed_says_so() {
    let out = Command::new(env!("CARGO_BIN_EXE_meteord"))
        .args(["update", "-ConfigFileLocation", builtin_config()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("updating is off: this build carries no release feed"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_server_updates_and_restarts_on_the_same_ports() {
    let feed = Feed::start().await;
    let installed = install_copy();
    let newer = installed.newer();
    let signed = sign(&archive(&newer), &test_key(), &asset_name());
    // First the feed serves a tampered copy.
    let mut tampered = signed.clone();
    let at = tampered.len() - 12;
    tampered[at] ^= 0x01;
    feed.offer(tampered);
    let data = tempfile::tempdir().unwrap();
    let (control_port, subscriber_port, admin_port) = (free_port(), free_port(), free_port());

    let mut child = Command::new(&installed.exe)
        .arg("--no-tray")
        .args(["-ConfigFileLocation", builtin_config()])
        .args(["-UpdateFeed", &feed.url()])
        .args(["-DataDirectory", data.path().to_str().unwrap()])
        .args(["-LogDirectory", "off", "-Persistence", "snapshot"])
        .args(["-ControllerPort", &control_port.to_string()])
        .args(["-SubscriberPort", &subscriber_port.to_string()])
        .args(["-SubscriberIP", "127.0.0.1"])
        .args(["-AdminPort", &admin_port.to_string()])
        .env(
            "METEORD_UPDATE_TEST_KEY",
            hex(test_key().verifying_key().as_bytes()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let stderr = child.stderr.take().unwrap();
        let log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                log.lock().unwrap().push(line);
            }
        });
    }
    let wait_log = |needle: String, count: usize| {
        let log = log.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(30), async {
                while log
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|l| l.contains(&needle))
                    .count()
                    < count
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("never logged {needle:?}: {:?}", log.lock().unwrap()));
        }
    };
    let control: SocketAddr = format!("127.0.0.1:{control_port}").parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{admin_port}").parse().unwrap();
    wait_log(format!("control listening on {control}"), 1).await;

    // A message to keep, and a subscriber that the restart will close.
    let mut publisher = common::Control::connect(control).await;
    assert_eq!(
        publisher.command("ADDMESSAGE kept hello").await,
        "OK\t0\r\n"
    );
    drop(publisher);
    let subscriber: SocketAddr = format!("127.0.0.1:{subscriber_port}").parse().unwrap();
    let mut sub = common::Stream::open(subscriber, "/push/u1/xhrinteractive/kept.h").await;
    sub.until(b"\"hello\"").await;

    // Sign in to the admin UI and press Install.
    let setup = admin_form(
        admin,
        "/setup",
        "",
        &[
            ("username", "admin"),
            ("password", "update test password"),
            ("password2", "update test password"),
        ],
    )
    .await;
    assert_eq!(setup.status, 303, "{}", text(&setup.body));
    let cookie = setup
        .head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, value)| value.trim().strip_prefix("meteord_session="))
        .map(|v| format!("meteord_session={}", v.split(';').next().unwrap()))
        .expect("a session cookie");
    let dashboard = common::request(admin, "GET", "/", &[("Cookie", &cookie)], b"").await;
    let page = text(&dashboard.body);
    let at = page.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    let csrf = page[at..at + page[at..].find('"').unwrap()].to_string();
    let checked = admin_form(admin, "/update/check", &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(checked.status, 303);
    let dashboard = common::request(admin, "GET", "/", &[("Cookie", &cookie)], b"").await;
    assert!(
        text(&dashboard.body).contains(&format!("meteord {NEW_VERSION}")),
        "{}",
        text(&dashboard.body)
    );
    // The tampered update is refused; the server runs on, unchanged.
    let refused = admin_form(admin, "/update/install", &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(refused.status, 303);
    let dashboard = common::request(admin, "GET", "/", &[("Cookie", &cookie)], b"").await;
    assert!(
        text(&dashboard.body).contains("the update was refused, its signature does not verify"),
        "{}",
        text(&dashboard.body)
    );
    assert!(std::fs::read(&installed.exe).unwrap() == installed.original);
    assert!(child.try_wait().unwrap().is_none(), "the server exited");
    let mut publisher = common::Control::connect(control).await;
    assert_eq!(publisher.command("COUNTSUBSCRIBERS kept").await, "OK 1\r\n");
    drop(publisher);

    // Then the genuine one: installed, and the server restarts into it.
    feed.offer(signed);
    let _ = admin_form(admin, "/update/install", &cookie, &[("csrf", &csrf)]).await;

    wait_log("restarting into the updated executable".into(), 1).await;
    // The old process closed its subscribers and wrote its caches...
    sub.read_to_close().await;
    // ...and the same process (exec) serves again, on the same ports.
    wait_log(format!("control listening on {control}"), 2).await;
    wait_log(format!("admin listening on {admin}"), 2).await;
    assert_eq!(child.id(), pid);
    assert!(child.try_wait().unwrap().is_none(), "the server exited");
    assert!(std::fs::read(&installed.exe).unwrap() == newer);
    let mut publisher = common::Control::connect(control).await;
    // The message survived the restart, and ids go on.
    assert_eq!(
        publisher.command("ADDMESSAGE kept again").await,
        "OK\t1\r\n"
    );
    let mut sub = common::Stream::open(subscriber, "/push/u2/xhrinteractive/kept.h").await;
    sub.until(b"\"again\"").await;
    assert!(sub.text().contains("\"hello\""), "{}", sub.text());

    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// POST a form to the admin UI (same-origin, with a session cookie).
async fn admin_form(
    admin: SocketAddr,
    path: &str,
    cookie: &str,
    fields: &[(&str, &str)],
) -> common::Response {
    let body = serde_urlencoded::to_string(fields).unwrap();
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if !cookie.is_empty() {
        headers.push(("Cookie", cookie));
    }
    common::request(admin, "POST", path, &headers, body.as_bytes()).await
}
