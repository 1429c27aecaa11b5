//! The integration log: one JSON line per intel lookup with its hash,
//! result, latency and error, in the spirit of Wazuh's integrations.log.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde::Serialize;

/// One intel lookup, as the analysis reports it.
#[derive(Clone, Debug, Serialize)]
pub struct LookupRecord {
    /// `md5`, `sha1` or `sha256`.
    pub algorithm: &'static str,
    pub hash: String,
    /// `match`, `no_match`, `suppressed` (warninglisted only) or `error`.
    pub result: &'static str,
    /// `(MISP event id, attribute id)` of each match.
    pub matches: Vec<(String, String)>,
    pub latency_us: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The open integration log.
pub struct IntegrationLog {
    writer: BufWriter<File>,
}

#[derive(Serialize)]
struct Line<'a> {
    timestamp: &'a str,
    integration: &'static str,
    agent_id: &'a str,
    path: &'a str,
    #[serde(flatten)]
    lookup: &'a LookupRecord,
}

impl IntegrationLog {
    pub fn open(path: &Path) -> io::Result<IntegrationLog> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(IntegrationLog {
            writer: BufWriter::with_capacity(128 * 1024, file),
        })
    }

    pub fn write(
        &mut self,
        timestamp: &str,
        agent_id: &str,
        path: &str,
        lookup: &LookupRecord,
    ) -> io::Result<()> {
        let line = Line {
            timestamp,
            integration: "intel",
            agent_id,
            path,
            lookup,
        };
        serde_json::to_writer(&mut self.writer, &line)?;
        self.writer.write_all(b"\n")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}
