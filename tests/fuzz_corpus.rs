//! Replays the fuzz seeds (fuzz/seeds/, see src/packet/seeds.rs) through
//! every fuzz target's checks (mqtt5c::fuzzing), on stable, so that
//! `make test` catches what `make fuzz` would trip over first; and one
//! named regression test per crash the fuzzers found.

use mqtt5c::fuzzing;
use mqtt5c::packet::ProtocolVersion::{self, V311, V5};
use std::path::PathBuf;

/// Every seed of fuzz/seeds/<dir>, with its name.
fn seeds(dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(dir);
    let mut all: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let bytes = std::fs::read(&path).expect("read a seed");
            (path.display().to_string(), bytes)
        })
        .collect();
    all.sort();
    assert!(
        all.len() >= 20,
        "{} has only {} seeds",
        dir.display(),
        all.len()
    );
    all
}

/// Each seed of both protocols through `check` as `version`: a v5 packet
/// read by a 3.1.1 decoder is arbitrary input as good as any.
fn replay(version: ProtocolVersion, check: fn(&[u8], ProtocolVersion)) {
    for dir in ["v5", "v311"] {
        for (name, bytes) in seeds(dir) {
            let outcome = std::panic::catch_unwind(|| check(&bytes, version));
            assert!(outcome.is_ok(), "{name} as {version:?} failed (see above)");
        }
    }
}

#[test]
fn decode_v5_seeds() {
    replay(V5, fuzzing::decode);
}

#[test]
fn decode_v311_seeds() {
    replay(V311, fuzzing::decode);
}

#[test]
fn roundtrip_v5_seeds() {
    replay(V5, fuzzing::roundtrip);
}

#[test]
fn roundtrip_v311_seeds() {
    replay(V311, fuzzing::roundtrip);
}
