//! The integration log: one JSON line per intel lookup with its hash,
//! result, latency and error, in the spirit of Wazuh's integrations.log.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde::ser::{SerializeStruct, Serializer};
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

/// One line: the time, agent and path, then the lookup's fields in their declared order.
struct Line<'a> {
    timestamp: &'a str,
    integration: &'static str,
    agent_id: &'a str,
    path: &'a str,
    lookup: &'a LookupRecord,
}

impl Serialize for Line<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let lookup = self.lookup;
        let fields = if lookup.error.is_some() { 10 } else { 9 };
        let mut line = serializer.serialize_struct("Line", fields)?;
        line.serialize_field("timestamp", self.timestamp)?;
        line.serialize_field("integration", self.integration)?;
        line.serialize_field("agent_id", self.agent_id)?;
        line.serialize_field("path", self.path)?;
        line.serialize_field("algorithm", lookup.algorithm)?;
        line.serialize_field("hash", &lookup.hash)?;
        line.serialize_field("result", lookup.result)?;
        line.serialize_field("matches", &lookup.matches)?;
        line.serialize_field("latency_us", &lookup.latency_us)?;
        if let Some(error) = &lookup.error {
            line.serialize_field("error", error)?;
        }
        line.end()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn written(lookup: &LookupRecord) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("integrations.json");
        let mut log = IntegrationLog::open(&path).unwrap();
        log.write("2024-05-01T10:00:00Z", "001", "/tmp/a", lookup)
            .unwrap();
        log.flush().unwrap();
        fs::read_to_string(&path).unwrap()
    }

    #[test]
    fn line_lists_fields_in_order() {
        let lookup = LookupRecord {
            algorithm: "sha256",
            hash: "ab".into(),
            result: "match",
            matches: vec![("12".into(), "34".into())],
            latency_us: 1.5,
            error: None,
        };
        let expected = "{\"timestamp\":\"2024-05-01T10:00:00Z\",\"integration\":\"intel\",\
            \"agent_id\":\"001\",\"path\":\"/tmp/a\",\"algorithm\":\"sha256\",\"hash\":\"ab\",\
            \"result\":\"match\",\"matches\":[[\"12\",\"34\"]],\"latency_us\":1.5}\n";
        assert_eq!(written(&lookup), expected);
    }

    #[test]
    fn error_comes_last() {
        let lookup = LookupRecord {
            algorithm: "md5",
            hash: "zz".into(),
            result: "error",
            matches: Vec::new(),
            latency_us: 0.0,
            error: Some("`zz` is not a hex digest".into()),
        };
        let line = written(&lookup);
        assert!(
            line.ends_with(",\"error\":\"`zz` is not a hex digest\"}\n"),
            "{line}"
        );
        assert!(
            line.contains("\"matches\":[],\"latency_us\":0.0,"),
            "{line}"
        );
    }
}
