//! Benchmark of `attributes/restSearch` over loopback: latency of searches by value in a
//! store of N attributes, and the streaming rate of a full JSON export.
//!
//!     cargo run --release -p api --example search_bench -- [ATTRIBUTES] [QUERIES] [EXPORT]
//!
//! Defaults: 10,000,000 attributes, 2,000 searches, export of 1,000,000 attributes. The
//! store is filled with SQL in one transaction (1,000 attributes per event, 1 in 10 a
//! `filename|sha256`, the others sha256), then served on 127.0.0.1 by `api::serve`.

use std::io::Read;
use std::time::{Duration, Instant};

use api::{AppState, Db, Role};
use rusqlite::params;
use sha2::{Digest, Sha256};

const PER_EVENT: u64 = 1000;

fn value_of(i: u64) -> (String, &'static str) {
    let hash = hex(&Sha256::digest(i.to_le_bytes()));
    if i.is_multiple_of(10) {
        (format!("sample{i}.exe|{hash}"), "filename|sha256")
    } else {
        (hash, "sha256")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn fill(db: &Db, attributes: u64) -> rusqlite::Result<()> {
    let mut conn = rusqlite::Connection::open(db.path())?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA cache_size = -1000000;",
    )?;
    let tx = conn.transaction()?;
    {
        let mut event = tx.prepare(
            "INSERT INTO events (id, uuid, info, timestamp, published, tags, source, format, imported_at)
             VALUES (?1, ?2, ?3, 1700000000, 1, '[]', 'bench', 'bench', 1700000000)",
        )?;
        let mut attribute = tx.prepare(
            "INSERT INTO attributes (id, event_id, uuid, type, category, value, to_ids, timestamp)
             VALUES (?1, ?2, ?3, ?4, 'Payload delivery', ?5, 1, 1700000000)",
        )?;
        for i in 0..attributes {
            let event_id = (i / PER_EVENT + 1) as i64;
            if i.is_multiple_of(PER_EVENT) {
                let uuid = uuid::Uuid::new_v4().to_string();
                event.execute(params![event_id, uuid, format!("bench event {event_id}")])?;
            }
            let id = (event_id << 32) | (i % PER_EVENT + 1) as i64;
            let (value, type_name) = value_of(i);
            let uuid = uuid::Uuid::new_v4().to_string();
            attribute.execute(params![id, event_id, uuid, type_name, value])?;
        }
    }
    tx.commit()?;
    conn.execute_batch("ANALYZE;")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn search_latencies(
    agent: &ureq::Agent,
    url: &str,
    key: &str,
    attributes: u64,
    queries: u64,
) -> Vec<Duration> {
    let mut latencies = Vec::new();
    for q in 0..queries {
        // Spread over the store; every 10th query searches the hash half of a composite.
        let i = (q * 7_919_993) % attributes;
        let (value, _) = value_of(i);
        let bare = value.rsplit('|').next().unwrap_or(&value).to_owned();
        let body = serde_json::json!({"value": bare}).to_string();
        let start = Instant::now();
        let mut response = agent
            .post(url)
            .header("Authorization", key)
            .header("Content-Type", "application/json")
            .send(body.as_bytes())
            .expect("search request");
        let text = response.body_mut().read_to_string().expect("search body");
        latencies.push(start.elapsed());
        assert!(text.contains(&bare), "search {q} for {bare} found nothing");
    }
    latencies.sort();
    latencies
}

fn export(agent: &ureq::Agent, url: &str, key: &str, limit: u64) -> (Duration, u64) {
    let body = serde_json::json!({"limit": limit, "returnFormat": "json"}).to_string();
    let start = Instant::now();
    let response = agent
        .post(url)
        .header("Authorization", key)
        .header("Content-Type", "application/json")
        .send(body.as_bytes())
        .expect("export request");
    let mut reader = response
        .into_body()
        .into_with_config()
        .limit(u64::MAX)
        .reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = reader.read(&mut buf).expect("export body");
        if n == 0 {
            break;
        }
        bytes += n as u64;
    }
    (start.elapsed(), bytes)
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace('_', "").parse().ok())
        .collect();
    let attributes = args.first().copied().unwrap_or(10_000_000);
    let queries = args.get(1).copied().unwrap_or(2_000);
    let export_limit = args.get(2).copied().unwrap_or(1_000_000).min(attributes);

    let dir = tempfile::tempdir().expect("temporary folder");
    let db = Db::open(dir.path()).expect("store");
    let (_, key) = db.add_user("bench", Role::ReadOnly).expect("user");
    let start = Instant::now();
    fill(&db, attributes).expect("fill the store");
    println!(
        "filled {attributes} attributes in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("listen");
    let url = format!(
        "http://{}/attributes/restSearch",
        listener.local_addr().expect("address")
    );
    runtime.spawn(api::serve(
        listener,
        AppState::new(db),
        std::future::pending(),
    ));

    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    // Warm the page cache and the connection pools before measuring.
    search_latencies(&agent, &url, &key, attributes, 200);
    let latencies = search_latencies(&agent, &url, &key, attributes, queries);
    println!(
        "restSearch by value, {queries} searches: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
    );

    let (elapsed, bytes) = export(&agent, &url, &key, export_limit);
    let secs = elapsed.as_secs_f64();
    println!(
        "JSON export of {export_limit} attributes: {secs:.2} s, {:.0} attributes/s, {:.1} MB/s ({bytes} bytes)",
        export_limit as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}
