//! Log files of the real binary: where they go, how many are kept, their
//! formats. (That no secret reaches them is in admin.rs.)
#![cfg(unix)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::Process;

/// The `meteord.*.log` files in `dir`, sorted.
fn log_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("meteord.") && n.ends_with(".log"))
        .collect();
    names.sort();
    names
}

/// Stop with SIGTERM and wait, so every line is written.
fn stop(mut process: Process) {
    process.signal(libc::SIGTERM);
    assert_eq!(process.wait_exit(Duration::from_secs(15)), Some(0));
}

#[test]
fn daily_files_in_the_log_directory_keep_the_newest() {
    let logs = tempfile::tempdir().unwrap();
    // Files of earlier days, oldest first; another program's file too.
    for day in 1..=5 {
        std::fs::write(
            logs.path().join(format!("meteord.2020-01-0{day}.log")),
            "old\n",
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(logs.path().join("other.log"), "not ours\n").unwrap();

    let dir = logs.path().to_str().unwrap();
    let process = Process::start(&["-LogDirectory", dir, "-LogRetention", "3"]);
    process.wait_log(&format!("log files in {dir}"));
    let control = process.control;
    stop(process);

    // Today's file and the two newest old ones: three in all.
    let files = log_files(logs.path());
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files.contains(&"meteord.2020-01-04.log".to_string()));
    assert!(files.contains(&"meteord.2020-01-05.log".to_string()));
    assert!(logs.path().join("other.log").exists());
    let today = files
        .iter()
        .find(|f| !f.starts_with("meteord.2020"))
        .unwrap();
    let text = std::fs::read_to_string(logs.path().join(today)).unwrap();
    assert!(
        text.contains(&format!("control listening on {control}")),
        "{text}"
    );
    assert!(text.contains("shutdown complete"), "{text}");
    // Plain text lines, no terminal colours.
    assert!(!text.contains('\x1b'), "{text:?}");
    assert!(!text.trim_start().starts_with('{'), "{text}");
}

#[test]
fn json_log_files() {
    let logs = tempfile::tempdir().unwrap();
    let dir = logs.path().to_str().unwrap();
    let process = Process::start(&["-LogDirectory", dir, "-LogFormat", "json"]);
    process.wait_log("log files in");
    stop(process);
    let files = log_files(logs.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(logs.path().join(&files[0])).unwrap();
    let mut messages = Vec::new();
    for line in text.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(event["timestamp"].is_string(), "{line}");
        assert!(event["level"].is_string(), "{line}");
        messages.push(event["fields"]["message"].as_str().unwrap().to_string());
    }
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("control listening on")),
        "{messages:?}"
    );
    assert!(messages.iter().any(|m| m == "shutdown complete"));
}

#[test]
fn an_unwritable_log_directory_leaves_standard_error() {
    // A file where the directory should be.
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let dir = blocker.path().join("logs");
    let process = Process::start(&["-LogDirectory", dir.to_str().unwrap()]);
    process.wait_log("no log files: cannot write to");
    process.wait_log("no log files; logging to standard error only");
    stop(process);
}

#[test]
fn log_directory_off_and_bad_formats() {
    let process = Process::start(&["-LogDirectory", "off"]);
    process.wait_log("no log files; logging to standard error only");
    stop(process);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meteord"))
        .args(["-LogFormat", "xml", "-LogDirectory", "off"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("LogFormat"), "{err}");
    assert!(err.contains("'xml' is not text or json"), "{err}");
}
