//! Times the phases of one import (read, parse, store write, detector load), for profiling.

use std::time::Instant;

// The same allocator as the iocwatch binary, so the phases cost what they cost there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: import_phases FILE DATA_DIR");
    let data = std::env::args()
        .nth(2)
        .expect("usage: import_phases FILE DATA_DIR");
    let t = Instant::now();
    let bytes = std::fs::read(&path).unwrap();
    println!("read    {:?}", t.elapsed());
    let t = Instant::now();
    let meta = misp::FileMeta {
        name: path.clone(),
        source_key: path.clone(),
        mtime: 0,
    };
    let parsed = misp::parse_bytes(&bytes, None, &meta, &Default::default()).unwrap();
    println!("parse   {:?}", t.elapsed());
    let t = Instant::now();
    let mut store = intel::Store::open(std::path::Path::new(&data)).unwrap();
    let summary = store.write_parsed(&parsed, &path, None).unwrap();
    println!("write   {:?} {summary:?}", t.elapsed());
    let t = Instant::now();
    drop(parsed);
    println!("drop    {:?}", t.elapsed());
    let t = Instant::now();
    let detector = intel::Detector::load(&store).unwrap();
    println!("load    {:?} {:?}", t.elapsed(), detector.stats());
}
