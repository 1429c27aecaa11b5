//! `iocwatch up --quarantine` on a file whose name is not valid UTF-8: events carry the
//! name with U+FFFD in place of the bad bytes, and the agent still finds and moves the file.

use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Maximum wait for `up` to report ready, and for the quarantine.
const DEADLINE: Duration = Duration::from_secs(20);

/// The anti-virus test file, put together at run time.
fn test_file_content() -> Vec<u8> {
    [
        r"X5O!P%@AP[4\PZX54(P^)7CC)7}$",
        "EICAR",
        "-STANDARD-ANTIVIRUS-TEST-",
        "FILE!$H+H*",
    ]
    .concat()
    .into_bytes()
}

fn quarantined_files(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name() != "quarantine.log")
        .map(|entry| entry.file_name().as_bytes().to_vec())
        .collect()
}

#[test]
fn file_name_that_is_not_utf8_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_iocwatch"))
        .env_remove("IOCWATCH_DATA_DIR")
        .env_remove("IOCWATCH_LOG")
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["up", "--listen", "127.0.0.1:0", "--quarantine"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("failed to start iocwatch up");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines
        .map_while(Result::ok)
        .any(|line| line.starts_with("ready in "));
    assert!(ready, "`up` did not get ready");

    let file = data_dir
        .join("drop")
        .join(std::ffi::OsStr::from_bytes(b"q\nname\xff.com"));
    std::fs::write(&file, test_file_content()).unwrap();
    let quarantine_dir = data_dir.join("agent/quarantine");
    let deadline = Instant::now() + DEADLINE;
    while file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let moved = quarantined_files(&quarantine_dir);
    let _ = child.kill();
    let _ = child.wait();

    assert!(!file.exists(), "the file is still in place");
    assert_eq!(moved.len(), 1, "{moved:?}");
    // The quarantined copy's name is UTF-8, so that the alert names it exactly; the record
    // keeps the original path's bytes in hex.
    let name = String::from_utf8(moved[0].clone()).unwrap();
    assert!(name.ends_with("name\u{FFFD}.com"), "{name}");
    let content = std::fs::read(quarantine_dir.join(&name)).unwrap();
    assert_eq!(content, test_file_content());
    let record = std::fs::read_to_string(quarantine_dir.join("quarantine.log")).unwrap();
    let raw_hex: String = file
        .as_os_str()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(record.contains(&raw_hex), "{record}");
}
