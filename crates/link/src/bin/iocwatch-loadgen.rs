//! Load generator for manager throughput: enrolls agents with a running
//! manager, sends synthetic syscheck events over TLS as fast as the manager
//! acknowledges them, and prints events per second as JSON.
//!
//! Usage: `iocwatch-loadgen --manager HOST:PORT --secret-file FILE
//! [--events N] [--connections N] [--batch N] [--window N] [--match-sha256 HEX
//! --match-every N]`. Only aim it at a manager you run yourself.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use wire::{EventBatch, EventId, Message, WireEvent};

struct Options {
    manager: String,
    secret: String,
    events: u64,
    connections: u64,
    batch: u64,
    window: usize,
    match_sha256: Option<String>,
    match_every: u64,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        manager: String::new(),
        secret: String::new(),
        events: 100_000,
        connections: 2,
        batch: 1000,
        window: 8,
        match_sha256: None,
        match_every: 1000,
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("missing value for `{flag}`"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("`{flag}` expects a number"))
        };
        match flag.as_str() {
            "--manager" => options.manager = value.clone(),
            "--secret-file" => {
                options.secret = std::fs::read_to_string(&value)
                    .map_err(|e| format!("failed to read `{value}`: {e}"))?
                    .trim()
                    .to_string()
            }
            "--events" => options.events = number()?,
            "--connections" => options.connections = number()?.max(1),
            "--batch" => options.batch = number()?.max(1),
            "--window" => options.window = number()?.max(1) as usize,
            "--match-sha256" => options.match_sha256 = Some(value.clone()),
            "--match-every" => options.match_every = number()?.max(1),
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    if options.manager.is_empty() || options.secret.is_empty() {
        return Err("--manager and --secret-file are required".into());
    }
    Ok(options)
}

/// Builds a syscheck event for a new file. Every `match_every`-th event carries the known hash.
fn event(n: u64, options: &Options) -> Value {
    let sha256 = match &options.match_sha256 {
        Some(known) if n.is_multiple_of(options.match_every) => known.clone(),
        _ => format!("{:064x}", u128::from(n) * 0x9e37_79b9_7f4a_7c15 + 1),
    };
    json!({
        "path": format!("/srv/load/file-{n}.bin"),
        "event": "added",
        "mode": "realtime",
        "size_after": 1024,
        "perm_after": "rw-r--r--",
        "uid_after": "0",
        "gid_after": "0",
        "md5_after": format!("{:032x}", u128::from(n) + 7),
        "sha1_after": format!("{:040x}", u128::from(n) + 11),
        "sha256_after": sha256,
        "mtime_after": "2024-05-01T10:00:00",
        "inode_after": n,
    })
}

async fn run_connection(index: u64, options: Arc<Options>) -> Result<u64, String> {
    let name = format!("loadgen-{}-{index}", std::process::id());
    let enroll = link::EnrollOptions {
        manager: &options.manager,
        secret: &options.secret,
        name: &name,
        version: env!("CARGO_PKG_VERSION"),
        ca_pem: None,
    };
    let identity = link::enroll(&enroll).await.map_err(|e| e.to_string())?;
    let config = link::agent_config(&identity.ca_pem, &identity.cert_pem, &identity.key_pem)
        .map_err(|e| e.to_string())?;
    let address = identity.events_address();
    let tcp = TcpStream::connect(&address)
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let host = identity
        .info
        .manager_host
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name =
        rustls_pki_types::ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let stream = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (mut reader, mut writer) = tokio::io::split(stream);

    let share = options.events / options.connections;
    let first = index * share;
    let stream_id = uuid::Uuid::new_v4().to_string();
    let max = wire::DEFAULT_MAX_FRAME_BYTES;
    let (mut next, mut batch_no, mut acked) = (0u64, 0u64, 0u64);
    let mut inflight: VecDeque<u64> = VecDeque::new();
    while acked < share {
        while inflight.len() < options.window && next < share {
            let count = options.batch.min(share - next);
            let events = (next..next + count)
                .map(|n| WireEvent {
                    id: EventId {
                        stream: stream_id.clone(),
                        seq: n + 1,
                    },
                    event: event(first + n, &options),
                })
                .collect();
            batch_no += 1;
            let message = Message::EventBatch(EventBatch {
                batch: batch_no,
                events,
            });
            wire::write_message(&mut writer, &message, max)
                .await
                .map_err(|e| e.to_string())?;
            inflight.push_back(count);
            next += count;
        }
        match wire::read_message(&mut reader, max)
            .await
            .map_err(|e| e.to_string())?
        {
            Some(Message::Ack(_)) => acked += inflight.pop_front().unwrap_or(0),
            Some(other) => return Err(format!("unexpected {:?} from the manager", other.kind())),
            None => return Err("the manager closed the connection".into()),
        }
    }
    Ok(acked)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let options = match parse_args() {
        Ok(options) => Arc::new(options),
        Err(message) => {
            eprintln!("iocwatch-loadgen: error: {message}");
            return std::process::ExitCode::from(2);
        }
    };

    let started = Instant::now();
    let tasks: Vec<_> = (0..options.connections)
        .map(|i| tokio::spawn(run_connection(i, options.clone())))
        .collect();
    let mut total = 0u64;
    for task in tasks {
        match task.await {
            Ok(Ok(acked)) => total += acked,
            Ok(Err(message)) => {
                eprintln!("iocwatch-loadgen: error: {message}");
                return std::process::ExitCode::FAILURE;
            }
            Err(err) => {
                eprintln!("iocwatch-loadgen: error: {err}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    let elapsed = started.elapsed().max(Duration::from_micros(1));
    let report = json!({
        "events": total,
        "connections": options.connections,
        "batch": options.batch,
        "window": options.window,
        "seconds": elapsed.as_secs_f64(),
        "events_per_sec": (total as f64 / elapsed.as_secs_f64()).round(),
    });
    println!("{report}");
    std::process::ExitCode::SUCCESS
}
