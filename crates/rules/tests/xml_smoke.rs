//! Feeds truncated and mutated rule files to the loader: every input must load or fail
//! with an error, never panic. The mutations come from a fixed seed, so runs repeat.

use std::fs;
use std::path::Path;

use rules::ruleset::DEFAULT_FILES;
use rules::Ruleset;

/// xorshift64*: small, deterministic, good enough to pick mutation points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Fragments that stress the parser: markup, escapes, variables, regex syntax.
const INSERTS: [&str; 16] = [
    "<", ">", "</", "/>", "\"", "'", "\\", "$", "$(", "<!--", "-->", "<?", "(", "|", "\u{e9}", "&",
];

fn seeds() -> Vec<String> {
    let mut texts: Vec<String> = DEFAULT_FILES.iter().map(|(_, t)| t.to_string()).collect();
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut dirs: Vec<_> = fs::read_dir(cases)
        .expect("cases folder")
        .flatten()
        .collect();
    dirs.sort_by_key(|e| e.path());
    for entry in dirs {
        if let Ok(text) = fs::read_to_string(entry.path().join("rules.xml")) {
            texts.push(text);
        }
    }
    texts
}

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(5) {
            0 => bytes.truncate(at),
            1 if at < bytes.len() => {
                bytes.remove(at);
            }
            2 => {
                let insert = INSERTS[rng.below(INSERTS.len())].as_bytes();
                bytes.splice(at..at, insert.iter().copied());
            }
            3 if at < bytes.len() => bytes[at] = (rng.next() & 0x7f) as u8,
            _ => {
                let end = (at + rng.below(40)).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn truncated_rule_files_never_panic() {
    for text in seeds() {
        for end in (0..text.len()).step_by(7) {
            let cut = String::from_utf8_lossy(&text.as_bytes()[..end]).into_owned();
            let _ = Ruleset::from_sources(&[("cut.xml".to_string(), cut)]);
        }
    }
}

#[test]
fn mutated_rule_files_never_panic() {
    let seeds = seeds();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut loaded = 0usize;
    for round in 0..4000 {
        let seed = &seeds[round % seeds.len()];
        let text = mutate(&mut rng, seed);
        // Alone, and after the defaults so that if_sid links and overwrites resolve.
        let alone = Ruleset::from_sources(&[("m.xml".to_string(), text.clone())]);
        let mut files: Vec<(String, String)> = DEFAULT_FILES
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        files.push(("m.xml".to_string(), text));
        let with_defaults = Ruleset::from_sources(&files);
        loaded += usize::from(alone.is_ok()) + usize::from(with_defaults.is_ok());
    }
    assert!(
        loaded > 0,
        "no mutated file loaded: mutations are too destructive to test much"
    );
}

#[test]
fn errors_from_mutations_name_a_location() {
    let mut rng = Rng(42);
    let seeds = seeds();
    for round in 0..500 {
        let text = mutate(&mut rng, &seeds[round % seeds.len()]);
        if let Err(err) = Ruleset::from_sources(&[("m.xml".to_string(), text)]) {
            let location = err.location().expect("rule errors carry a location");
            assert_eq!(location.file, "m.xml");
            assert!(location.line >= 1, "{err}");
            assert!(!location.element.is_empty(), "{err}");
        }
    }
}
