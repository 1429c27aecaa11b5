//! The built index saved next to `intel.db`, so that the next load reads one file instead of
//! every indicator row.
//!
//! The file holds a key taken from the database files, a checksum and the index. The key is
//! the identity, size and modification time of `intel.db` and `intel.db-wal`, with the WAL
//! header's checkpoint sequence and salts. Every committed write changes it: a commit appends
//! frames to the WAL, a checkpoint rewrites the database file, and a WAL restart draws new
//! salts. So a snapshot whose key differs is stale. Some changes of the key need no rebuild
//! (a checkpoint only moves data), and they cost one needless rebuild.
//!
//! A snapshot that is stale, damaged or unreadable is rebuilt from the store and written
//! again; a failed write only means the next load builds too.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use hashing::Algorithms;
use index::DigestIndex;
use rustc_hash::FxHashMap;
use twox_hash::XxHash3_64;

use super::build::Indexed;

/// File name of the snapshot, in the store's data directory.
pub const SNAPSHOT_FILE: &str = "intel.db.index";
/// Format name and version, the first bytes of the file. The version changes with the
/// encoding of the digest index inside it.
const MAGIC: &[u8; 8] = b"IOCWIX02";
/// Length of the format name at the start of [`MAGIC`].
const NAME_LEN: usize = 6;
/// Words of [`StoreKey`].
const KEY_WORDS: usize = 13;
/// Magic, key, body length and checksum.
const HEADER_BYTES: usize = 8 + KEY_WORDS * 8 + 8 + 8;

/// State of the database files that a committed write always changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct StoreKey([u64; KEY_WORDS]);

impl StoreKey {
    /// Reads the key of the database at `db_path` and of its WAL.
    pub(super) fn of(db_path: &Path) -> io::Result<StoreKey> {
        let mut words = [0u64; KEY_WORDS];
        let db = fs::metadata(db_path)?;
        words[..5].copy_from_slice(&file_words(&db));
        match fs::File::open(wal_path(db_path)) {
            Ok(mut wal) => {
                words[5..10].copy_from_slice(&file_words(&wal.metadata()?));
                // Bytes 12..24 of the WAL header: checkpoint sequence, salt-1, salt-2.
                let mut header = [0u8; 24];
                if wal.read_exact(&mut header).is_ok() {
                    for (word, bytes) in words[10..].iter_mut().zip(header[12..].chunks_exact(4)) {
                        *word = u64::from(u32::from_be_bytes(bytes.try_into().unwrap_or([0; 4])));
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(StoreKey(words))
    }
}

fn file_words(metadata: &fs::Metadata) -> [u64; 5] {
    [
        metadata.dev(),
        metadata.ino(),
        metadata.size(),
        metadata.mtime() as u64,
        metadata.mtime_nsec() as u64,
    ]
}

fn wal_path(db_path: &Path) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Why a snapshot was not used.
#[derive(Debug)]
pub(super) enum Unusable {
    Missing,
    Stale,
    Damaged(String),
    Unreadable(io::Error),
}

/// Reads the snapshot at `path` when it was written for `key` and is intact.
pub(super) fn read(path: &Path, key: &StoreKey) -> Result<Indexed, Unusable> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Unusable::Missing),
        Err(e) => return Err(Unusable::Unreadable(e)),
    };
    let damaged = |what: &str| Unusable::Damaged(what.to_owned());
    let mut input = Cursor { bytes: &bytes };
    let magic = input.take(8).map_err(|_| damaged("truncated"))?;
    if magic != MAGIC {
        // A snapshot of another version was written by an older or newer build: rebuild it
        // without calling it damaged.
        return Err(if magic[..NAME_LEN] == MAGIC[..NAME_LEN] {
            Unusable::Stale
        } else {
            damaged("unknown format")
        });
    }
    let mut stored = [0u64; KEY_WORDS];
    for word in &mut stored {
        *word = input.u64().map_err(|_| damaged("truncated"))?;
    }
    if stored != key.0 {
        return Err(Unusable::Stale);
    }
    let body_len = input.u64().map_err(|_| damaged("truncated"))?;
    let checksum = input.u64().map_err(|_| damaged("truncated"))?;
    if input.bytes.len() as u64 != body_len {
        return Err(damaged("length does not match"));
    }
    if XxHash3_64::oneshot(input.bytes) != checksum {
        return Err(damaged("checksum does not match"));
    }
    decode_body(input.bytes).map_err(Unusable::Damaged)
}

/// Writes the snapshot of `indexed` for `key` to `path`, through a temporary file that is
/// renamed into place, so that readers see the old file or the new one.
pub(super) fn write(path: &Path, key: &StoreKey, indexed: &Indexed) -> io::Result<()> {
    let mut body = Vec::new();
    encode_body(indexed, &mut body);
    let mut header = Vec::with_capacity(HEADER_BYTES);
    header.extend_from_slice(MAGIC);
    for word in key.0 {
        header.extend_from_slice(&word.to_le_bytes());
    }
    header.extend_from_slice(&(body.len() as u64).to_le_bytes());
    header.extend_from_slice(&XxHash3_64::oneshot(&body).to_le_bytes());

    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let written = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(&header)?;
        file.write_all(&body)?;
        fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

fn encode_body(indexed: &Indexed, out: &mut Vec<u8>) {
    out.extend_from_slice(&(indexed.attribute_ids.len() as u64).to_le_bytes());
    for id in &indexed.attribute_ids {
        out.extend_from_slice(&id.to_le_bytes());
    }
    let Algorithms { md5, sha1, sha256 } = indexed.algorithms;
    out.push(u8::from(md5) | u8::from(sha1) << 1 | u8::from(sha256) << 2);
    out.extend_from_slice(&(indexed.suppressed as u64).to_le_bytes());
    out.extend_from_slice(&(indexed.values.len() as u64).to_le_bytes());
    for (value, ids) in &indexed.values {
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(&(ids.len() as u64).to_le_bytes());
        for id in ids {
            out.extend_from_slice(&id.to_le_bytes());
        }
    }
    indexed.digests.encode(out);
}

fn decode_body(bytes: &[u8]) -> Result<Indexed, String> {
    let truncated = |_| "truncated".to_string();
    let mut input = Cursor { bytes };
    let count = input.len().map_err(truncated)?;
    let ids = input.take_array(count, 8).map_err(truncated)?;
    let attribute_ids: Vec<i64> = ids
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
        .collect();

    let flags = input.take(1).map_err(truncated)?[0];
    let algorithms = Algorithms {
        md5: flags & 1 != 0,
        sha1: flags & 2 != 0,
        sha256: flags & 4 != 0,
    };
    let suppressed = input.len().map_err(truncated)?;
    let values = decode_values(&mut input, attribute_ids.len())?;
    let digests = DigestIndex::from_bytes(input.bytes).map_err(|e| e.to_string())?;
    if !ids_in_range(&digests, attribute_ids.len()) {
        return Err("digest ids out of range".into());
    }
    Ok(Indexed {
        digests,
        values,
        attribute_ids,
        algorithms,
        suppressed,
    })
}

fn decode_values(
    input: &mut Cursor<'_>,
    indicators: usize,
) -> Result<FxHashMap<Box<str>, Vec<u32>>, String> {
    let truncated = |_| "truncated".to_string();
    let count = input.len().map_err(truncated)?;
    let mut values = FxHashMap::default();
    for _ in 0..count {
        let len = input.len().map_err(truncated)?;
        let text = std::str::from_utf8(input.take(len).map_err(truncated)?)
            .map_err(|_| "value is not UTF-8".to_string())?;
        let id_count = input.len().map_err(truncated)?;
        let ids: Vec<u32> = input
            .take_array(id_count, 4)
            .map_err(truncated)?
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
            .collect();
        if ids.iter().any(|&id| id as usize >= indicators) {
            return Err("value ids out of range".into());
        }
        values.insert(text.into(), ids);
    }
    Ok(values)
}

/// True when every id of the digest index names an indicator. It walks the whole index
/// once, which costs a few milliseconds per million digests.
fn ids_in_range(digests: &DigestIndex, indicators: usize) -> bool {
    digests
        .max_id()
        .is_none_or(|max| (max as usize) < indicators)
}

/// Reads a byte slice from the front and fails instead of reading past its end.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ()> {
        if self.bytes.len() < n {
            return Err(());
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn take_array(&mut self, count: usize, size: usize) -> Result<&'a [u8], ()> {
        self.take(count.checked_mul(size).ok_or(())?)
    }

    fn u64(&mut self) -> Result<u64, ()> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().map_err(|_| ())?))
    }

    fn len(&mut self) -> Result<usize, ()> {
        usize::try_from(self.u64()?).map_err(|_| ())
    }
}
