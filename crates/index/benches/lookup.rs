//! Lookup throughput and memory of the digest index on 10M sha256 plus 10M md5, half hits.
//!
//! Run with `cargo bench -p index --bench lookup [-- DIGESTS_PER_ALGORITHM]`. It prints one
//! `key=value` line per figure; bench/run.sh collects them.

use std::hint::black_box;
use std::time::Instant;

use index::{DigestIndex, DigestIndexBuilder};

const QUERIES: usize = 4_000_000;
const ROUNDS: usize = 5;

/// splitmix64: fast, seedable and good enough to stand in for digest bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes()[..chunk.len()]);
        }
    }
}

/// A query digest, stored inline so that reading the queries costs no cache misses.
#[derive(Clone, Copy)]
enum Query {
    Md5([u8; 16]),
    Sha256([u8; 32]),
}

impl AsRef<[u8]> for Query {
    fn as_ref(&self) -> &[u8] {
        match self {
            Query::Md5(d) => d,
            Query::Sha256(d) => d,
        }
    }
}

fn sha256(seed: u64) -> [u8; 32] {
    let mut d = [0u8; 32];
    Rng(seed).fill(&mut d);
    d
}

fn md5(seed: u64) -> [u8; 16] {
    let mut d = [0u8; 16];
    Rng(seed ^ 0x5555_5555_5555_5555).fill(&mut d);
    d
}

/// Builds the index and returns it with the wall and thread CPU seconds of `build`.
fn build(n: u64, with_md5: bool) -> (DigestIndex, f64, f64) {
    let mut builder = DigestIndexBuilder::new();
    builder.reserve(32, n as usize);
    if with_md5 {
        builder.reserve(16, n as usize);
    }
    for i in 0..n {
        builder.insert(&sha256(i), i as u32);
        if with_md5 {
            builder.insert(&md5(i), i as u32);
        }
    }
    let (started, cpu_started) = (Instant::now(), thread_cpu_seconds());
    let index = builder.build();
    let cpu = thread_cpu_seconds() - cpu_started;
    (index, started.elapsed().as_secs_f64(), cpu)
}

/// Half hits (digests inserted under seeds below `n`), half misses, md5 and sha256 mixed.
fn queries(n: u64) -> Vec<Query> {
    let mut rng = Rng(42);
    (0..QUERIES)
        .map(|_| {
            let r = rng.next();
            let seed = if r & 1 == 0 {
                (r >> 8) % n
            } else {
                n + (r >> 8) % (1 << 40)
            };
            if r & 2 == 0 {
                Query::Sha256(sha256(seed))
            } else {
                Query::Md5(md5(seed))
            }
        })
        .collect()
}

/// Best lookups per second over the rounds, by wall time and by this thread's CPU time, and
/// the hit count of one round. On a machine shared with other work the CPU-time figure leaves
/// out the time the thread waited for a core.
struct Measured {
    per_wall_second: f64,
    per_cpu_second: f64,
    hits: usize,
}

fn measure(mut round: impl FnMut() -> usize) -> Measured {
    let mut best = Measured {
        per_wall_second: 0.0,
        per_cpu_second: 0.0,
        hits: 0,
    };
    for _ in 0..ROUNDS {
        let (started, cpu_started) = (Instant::now(), thread_cpu_seconds());
        best.hits = black_box(round());
        let cpu = thread_cpu_seconds() - cpu_started;
        best.per_wall_second = best
            .per_wall_second
            .max(QUERIES as f64 / started.elapsed().as_secs_f64());
        best.per_cpu_second = best.per_cpu_second.max(QUERIES as f64 / cpu);
    }
    best
}

/// CPU time of the calling thread, from `CLOCK_THREAD_CPUTIME_ID`.
fn thread_cpu_seconds() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec, and the clock id is a constant that Linux
    // supports.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
}

/// Prints, for each table's line array, its size and the bytes of the memory mappings that
/// contain it that `/proc/self/smaps` reports as `AnonHugePages` (2 MiB pages).
fn print_huge_pages(index: &DigestIndex) {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut mappings: Vec<(usize, usize, u64)> = Vec::new();
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or_default();
        if let Some((start, end)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) {
                mappings.push((start, end, 0));
                continue;
            }
        }
        if let (Some(kib), Some(last)) = (line.strip_prefix("AnonHugePages:"), mappings.last_mut())
        {
            last.2 = kib
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(0)
                * 1024;
        }
    }
    for (i, range) in index.line_ranges().iter().enumerate() {
        let huge: u64 = mappings
            .iter()
            .filter(|(start, end, _)| *start < range.end && range.start < *end)
            .map(|(_, _, huge)| huge)
            .sum();
        let mib = |bytes: f64| bytes / (1 << 20) as f64;
        println!("table{i}_line_mib={:.1}", mib(range.len() as f64));
        println!("table{i}_anon_huge_pages_mib={:.1}", mib(huge as f64));
    }
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let n: u64 = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(10_000_000);

    let (sha_only, build_secs, build_cpu) = build(n, false);
    println!("sha256_only_digests={}", sha_only.len());
    println!("sha256_only_build_seconds={build_secs:.2}");
    println!("sha256_only_build_cpu_seconds={build_cpu:.2}");
    println!(
        "heap_bytes_per_sha256={:.1}",
        sha_only.heap_bytes() as f64 / sha_only.len() as f64
    );
    drop(sha_only);

    let (index, build_secs, build_cpu) = build(n, true);
    println!("digests={}", index.len());
    println!("build_seconds={build_secs:.2}");
    println!("build_cpu_seconds={build_cpu:.2}");
    println!(
        "heap_bytes_per_digest={:.1}",
        index.heap_bytes() as f64 / index.len() as f64
    );
    println!("rss_mib={:.0}", rss_bytes() as f64 / (1 << 20) as f64);
    print_huge_pages(&index);

    let queries = queries(n);
    let single = measure(|| {
        queries
            .iter()
            .filter(|q| !index.get(q.as_ref()).is_empty())
            .count()
    });
    println!("queries={QUERIES} hits={}", single.hits);
    println!("get_lookups_per_second={:.0}", single.per_wall_second);
    println!("get_lookups_per_cpu_second={:.0}", single.per_cpu_second);

    let mut results = Vec::with_capacity(QUERIES);
    let batched = measure(|| {
        results.clear();
        index.get_batch(&queries, &mut results);
        results.iter().filter(|ids| !ids.is_empty()).count()
    });
    println!("get_batch_hits={}", batched.hits);
    println!(
        "get_batch_lookups_per_second={:.0}",
        batched.per_wall_second
    );
    println!(
        "get_batch_lookups_per_cpu_second={:.0}",
        batched.per_cpu_second
    );
}
