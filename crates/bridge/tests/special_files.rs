//! A FIFO in place of the options or alert file fails the run at once instead of blocking
//! wazuh-integratord, which waits for every run.

mod common;

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Harness, API_KEY};

/// Maximum time a rejected run may take. A blocked open never returns.
const RUN_LIMIT: Duration = Duration::from_secs(20);

fn make_fifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {} failed", path.display());
}

/// Runs the binary and returns its stderr, or fails when it is still running after
/// [`RUN_LIMIT`].
fn run_with_limit(args: &[OsString]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_custom-iocwatch"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start custom-iocwatch");
    let started = Instant::now();
    while child
        .try_wait()
        .expect("wait for custom-iocwatch")
        .is_none()
    {
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("custom-iocwatch still blocked after {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("output of custom-iocwatch");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn fifo_options_file_fails_without_blocking() {
    let harness = Harness::new();
    let alert = harness.alert("fim-added.json");
    let options = harness.path("custom-iocwatch-1715000000-4242.options");
    make_fifo(&options);

    let stderr = run_with_limit(&[
        alert.into_os_string(),
        API_KEY.into(),
        common::closed_port_url().into(),
        "".into(),
        options.into_os_string(),
        "2".into(),
        "0".into(),
    ]);

    assert!(stderr.contains("not a regular file"), "stderr: {stderr}");
}

#[test]
fn fifo_alert_file_fails_without_blocking() {
    let harness = Harness::new();
    let options = harness.options(serde_json::json!({}));
    let alert = harness.path("custom-iocwatch-1715000000-1234.alert");
    make_fifo(&alert);

    run_with_limit(&[
        alert.into_os_string(),
        API_KEY.into(),
        common::closed_port_url().into(),
        "".into(),
        options.into_os_string(),
        "2".into(),
        "0".into(),
    ]);

    let log = harness.log();
    assert!(log.contains("not a regular file"), "log: {log}");
}
