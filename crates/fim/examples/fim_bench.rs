//! Benchmark driver for realtime file monitors: writes files and times how long a watcher
//! takes to print each one, reading the watcher's stdout.
//!
//! ```text
//! fim_bench latency DIR FILES GAP_MS READY -- COMMAND...   one file at a time
//! fim_bench burst   DIR FILES READY -- COMMAND...          all files back to back
//! ```
//!
//! COMMAND is started in its own process group with stdout piped; READY is text that the
//! watcher prints (on stdout or stderr) once it watches DIR. A stdout line counts for a file
//! when it is a JSON object with that `path` and a `sha256_after`, or when its last
//! whitespace-separated word is the path (as `sha256sum` prints). Times come from one
//! monotonic clock: the writer stamps just before `close()`, the reader when the line
//! arrives. Results are printed as one JSON object.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Size of each written file.
const FILE_BYTES: usize = 4096;

/// Maximum wait for the watcher to become ready or to report a file.
const WAIT: Duration = Duration::from_secs(300);

/// A burst is over when no line arrived for this long.
const QUIET: Duration = Duration::from_secs(5);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let split = args
        .iter()
        .position(|a| a == "--")
        .unwrap_or_else(|| usage());
    let (head, command) = (&args[..split], &args[split + 1..]);
    if command.is_empty() {
        usage();
    }
    let result = match head.first().map(String::as_str) {
        Some("latency") if head.len() == 5 => {
            let files = parse(&head[2]);
            let gap = Duration::from_millis(parse(&head[3]));
            latency(&head[1], files as usize, gap, &head[4], command)
        }
        Some("burst") if head.len() == 4 => {
            burst(&head[1], parse(&head[2]) as usize, &head[3], command)
        }
        _ => usage(),
    };
    println!("{result}");
}

fn usage() -> ! {
    eprintln!("usage: fim_bench latency DIR FILES GAP_MS READY -- COMMAND...");
    eprintln!("       fim_bench burst DIR FILES READY -- COMMAND...");
    std::process::exit(2);
}

fn parse(text: &str) -> u64 {
    text.parse().unwrap_or_else(|_| usage())
}

/// A watcher process and the stdout lines it printed, stamped on arrival.
struct Watcher {
    child: Child,
    lines: Receiver<(Instant, String)>,
}

impl Watcher {
    fn start(command: &[String], ready: &str) -> Watcher {
        let mut child = Command::new(&command[0])
            .args(&command[1..])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start `{}`: {e}", command[0]));
        let (tx, lines) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let ready_out = ready.to_string();
        let ready_tx_out = ready_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let now = Instant::now();
                if line.contains(&ready_out) {
                    let _ = ready_tx_out.send(());
                }
                if tx.send((now, line)).is_err() {
                    break;
                }
            }
        });
        let stderr = child.stderr.take().expect("stderr is piped");
        let ready_err = ready.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains(&ready_err) {
                    let _ = ready_tx.send(());
                }
            }
        });
        ready_rx
            .recv_timeout(WAIT)
            .expect("the watcher never printed the READY text");
        // Lines printed before the writer starts (a start-up scan) are not timed.
        while lines.try_recv().is_ok() {}
        Watcher { child, lines }
    }

    fn stop(mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// Returns the path a watcher line reports, if it reports a hashed file.
fn reported_path(line: &str) -> Option<String> {
    if line.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        value.get("sha256_after")?.as_str()?;
        return value.get("path")?.as_str().map(str::to_string);
    }
    line.split_whitespace().last().map(str::to_string)
}

/// Writes one file and returns the instant just before its `close()`.
fn write_file(path: &str, content: &[u8]) -> Instant {
    let mut file = std::fs::File::create(path).expect("the benchmark folder is writable");
    file.write_all(content)
        .expect("writing a small file succeeds");
    let before_close = Instant::now();
    drop(file);
    before_close
}

fn content(i: usize) -> Vec<u8> {
    let mut data = vec![(i % 251) as u8; FILE_BYTES];
    data[..8].copy_from_slice(&(i as u64).to_le_bytes());
    data
}

fn latency(dir: &str, files: usize, gap: Duration, ready: &str, command: &[String]) -> String {
    let watcher = Watcher::start(command, ready);
    let mut micros = Vec::with_capacity(files);
    for i in 0..files {
        let path = format!("{dir}/lat{i:06}.bin");
        let closed = write_file(&path, &content(i));
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, line) = watcher
                .lines
                .recv_timeout(left)
                .expect("the watcher stopped reporting");
            if reported_path(&line).as_deref() == Some(path.as_str()) {
                micros.push(at.duration_since(closed).as_secs_f64() * 1e6);
                break;
            }
        }
        std::thread::sleep(gap);
    }
    watcher.stop();
    micros.sort_by(f64::total_cmp);
    let pct = |q: f64| micros[((micros.len() - 1) as f64 * q).round() as usize];
    format!(
        "{{\"files\":{files},\"p50_us\":{:.0},\"p90_us\":{:.0},\"p99_us\":{:.0},\"max_us\":{:.0}}}",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        micros[micros.len() - 1]
    )
}

fn burst(dir: &str, files: usize, ready: &str, command: &[String]) -> String {
    let watcher = Watcher::start(command, ready);
    let start = Instant::now();
    for i in 0..files {
        write_file(&format!("{dir}/burst{i:06}.bin"), &content(i));
    }
    let written = Instant::now();
    let mut seen: HashMap<String, Instant> = HashMap::new();
    let mut last = written;
    while seen.len() < files {
        match watcher.lines.recv_timeout(QUIET) {
            Ok((at, line)) => {
                if let Some(path) = reported_path(&line).filter(|p| p.contains("/burst")) {
                    seen.entry(path).or_insert(at);
                    last = last.max(at);
                }
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    watcher.stop();
    format!(
        "{{\"files\":{files},\"reported\":{},\"write_ms\":{:.0},\"last_after_writer_ms\":{:.0}}}",
        seen.len(),
        written.duration_since(start).as_secs_f64() * 1e3,
        last.saturating_duration_since(written).as_secs_f64() * 1e3
    )
}
