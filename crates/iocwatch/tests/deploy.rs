//! The systemd units in deploy/systemd: `systemd-analyze verify` reports nothing about
//! them, and their exposure score under `systemd-analyze security` stays low.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SERVICES: &[&str] = &[
    "iocwatch-server.service",
    "iocwatch-agent.service",
    "iocwatch-intel-pull.service",
];
const TIMERS: &[&str] = &["iocwatch-intel-pull.timer"];
/// Where the units expect the binary; the test points them at the one just built.
const INSTALLED_BINARY: &str = "/usr/local/bin/iocwatch";
/// Highest accepted `systemd-analyze security` exposure (0 is best, 10 worst). The units
/// scored 1.2 (server and intel pull) and 2.4 (agent) with systemd 252.
const MAX_EXPOSURE: f64 = 3.0;

fn unit_source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/systemd")
        .join(name)
}

/// Copies the unit into `dir` with ExecStart pointed at the built binary.
fn staged_unit(dir: &Path, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(unit_source(name))
        .unwrap_or_else(|e| panic!("failed to read unit {name}: {e}"));
    if name.ends_with(".service") {
        assert!(
            text.contains(&format!("ExecStart={INSTALLED_BINARY} ")),
            "{name}: ExecStart must run {INSTALLED_BINARY}"
        );
    }
    let staged = text.replace(INSTALLED_BINARY, env!("CARGO_BIN_EXE_iocwatch"));
    let path = dir.join(name);
    std::fs::write(&path, staged).expect("write staged unit");
    path
}

/// Runs systemd-analyze, failing the test with a clear message when it cannot run.
fn systemd_analyze(args: &[&str], unit: &Path) -> Output {
    Command::new("systemd-analyze")
        .args(args)
        .arg(unit)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run systemd-analyze ({e}); install the systemd package \
                 (scripts/test does) to check the units in deploy/systemd"
            )
        })
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Staged together, so that a timer finds its service.
    let units = SERVICES.iter().chain(TIMERS);
    let staged: Vec<(&str, PathBuf)> = units
        .map(|name| (*name, staged_unit(dir.path(), name)))
        .collect();
    for (name, unit) in &staged {
        let output = systemd_analyze(&["verify"], unit);
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let about_unit: Vec<&str> = report.lines().filter(|l| l.contains(name)).collect();
        assert!(
            about_unit.is_empty(),
            "systemd-analyze verify reported on {name}:\n{}",
            about_unit.join("\n")
        );
        assert!(
            output.status.success(),
            "systemd-analyze verify failed on {name} ({}):\n{report}",
            output.status
        );
    }
}

#[test]
fn units_keep_low_exposure_score() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in SERVICES {
        let unit = staged_unit(dir.path(), name);
        let output = systemd_analyze(&["security", "--offline=yes", "--no-pager"], &unit);
        let report = String::from_utf8_lossy(&output.stdout);
        let score: f64 = report
            .lines()
            .find_map(|l| l.split("Overall exposure level for ").nth(1))
            .and_then(|rest| rest.split(": ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|number| number.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "no exposure level in systemd-analyze security output for {name}:\n{report}{}",
                    String::from_utf8_lossy(&output.stderr)
                )
            });
        assert!(
            score <= MAX_EXPOSURE,
            "{name}: exposure {score} is above {MAX_EXPOSURE}:\n{report}"
        );
    }
}
