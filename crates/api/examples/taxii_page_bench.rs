//! Benchmark of one TAXII page read: the query behind a page of 1,000 indicators, run as
//! the TAXII store runs it (a viewer of another organisation, so the sharing predicate
//! applies), once paging by the stored `added` column and once by the expression it
//! replaced, which joins the events to compute the date added of every indicator.
//!
//!     cargo run -p api --example taxii_page_bench -- [ATTRIBUTES]...
//!
//! Defaults: 100,000 and 1,000,000. Each store holds sha256 indicators, 1,000 an event,
//! filled with SQL in one transaction; a page is read at the start, the middle and the end
//! of the collection (paging by `next` cursor), and the median of 5 runs is printed.

use std::time::{Duration, Instant};

use api::{Db, Viewer};
use rusqlite::{params, Connection};

const PER_EVENT: u64 = 1000;
const PAGE: usize = 1000;

fn fill(db: &Db, attributes: u64) -> rusqlite::Result<()> {
    let mut conn = Connection::open(db.path())?;
    conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -500000;")?;
    let tx = conn.transaction()?;
    {
        let mut event = tx.prepare(
            "INSERT INTO events (id, uuid, info, timestamp, published, tags, source, format,
                 imported_at, distribution)
             VALUES (?1, ?2, 'bench', 1700000000, 1, '[]', 'bench', 'bench', ?3, 1)",
        )?;
        let mut attribute = tx.prepare(
            "INSERT INTO attributes (id, event_id, uuid, type, category, value, to_ids,
                 timestamp, added)
             VALUES (?1, ?2, ?3, 'sha256', 'Payload delivery', ?4, 1, ?5, MAX(?5, ?6))",
        )?;
        for i in 0..attributes {
            let event_id = (i / PER_EVENT + 1) as i64;
            // Events imported over time, attributes with timestamps around them.
            let imported_at = 1_700_000_000 + event_id * 60;
            if i.is_multiple_of(PER_EVENT) {
                event.execute(params![event_id, format!("{event_id:032x}"), imported_at])?;
            }
            let id = (event_id << 32) | (i % PER_EVENT + 1) as i64;
            let timestamp = imported_at - 3600 + (i % 7200) as i64;
            let value = format!("{:064x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            attribute.execute(params![
                id,
                event_id,
                format!("{i:032x}"),
                value,
                timestamp,
                imported_at
            ])?;
        }
    }
    tx.commit()?;
    conn.execute_batch("ANALYZE;")
}

/// The page query, with the date added given by `added`.
fn page_sql(added: &str, viewer: &Viewer) -> String {
    format!(
        "SELECT a.id, a.uuid, a.value, {added} AS added
         FROM attributes a JOIN events e ON e.id = a.event_id
         WHERE a.to_ids = 1 AND a.deleted = 0 AND {}
           AND ({added}, a.id) > (?1, ?2)
         ORDER BY {added}, a.id LIMIT {PAGE}",
        viewer.attribute_sql("a", "e")
    )
}

/// Reads one page after cursor `after`; returns its time and the last cursor.
fn read_page(conn: &Connection, sql: &str, after: (i64, i64)) -> (Duration, (i64, i64)) {
    let start = Instant::now();
    let mut stmt = conn.prepare_cached(sql).expect("page query");
    let rows: Vec<(i64, i64)> = stmt
        .query_map(params![after.0, after.1], |r| {
            let _: String = r.get(1)?;
            let _: String = r.get(2)?;
            Ok((r.get(3)?, r.get(0)?))
        })
        .expect("page rows")
        .collect::<Result<_, _>>()
        .expect("page rows");
    (start.elapsed(), rows.last().copied().unwrap_or(after))
}

/// Median time of a page at the start, the middle and the end of the collection.
fn measure(conn: &Connection, sql: &str, attributes: u64) -> [Duration; 3] {
    let mut cursors = vec![(0, 0)];
    let mut after = (0, 0);
    let pages = attributes as usize / PAGE;
    for page in 1..pages {
        // Cursors from the fast query serve both, since they page in the same order.
        after = read_page(conn, &page_sql("a.added", &Viewer::SITE_ADMIN), after).1;
        if page == pages / 2 || page == pages - 1 {
            cursors.push(after);
        }
    }
    let mut out = [Duration::ZERO; 3];
    for (slot, cursor) in out.iter_mut().zip(cursors) {
        let mut runs: Vec<Duration> = (0..5).map(|_| read_page(conn, sql, cursor).0).collect();
        runs.sort();
        *slot = runs[2];
    }
    out
}

fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace('_', "").parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        sizes
    };
    let viewer = Viewer {
        org_id: 2,
        site_admin: false,
    };
    println!("| indicators | query | first page | middle page | last page |");
    println!("|---:|---|---:|---:|---:|");
    for attributes in sizes {
        let dir = tempfile::tempdir().expect("temporary folder");
        let db = Db::open(dir.path()).expect("store");
        fill(&db, attributes).expect("fill the store");
        let conn = Connection::open(db.path()).expect("open");
        let queries = [
            ("stored `added`, index seek", "a.added"),
            (
                "computed from two tables (before)",
                "MAX(COALESCE(a.timestamp, 0), e.imported_at)",
            ),
        ];
        for (name, added) in queries {
            let times = measure(&conn, &page_sql(added, &viewer), attributes);
            let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
            println!(
                "| {attributes} | {name} | {} | {} | {} |",
                ms(times[0]),
                ms(times[1]),
                ms(times[2])
            );
        }
    }
}
