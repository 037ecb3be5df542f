//! The inputs kept from fuzzing (`fuzz/regressions/<target>/`, see `fuzz/README.md`), each
//! replayed through exactly what its fuzz target runs (`fuzz/src/lib.rs`, included here):
//! none may panic. Plain tests: no nightly, no sanitizer.

use std::panic::catch_unwind;
use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/lib.rs"]
mod harness;

/// Runs every kept input of `target`; fails naming each input that panics.
fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions").join(target);
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no inputs kept in {}", dir.display());
    let panicked: Vec<String> = inputs
        .iter()
        .filter(|path| {
            let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            catch_unwind(|| run(&bytes)).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(panicked.is_empty(), "{} of {} inputs panic: {panicked:#?}", panicked.len(), inputs.len());
}

#[test]
fn every_kept_json_telemetry_input_decodes_or_is_refused_without_panicking() {
    replay("json_telemetry", harness::json_telemetry);
}

#[test]
fn every_kept_gbt32960_input_decodes_renders_or_is_refused_without_panicking() {
    replay("gbt32960_frame", harness::gbt32960_frame);
}

#[test]
fn every_kept_jt808_input_splits_decodes_round_trips_or_is_refused_without_panicking() {
    replay("jt808_frame", harness::jt808_frame);
}

#[test]
fn every_kept_order_csv_input_parses_or_is_refused_without_panicking() {
    replay("order_csv", harness::order_csv);
}
