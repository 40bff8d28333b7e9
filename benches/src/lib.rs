//! Benchmarks of rfm. `cargo bench -p rfm-benches` runs the criterion
//! benches in `benches/`; `benches/race.sh` races whole commands against the
//! peers (DuckDB, Polars, pandas, Dask).
//!
//! This library holds the fixtures the benches share.

use std::path::PathBuf;

use rfm_core::engine::{self, InputFile};
use rfm_core::RunOptions;

/// A generated input file that lives as long as the fixture.
pub struct Fixture {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub files: Vec<InputFile>,
    pub opts: RunOptions,
}

impl Fixture {
    /// `rows` synthetic lines (seed 1) written to a temporary file.
    pub fn generated(rows: u64) -> Fixture {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("bench.csv");
        let mut bytes = Vec::new();
        rfm_core::gen::generate(rows, 1, &mut bytes).expect("generate");
        std::fs::write(&path, &bytes).expect("write fixture");
        let opts = RunOptions::default();
        let files =
            engine::open_inputs(path.to_str().expect("utf-8 path"), &opts.parse).expect("open");
        Fixture {
            _dir: dir,
            path,
            bytes,
            files,
            opts,
        }
    }
}
