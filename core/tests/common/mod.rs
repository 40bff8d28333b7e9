//! Helpers shared by the core's integration tests: run the engine on a file or
//! on bytes, and render its result files in memory.

#![allow(dead_code)]

pub mod uci_parquet;

use std::path::{Path, PathBuf};

use rfm_core::date::DateFormat;
use rfm_core::engine::{self, InputFile};
use rfm_core::input::ParseOptions;
use rfm_core::ledger::LineLedger;
use rfm_core::{output, RfmResult, RunOptions};

/// The shared real data directory (`../shared/data/real` beside the repo).
pub fn real_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/real")
        .join(name)
}

pub fn reference(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/reference")
        .join(name)
}

pub fn options(delimiter: u8, decimal_comma: bool, date_format: Option<&str>) -> RunOptions {
    RunOptions {
        parse: ParseOptions {
            delimiter,
            decimal_comma,
            date_format: date_format.map(|f| DateFormat::new(f).unwrap()),
            ..ParseOptions::default()
        },
        ..RunOptions::default()
    }
}

pub struct Outcome {
    pub ledger: LineLedger,
    pub result: rfm_core::Result<RfmResult>,
    pub files: Vec<InputFile>,
}

pub fn run_path(path: &Path, opts: &RunOptions) -> Outcome {
    let files = engine::open_inputs(path.to_str().unwrap(), &opts.parse).expect("inputs open");
    let state = engine::run_local(&files, opts).expect("run");
    let (ledger, result) = engine::finish_run(state, &files, opts);
    Outcome {
        ledger,
        result,
        files,
    }
}

/// Runs the engine on CSV bytes written to a temporary file.
pub fn run_bytes(bytes: &[u8], opts: &RunOptions) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.csv");
    std::fs::write(&path, bytes).unwrap();
    run_path(&path, opts)
}

pub fn customers_csv(result: &RfmResult) -> Vec<u8> {
    let mut v = Vec::new();
    output::write_customers(result, &mut v).unwrap();
    v
}

pub fn segments_csv(result: &RfmResult) -> Vec<u8> {
    let mut v = Vec::new();
    output::write_segments(result, &mut v).unwrap();
    v
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}
