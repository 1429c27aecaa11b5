//! Times the phases of one import (read, parse, store write, detector load), for profiling.
//! Each phase prints its wall time and the CPU time (user + system) the process spent in
//! it, because on a shared machine the wall time includes waiting for a core.

use std::time::{Duration, Instant};

// The same allocator as the iocwatch binary, so the phases cost what they cost there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Reads the CPU time (user + system) of this process so far from `/proc/self/stat`.
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

/// Runs `phase`, printing its name, wall time and CPU time.
fn timed<T>(name: &str, phase: impl FnOnce() -> T) -> T {
    let (wall, cpu) = (Instant::now(), cpu_time());
    let out = phase();
    println!(
        "{name:<7} {:>8.3} s wall {:>8.3} s CPU",
        wall.elapsed().as_secs_f64(),
        cpu_time().saturating_sub(cpu).as_secs_f64()
    );
    out
}

fn main() {
    // As `iocwatch intel import` does: without transparent huge pages, so the first touch
    // of the allocator's sparse regions does not zero a whole 2 MiB page.
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes a flag of this
    // process.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    let usage = "usage: import_phases FILE DATA_DIR";
    let path = std::env::args().nth(1).expect(usage);
    let data = std::env::args().nth(2).expect(usage);
    let bytes = timed("read", || std::fs::read(&path).unwrap());
    let meta = misp::FileMeta {
        name: path.clone(),
        source_key: path.clone(),
        mtime: 0,
    };
    let parsed = timed("parse", || {
        misp::parse_bytes(&bytes, None, &meta, &Default::default()).unwrap()
    });
    let mut store = intel::Store::open(std::path::Path::new(&data)).unwrap();
    let summary = timed("write", || {
        store.write_parsed(&parsed, &path, None).unwrap()
    });
    println!("        {summary:?}");
    timed("drop", || drop(parsed));
    let detector = timed("load", || intel::Detector::load(&store).unwrap());
    println!("        {:?}", detector.stats());
}
