//! alerts.json: one Wazuh 4.x alert per line, rotated by size and by UTC date.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

/// Bytes read from the end of alerts.json to find the alerts it already holds.
const TAIL_BYTES: u64 = 4 * 1024 * 1024;

/// The open alerts.json and its rotation policy.
pub struct AlertsFile {
    path: PathBuf,
    writer: BufWriter<File>,
    size: u64,
    /// UTC date of the lines in the current file, `(year, ordinal day)`.
    date: (i32, u16),
    max_bytes: u64,
    daily: bool,
}

impl AlertsFile {
    /// Opens `path` for appending, creating its folder; `max_bytes` 0 turns size rotation off.
    pub fn open(path: &Path, max_bytes: u64, daily: bool) -> io::Result<AlertsFile> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let meta = file.metadata()?;
        let modified = meta
            .modified()
            .map(OffsetDateTime::from)
            .unwrap_or_else(|_| OffsetDateTime::now_utc());
        Ok(AlertsFile {
            path: path.to_path_buf(),
            writer: BufWriter::with_capacity(256 * 1024, file),
            size: meta.len(),
            date: (modified.year(), modified.ordinal()),
            max_bytes,
            daily,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one alert line, rotating first when the date changed or the size bound is reached.
    pub fn write_line(&mut self, line: &str, now: OffsetDateTime) -> io::Result<()> {
        let today = (now.year(), now.ordinal());
        let new_day = self.daily && today != self.date && self.size > 0;
        let too_big = self.max_bytes > 0
            && self.size > 0
            && self.size + line.len() as u64 + 1 > self.max_bytes;
        if new_day || too_big {
            self.rotate()?;
        }
        self.date = today;

        self.writer.write_all(line.as_bytes())?;
        self.writer.write_all(b"\n")?;
        self.size += line.len() as u64 + 1;
        Ok(())
    }

    /// Flushes buffered lines to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }

    /// Renames the current file to `alerts-YYYY-MM-DD-N.json` and starts a new one.
    fn rotate(&mut self) -> io::Result<()> {
        self.writer.flush()?;
        let target = self.rotated_name();
        fs::rename(&self.path, &target)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.writer = BufWriter::with_capacity(256 * 1024, file);
        self.size = 0;
        tracing::info!(path = %target.display(), "rotated alerts file");
        Ok(())
    }

    fn rotated_name(&self) -> PathBuf {
        let date = time::Date::from_ordinal_date(self.date.0, self.date.1)
            .map(|d| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()))
            .unwrap_or_else(|_| "unknown-date".into());
        let stem = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "alerts".into());
        let dir = self.path.parent().unwrap_or(Path::new("."));
        (1..)
            .map(|n| dir.join(format!("{stem}-{date}-{n}.json")))
            .find(|candidate| !candidate.exists())
            .unwrap_or_else(|| dir.join(format!("{stem}-{date}.json")))
    }
}

/// Collects the `id` of each alert in the last [`TAIL_BYTES`] of `path`.
pub fn ids_in_tail(path: &Path) -> io::Result<std::collections::HashSet<String>> {
    let mut ids = std::collections::HashSet::new();
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(ids),
        Err(err) => return Err(err),
    };
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))?;
    let mut bytes = Vec::new();
    file.take(TAIL_BYTES).read_to_end(&mut bytes)?;
    // The tail may start inside a line or a UTF-8 sequence: such a first line
    // fails to parse and is skipped.
    let tail = String::from_utf8_lossy(&bytes);
    for line in tail.lines() {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(line) {
            if let Some(id) = value.get("id").and_then(|v| v.as_str()) {
                ids.insert(id.to_string());
            }
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.json");
        let mut file = AlertsFile::open(&path, 30, false).unwrap();
        let now = datetime!(2024-05-01 10:00 UTC);
        for n in 0..4 {
            file.write_line(&format!("{{\"id\":\"1.{n}\",\"pad\":1}}"), now)
                .unwrap();
        }
        file.flush().unwrap();
        let rotated: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(rotated.len(), 4, "{rotated:?}");
        assert!(dir.path().join("alerts-2024-05-01-1.json").exists());
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 1);
    }

    #[test]
    fn rotates_when_date_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.json");
        let mut file = AlertsFile::open(&path, 0, true).unwrap();
        file.write_line("{\"id\":\"1.1\"}", datetime!(2024-05-01 23:59 UTC))
            .unwrap();
        file.write_line("{\"id\":\"1.2\"}", datetime!(2024-05-02 00:00 UTC))
            .unwrap();
        file.flush().unwrap();
        let old = fs::read_to_string(dir.path().join("alerts-2024-05-01-1.json")).unwrap();
        assert!(old.contains("1.1"));
        assert!(fs::read_to_string(&path).unwrap().contains("1.2"));
    }

    #[test]
    fn tail_ids_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.json");
        fs::write(&path, "{\"id\":\"1.1\"}\n{\"id\":\"1.2\"}\nnot json\n").unwrap();
        let ids = ids_in_tail(&path).unwrap();
        assert!(ids.contains("1.1"));
        assert!(ids.contains("1.2"));
        assert!(ids_in_tail(&dir.path().join("missing")).unwrap().is_empty());
    }
}
