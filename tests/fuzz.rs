//! The fuzz harnesses of `switchyard::fuzzing` on the stable toolchain, inside `cargo test`:
//!
//! - every committed input — the seeds of `fuzz/corpus/TARGET/` and the inputs that once found a
//!   bug, `fuzz/regressions/TARGET/` — is replayed through its target;
//! - then a mutation run (byte flips, inserts, deletions, splices and dictionary tokens over the
//!   seeds) for a bounded number of inputs, `SWITCHYARD_FUZZ_RUNS` per target (default 300),
//!   or for `SWITCHYARD_FUZZ_SECS` seconds per target when set. The run is seeded
//!   (`SWITCHYARD_FUZZ_SEED`, printed), so a failure is repeatable; the failing input is also
//!   written to `target/fuzz-failures/TARGET/`, ready to be committed as a regression.
//!
//! Coverage-guided runs use libFuzzer over the same entry points: `fuzz/run.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use switchyard::clock::Clock;
use switchyard::fuzzing::TARGETS;

fn dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target)
}

fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir(kind, target)) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "md"))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

/// Run `input` through `target`; the panic message when an invariant broke.
fn check(target: fn(&[u8]), input: &[u8]) -> Result<(), String> {
    std::panic::catch_unwind(|| target(input)).map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

#[test]
fn committed_corpus_and_regressions_replay_clean() {
    let mut replayed = 0;
    for (name, target) in TARGETS {
        let seeds = inputs("corpus", name);
        assert!(!seeds.is_empty(), "no seeds for {name}");
        for (path, bytes) in seeds.iter().chain(&inputs("regressions", name)) {
            if let Err(message) = check(target, bytes) {
                panic!("{} fails: {message}", path.display());
            }
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} committed inputs");
}

// === the mutation run ===

/// Tokens worth inserting: the bytes the parsers branch on.
const DICTIONARY: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n\r\n",
    b"\x00",
    b"\t",
    b" ",
    b":",
    b";",
    b",",
    b"0\r\n\r\n",
    b"Content-Length: ",
    b"Transfer-Encoding: chunked",
    b"HTTP/1.0",
    b"HTTP/1.1",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"FFFFFFFFFFFFFFFFFFFF",
    b"[[routes]]\n",
    b"[listen]\n",
    b"path = ",
    b"{*rest}",
    b"{id}",
    b"\"",
    b"= \"1MiB\"",
    b"\xff",
    b"{\"org\":\"acme\",\"exp\":99999999999}",
    b"[1,2,{\"a\":null}]",
    b"1e308",
    b"-0.0",
    b"\\u0000",
];

/// xorshift64*: small, seeded, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], input: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(7) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = rng.next() as u8;
            }
            2 if !input.is_empty() => {
                let len = rng.below(16).min(input.len() - at.min(input.len()));
                input.drain(at..at + len);
            }
            3 => {
                let token = DICTIONARY[rng.below(DICTIONARY.len())];
                input.splice(at..at, token.iter().copied());
            }
            4 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                let len = rng.below(64).min(other.len() - from);
                input.splice(at..at, other[from..from + len].iter().copied());
            }
            5 if !input.is_empty() => {
                // Repeat a slice: long lines, many headers, deep nesting.
                let from = rng.below(input.len());
                let len = rng.below(32).min(input.len() - from);
                let piece: Vec<u8> = input[from..from + len].to_vec();
                for _ in 0..rng.below(8) {
                    input.splice(at..at, piece.iter().copied());
                }
            }
            _ => input.push(rng.next() as u8),
        }
    }
    input.truncate(8192);
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn mutation_run_finds_nothing() {
    let clock = Clock::system();
    let seed = env_number("SWITCHYARD_FUZZ_SEED").unwrap_or_else(|| clock.now_ms() as u64) | 1;
    let runs = env_number("SWITCHYARD_FUZZ_RUNS").unwrap_or(300);
    let secs = env_number("SWITCHYARD_FUZZ_SECS");
    let only = std::env::var("SWITCHYARD_FUZZ_TARGET").ok();
    eprintln!("SWITCHYARD_FUZZ_SEED={seed}");
    for (name, target) in TARGETS {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let mut seeds: Vec<Vec<u8>> = inputs("corpus", name)
            .into_iter()
            .chain(inputs("regressions", name))
            .map(|(_, b)| b)
            .collect();
        seeds.push(Vec::new());
        let mut rng = Rng(seed ^ (name.len() as u64 * 0x9e37_79b9));
        let started = clock.instant();
        let deadline = secs.map(|s| started + Duration::from_secs(s));
        let mut done = 0u64;
        loop {
            let finished = match deadline {
                Some(deadline) => clock.instant() >= deadline,
                None => done >= runs,
            };
            if finished {
                break;
            }
            let mut input = seeds[rng.below(seeds.len())].clone();
            mutate(&mut rng, &seeds, &mut input);
            if let Err(message) = check(target, &input) {
                let out = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("target/fuzz-failures")
                    .join(name);
                let _ = std::fs::create_dir_all(&out);
                let file = out.join(format!("input-{seed}-{done}"));
                let _ = std::fs::write(&file, &input);
                panic!(
                    "{name}: {message}\ninput saved to {} (SWITCHYARD_FUZZ_SEED={seed})",
                    file.display()
                );
            }
            // Inputs that pass join the pool now and then, so mutations compound.
            if rng.below(8) == 0 && seeds.len() < 4096 {
                seeds.push(input);
            }
            done += 1;
        }
        eprintln!(
            "{name}: {done} inputs in {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
}
