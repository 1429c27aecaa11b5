//! In-memory hashing throughput of each digest alone and of all three together, one thread.
//!
//! Run with `cargo bench -p hashing --bench throughput`. It prints one `key=value` line per
//! figure, in MB/s (10^6 bytes per second), best of five rounds over a 256 KiB buffer.

use std::hint::black_box;
use std::time::Instant;

use hashing::{Algorithms, MultiHasher};

const BUFFER_BYTES: usize = 256 * 1024;
const BUFFERS_PER_ROUND: usize = 2000;

fn megabytes_per_second(algorithms: Algorithms, data: &[u8]) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        let mut hasher = MultiHasher::new(algorithms);
        for _ in 0..BUFFERS_PER_ROUND {
            hasher.update(black_box(data));
        }
        black_box(hasher.finish());
        best = best.min(started.elapsed().as_secs_f64());
    }
    (data.len() * BUFFERS_PER_ROUND) as f64 / best / 1e6
}

fn main() {
    let data: Vec<u8> = (0..BUFFER_BYTES as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for list in ["md5", "sha1", "sha256", "md5,sha1,sha256"] {
        let algorithms: Algorithms = list.parse().expect("valid algorithm list");
        let key = list.replace(',', "_");
        println!(
            "{key}_mb_per_second={:.0}",
            megabytes_per_second(algorithms, &data)
        );
    }
}
