//! Byte encoding of a built [`DigestIndex`], so that a program can store the index in a file
//! and load it again without sorting.
//!
//! The encoding is for the machine that wrote it: words are in native byte order, and a marker
//! word lets [`DigestIndex::from_bytes`] reject bytes from a machine of the other order. It
//! carries no checksum; a caller that stores it in a file should add one. Decoding checks
//! every bound a lookup relies on, so damaged bytes give an error, never a panic, and at
//! worst wrong results where a checksum would have caught the damage.

use crate::key::{Fingerprint, MAX_FINGERPRINT_BITS};
use crate::table::{Table, EMPTY, LINE_WORDS, MULTI_TAG};
use crate::DigestIndex;

/// First word of an encoded index: `DIX` and the format version 2.
const MAGIC: u32 = u32::from_be_bytes(*b"DIX\x02");
/// Written in native order; reads back as another number on a machine of the other order.
const BYTE_ORDER_MARK: u32 = 0x0102_0304;
/// Longest digest a decoded table may have (sha512 is 64 bytes).
const MAX_KEY_BYTES: usize = 1024;

/// Why bytes could not be decoded as a [`DigestIndex`].
#[derive(Debug, thiserror::Error)]
#[error("invalid encoded digest index: {0}")]
pub struct DecodeError(&'static str);

impl DigestIndex {
    /// Appends the index to `out` in the encoding [`DigestIndex::from_bytes`] reads.
    pub fn encode(&self, out: &mut Vec<u8>) {
        push_word(out, MAGIC);
        push_word(out, BYTE_ORDER_MARK);
        push_word(out, self.mask.mask_bits());
        push_len(out, self.tables.len());
        for table in &self.tables {
            let (buckets, lines, far) = table.parts();
            push_len(out, table.key_len);
            push_len(out, buckets);
            push_len(out, lines.len() * LINE_WORDS);
            for line in lines {
                for word in line.0 {
                    push_word(out, word);
                }
            }
            push_words(out, far);
        }
        push_words(out, &self.multi);
    }

    /// Decodes an index that [`DigestIndex::encode`] wrote on this machine.
    pub fn from_bytes(bytes: &[u8]) -> Result<DigestIndex, DecodeError> {
        let mut input = Words { bytes };
        if input.word()? != MAGIC {
            return Err(DecodeError("unknown format"));
        }
        if input.word()? != BYTE_ORDER_MARK {
            return Err(DecodeError("written on a machine of the other byte order"));
        }
        let fingerprint_bits = input.word()?;
        if fingerprint_bits > MAX_FINGERPRINT_BITS {
            return Err(DecodeError("fingerprint length out of range"));
        }
        let count = input.len()?;
        let mut tables: Vec<Table> = Vec::new();
        for _ in 0..count {
            let key_len = input.len()?;
            if key_len > MAX_KEY_BYTES {
                return Err(DecodeError("digest length out of range"));
            }
            if tables.last().is_some_and(|last| last.key_len >= key_len) {
                return Err(DecodeError("tables out of order"));
            }
            let buckets = input.len()?;
            let lines = input.word_bytes()?;
            let far = input.words()?;
            let table = Table::from_parts(key_len, buckets, lines, far).map_err(DecodeError)?;
            tables.push(table);
        }
        let multi = input.words()?;
        if !input.bytes.is_empty() {
            return Err(DecodeError("trailing bytes"));
        }
        check_values(&tables, &multi)?;
        let mask = Fingerprint::mask(fingerprint_bits);
        Ok(DigestIndex::from_tables(
            tables,
            multi.into_boxed_slice(),
            mask,
        ))
    }
}

/// Checks that every tagged value word points at an id list inside `multi`.
fn check_values(tables: &[Table], multi: &[u32]) -> Result<(), DecodeError> {
    for table in tables {
        for value in table.values() {
            if value & MULTI_TAG == 0 || value == EMPTY {
                continue;
            }
            let offset = (value & !MULTI_TAG) as usize;
            let count = *multi
                .get(offset)
                .ok_or(DecodeError("id list out of range"))? as usize;
            if offset + 1 + count > multi.len() {
                return Err(DecodeError("id list out of range"));
            }
        }
    }
    Ok(())
}

fn push_word(out: &mut Vec<u8>, word: u32) {
    out.extend_from_slice(&word.to_ne_bytes());
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&(len as u64).to_ne_bytes());
}

/// Appends the word count, then the words.
fn push_words(out: &mut Vec<u8>, words: &[u32]) {
    push_len(out, words.len());
    out.reserve(words.len() * 4);
    for word in words {
        out.extend_from_slice(&word.to_ne_bytes());
    }
}

/// A cursor over encoded bytes that fails instead of reading past the end.
struct Words<'a> {
    bytes: &'a [u8],
}

impl<'a> Words<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError("truncated"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn word(&mut self) -> Result<u32, DecodeError> {
        let bytes = self.take(4)?;
        Ok(u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn len(&mut self) -> Result<usize, DecodeError> {
        let bytes = self.take(8)?;
        let mut word = [0u8; 8];
        word.copy_from_slice(bytes);
        usize::try_from(u64::from_ne_bytes(word)).map_err(|_| DecodeError("length out of range"))
    }

    /// Reads a word count and returns the bytes of that many words.
    fn word_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.len()?;
        let byte_len = len
            .checked_mul(4)
            .ok_or(DecodeError("length out of range"))?;
        self.take(byte_len)
    }

    /// Reads a word count and that many words.
    fn words(&mut self) -> Result<Vec<u32>, DecodeError> {
        let bytes = self.word_bytes()?;
        Ok(bytes
            .chunks_exact(4)
            .map(|chunk| u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            .collect())
    }
}
