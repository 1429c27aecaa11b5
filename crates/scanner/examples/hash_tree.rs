//! Hashes every file under the given paths and prints the scan summary: a quick way to
//! measure the walker and the digests without an intel store.
//!
//! Usage: `cargo run --release -p scanner --example hash_tree -- [--threads N]
//! [--digests md5,sha1,sha256] PATH...`

use std::path::PathBuf;
use std::time::Instant;

use scanner::{scan, ScanOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut options = ScanOptions::default();
    let mut roots = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => {
                options.threads = args.next().ok_or("--threads needs a value")?.parse()?
            }
            "--digests" => {
                options.algorithms = args.next().ok_or("--digests needs a value")?.parse()?
            }
            _ => roots.push(PathBuf::from(arg)),
        }
    }

    let started = Instant::now();
    let summary = scan(&roots, &options, |_| {});
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "files={} bytes={} errors={} seconds={seconds:.3} mb_per_second={:.0}",
        summary.files,
        summary.bytes,
        summary.errors,
        summary.bytes as f64 / seconds / 1e6
    );
    Ok(())
}
