//! Stable-toolchain stand-in for the fuzz targets: every fixture, truncated at every
//! 97th byte and mutated at random from a fixed seed, goes through each parser. The
//! parsers may reject the input but must not panic.

use std::path::{Path, PathBuf};

use misp::{parse_bytes, CsvOptions, FileMeta, Format};

/// Larger fixtures are cut to this many bytes so the test stays quick.
const MAX_BYTES: usize = 24 * 1024;
const MUTATIONS_PER_FILE: usize = 150;

fn fixtures() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_none_or(|e| e != "md") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
        &mut out,
    );
    out
}

/// xorshift64*: a fixed, dependency-free generator so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn run_all_parsers(bytes: &[u8]) {
    run_parsers(
        bytes,
        &[
            None,
            Some(Format::MispJson),
            Some(Format::Stix2),
            Some(Format::Csv),
            Some(Format::Freetext),
        ],
    );
}

fn run_parsers(bytes: &[u8], formats: &[Option<Format>]) {
    let meta = FileMeta {
        name: "input".into(),
        source_key: "input".into(),
        mtime: 0,
    };
    let csv = CsvOptions::default();
    for &format in formats {
        let _ = parse_bytes(bytes, format, &meta, &csv);
    }
    let _ = misp::import::feed::parse_manifest(&String::from_utf8_lossy(bytes));
    let _ = misp::import::feed::parse_hashes_csv(bytes);
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut data = input.to_vec();
    const INTERESTING: &[&[u8]] = &[
        b"\"", b"{", b"}", b"[", b"]", b",", b"\\", b"'", b"|", b"\xff", b"\n", b"0",
    ];
    for _ in 0..1 + rng.below(8) {
        let pos = rng.below(data.len() + 1);
        match rng.below(4) {
            0 if !data.is_empty() => {
                let at = pos.min(data.len() - 1);
                data[at] = rng.next() as u8;
            }
            1 => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                data.splice(pos..pos, piece.iter().copied());
            }
            2 if pos < data.len() => {
                let end = (pos + rng.below(64)).min(data.len());
                data.drain(pos..end);
            }
            _ => {
                let start = rng.below(data.len().max(1));
                let end = (start + rng.below(128)).min(data.len());
                let copy = data[start..end].to_vec();
                data.splice(pos..pos, copy);
            }
        }
    }
    data
}

#[test]
fn truncated_fixtures_do_not_panic() {
    for path in fixtures() {
        let bytes = std::fs::read(&path).unwrap();
        let bytes = &bytes[..bytes.len().min(MAX_BYTES)];
        // The detected format of the whole file, forced on every prefix, plus detection.
        let meta = FileMeta::default();
        let whole = parse_bytes(bytes, None, &meta, &CsvOptions::default());
        let forced = whole.ok().and_then(|p| p.format);
        for cut in (0..bytes.len()).step_by(97) {
            run_parsers(&bytes[..cut], &[None, forced]);
        }
    }
}

#[test]
fn mutated_fixtures_do_not_panic() {
    let mut rng = Rng(0x1ce_da7a_5eed);
    for path in fixtures() {
        let bytes = std::fs::read(&path).unwrap();
        let bytes = &bytes[..bytes.len().min(MAX_BYTES / 4)];
        for _ in 0..MUTATIONS_PER_FILE {
            run_all_parsers(&mutate(&mut rng, bytes));
        }
    }
}

#[test]
fn stix_patterns_mutated_do_not_panic() {
    let patterns = [
        "[(file:hashes.MD5 = 'EBE2F8DF39B4A94FB408580A728D351F' OR file:hashes.'SHA-1' = '251F') AND file:name = 'd']",
        "[email-message:body_multipart[*].body_raw_ref.hashes.MD5 = 'x'] WITHIN 60 SECONDS",
        "[file:size IN (1, 2.5, true)] START t'2016-01-01T00:00:00Z' STOP t'2017-01-01T00:00:00Z'",
    ];
    let mut rng = Rng(97);
    for p in patterns {
        for cut in 0..p.len() {
            let _ = misp::import::stix::pattern::parse_pattern(&p[..cut]);
        }
        for _ in 0..500 {
            let mutated = mutate(&mut rng, p.as_bytes());
            let _ = misp::import::stix::pattern::parse_pattern(&String::from_utf8_lossy(&mutated));
        }
    }
}
