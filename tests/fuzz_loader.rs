//! A property test over the loader (found-by-fuzzing inputs stay fixed): random mutations of
//! every fixture and example suite, loaded and validated in-process, never panic and never
//! hang; whatever they are, the result is suites or diagnostics. Deterministic (a fixed
//! seed), so a failure reproduces; `PERFGATE_FUZZ_ITERATIONS` runs longer.

use std::path::{Path, PathBuf};

use perfgate::suite::discover::Discovery;
use perfgate::suite::load::{LoadOptions, load};

mod helpers;

/// xorshift64*: enough randomness for mutations, no dependency.
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

/// Tokens that broke parsers before: huge and odd numbers and durations, YAML syntax.
const TOKENS: &[&str] = &[
    "${",
    "}",
    "${X}",
    "$${",
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "'",
    "\n",
    "\t",
    "#",
    "18446744073709551616",
    "1e309",
    "-1",
    "0",
    "NaN",
    "99999999999999999999d",
    "18446744073709551616s",
    "100%",
    "1e-400s",
    "&a ",
    "*a",
    "<<: *a\n",
    "!!binary ",
    "---\n",
    "~",
    "null",
    "included-configs: [/dev/zero]\n",
    "included-configs: [.]\n",
    "avg-rt of x>",
    " for ",
    " within ",
    ", stop as failed",
    "p999.99",
    "rc5??",
    "=<",
    "concurrency: ",
    "hold-for: ",
    "ramp-up: ",
    "throughput: ",
    "iterations: ",
    "\u{feff}",
    "\u{0}",
    "é",
    "\\",
];

fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(5) {
            0 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                bytes.splice(at..at, token.bytes());
            }
            1 if !bytes.is_empty() => {
                let end = (at + rng.below(40)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            2 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] = (rng.next() & 0x7f) as u8;
            }
            3 => {
                // Duplicate a line.
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let lines: Vec<&str> = text.lines().collect();
                if !lines.is_empty() {
                    let i = rng.below(lines.len());
                    let mut out: Vec<&str> = lines.clone();
                    out.insert(i, lines[i]);
                    bytes = out.join("\n").into_bytes();
                }
            }
            _ => bytes.truncate(at),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn corpus() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = helpers::yaml_files(&root.join("suites"));
    files.extend(helpers::yaml_files(&root.join("tests/fixtures")));
    files
}

#[test]
fn mutated_suites_never_panic() {
    let iterations: usize = std::env::var("PERFGATE_FUZZ_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1500);
    let corpus = corpus();
    assert!(corpus.len() > 40, "{} files", corpus.len());
    let texts: Vec<String> = corpus
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..iterations {
        let source = rng.below(texts.len());
        let text = mutate(&texts[source], &mut rng);
        let path = dir.path().join("fuzz.yaml");
        std::fs::write(&path, &text).unwrap();
        let discovery = Discovery {
            suites: vec![path],
            ..Discovery::default()
        };
        let opts = LoadOptions {
            artifacts_root: dir.path().join("reports"),
            ..LoadOptions::default()
        };
        let outcome = std::panic::catch_unwind(|| load(&discovery, &opts));
        match outcome {
            Ok(loaded) => assert!(
                loaded.suites.len() == 1 || loaded.diagnostics.has_errors(),
                "iteration {i}: neither a suite nor an error for\n{text}"
            ),
            Err(_) => panic!(
                "iteration {i} (from {}) panicked on:\n{text}",
                corpus[source].display()
            ),
        }
    }
}
