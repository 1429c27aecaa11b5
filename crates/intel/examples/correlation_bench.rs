//! Builds intel stores of N attributes whose values repeat with a Zipf distribution, once
//! with correlation and once without, and prints import time, correlation rows and bytes.
//! `bench/correlation.sh` runs it, and the generator is deterministic.
//!
//! Usage: correlation_bench WORK_DIR N [N...]

use std::path::Path;
use std::time::{Duration, Instant};

use misp::{Attribute, Event, Parsed, ParsedEvent};

// The same allocator as the iocwatch binary, so writes cost what they cost there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ATTRIBUTES_PER_EVENT: usize = 100;
/// Events per transaction, like a feed file of 1,000 events.
const EVENTS_PER_IMPORT: usize = 1_000;
/// Zipf exponent: the k-th most common value is drawn about 1/k as often as the first.
const ZIPF_EXPONENT: f64 = 1.0;

/// xorshift64*: small, fast and deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Ranks 0..k drawn with probability proportional to 1 / (rank + 1)^s.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(k: usize, s: f64) -> Zipf {
        let mut total = 0.0;
        let cumulative = (0..k)
            .map(|rank| {
                total += 1.0 / ((rank + 1) as f64).powf(s);
                total
            })
            .collect::<Vec<_>>();
        let cumulative = cumulative.into_iter().map(|c| c / total).collect();
        Zipf { cumulative }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cumulative
            .partition_point(|&c| c < u)
            .min(self.cumulative.len() - 1)
    }
}

/// Spreads a rank over 64 bits, so values look like digests.
fn mix(rank: u64) -> u64 {
    let mut x = rank.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Builds attribute `n` of the store with the value of rank `rank`. The index `n` picks the
/// type.
fn attribute(n: usize, rank: usize, event: usize) -> Attribute {
    let r = rank as u64;
    let hex64 = format!(
        "{:016x}{:016x}{:016x}{:016x}",
        mix(r),
        mix(r + 1),
        mix(r + 2),
        mix(r + 3)
    );
    let (kind, value) = match n % 20 {
        0..=11 => ("sha256", hex64),
        12..=14 => ("domain", format!("d{rank}.example.com")),
        15 | 16 => (
            "ip-dst",
            format!("10.{}.{}.{}", (r >> 16) & 255, (r >> 8) & 255, r & 255),
        ),
        17 | 18 => ("filename|sha256", format!("f{rank}.exe|{hex64}")),
        _ => ("md5", format!("{:016x}{:016x}", mix(r + 7), mix(r + 8))),
    };
    Attribute {
        uuid: Some(format!("{event:08x}-0000-4000-8000-{n:012x}")),
        r#type: kind.into(),
        category: Some("Payload delivery".into()),
        value,
        to_ids: Some(true),
        timestamp: Some(1_700_000_000),
        ..Attribute::default()
    }
}

/// Events `first..first + count` of a store of `total` attributes.
fn events(first: usize, count: usize, zipf: &Zipf, rng: &mut Rng) -> Parsed {
    let mut parsed = Parsed::default();
    for event in first..first + count {
        let attributes = (0..ATTRIBUTES_PER_EVENT)
            .map(|i| attribute(event * ATTRIBUTES_PER_EVENT + i, zipf.sample(rng), event))
            .collect();
        parsed.events.push(ParsedEvent {
            event: Event {
                uuid: format!("{event:08x}-1111-4000-8000-000000000000"),
                info: format!("bench event {event}"),
                date: Some("2024-01-01".into()),
                timestamp: Some(1_700_000_000),
                attributes,
                ..Event::default()
            },
            json: None,
        });
    }
    parsed
}

/// Reads the CPU time (user + system) of this process so far from `/proc/self/stat`. The
/// machine may be shared, so wall time alone would count waiting for a core.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the file, 12 and 13 after the command name;
    // Linux counts them in USER_HZ, 100 per second.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

struct Report {
    import: Duration,
    import_cpu: Duration,
    members: u64,
    values: u64,
    over: u64,
    correlation_bytes: u64,
    file_bytes: u64,
    pairs_within_limit: u64,
    pairs_without_limit: u64,
}

fn build(dir: &Path, total: usize, correlate: bool) -> Report {
    let _ = std::fs::remove_dir_all(dir);
    let mut store = intel::Store::open(dir).unwrap();
    if !correlate {
        store.set_correlation_enabled(false).unwrap();
    }
    let zipf = Zipf::new(total / 2, ZIPF_EXPONENT);
    let mut rng = Rng(0x5EED_CAFE_F00D_0001);
    let event_count = total / ATTRIBUTES_PER_EVENT;
    let mut import = Duration::ZERO;
    let mut import_cpu = Duration::ZERO;
    for first in (0..event_count).step_by(EVENTS_PER_IMPORT) {
        let count = EVENTS_PER_IMPORT.min(event_count - first);
        let parsed = events(first, count, &zipf, &mut rng);
        let started = Instant::now();
        let cpu_started = cpu_time();
        store.write_parsed(&parsed, "bench", None).unwrap();
        import += started.elapsed();
        import_cpu += cpu_time().saturating_sub(cpu_started);
    }
    let stats = store.correlation_stats().unwrap();
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let count = |sql: &str| -> u64 {
        conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
            .unwrap()
            .unwrap_or(0) as u64
    };
    Report {
        import,
        import_cpu,
        members: stats.members,
        values: stats.values,
        over: stats.over_correlating,
        correlation_bytes: count(
            "SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'correlation%'
                 OR name LIKE 'sqlite_autoindex_correlation%'",
        ),
        file_bytes: std::fs::metadata(store.path()).map_or(0, |m| m.len()),
        pairs_within_limit: count(
            "SELECT SUM(attributes * (attributes - 1) / 2) FROM correlation_shared
             WHERE attributes <= 100",
        ),
        pairs_without_limit: count(
            "SELECT SUM(attributes * (attributes - 1) / 2) FROM correlation_shared",
        ),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let work = args
        .next()
        .expect("usage: correlation_bench WORK_DIR N [N...]");
    let sizes: Vec<usize> = args
        .map(|a| a.parse().expect("N must be a number"))
        .collect();
    println!(
        "| attributes | import with correlation, wall (CPU) | without, wall (CPU) | \
         correlation rows | values | over-correlating | correlation bytes | bytes per attribute \
         | store file | pairs (limit 100) | pairs (no limit) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for total in sizes {
        let with = build(&Path::new(&work).join("with"), total, true);
        let without = build(&Path::new(&work).join("without"), total, false);
        println!(
            "| {total} | {:.2} s ({:.2} s) | {:.2} s ({:.2} s) | {} | {} | {} | {:.1} MiB | {:.1} \
             | {:.0} MiB | {} | {} |",
            with.import.as_secs_f64(),
            with.import_cpu.as_secs_f64(),
            without.import.as_secs_f64(),
            without.import_cpu.as_secs_f64(),
            with.members,
            with.values,
            with.over,
            with.correlation_bytes as f64 / 1048576.0,
            with.correlation_bytes as f64 / total as f64,
            with.file_bytes as f64 / 1048576.0,
            with.pairs_within_limit,
            with.pairs_without_limit,
        );
        let _ = std::fs::remove_dir_all(Path::new(&work).join("with"));
        let _ = std::fs::remove_dir_all(Path::new(&work).join("without"));
    }
}
