//! Runs of the real UCI file for the read side's tests (the terminal
//! dashboard's and rfm-web's): result folders made by the core engine in
//! process, as `rfm run --out` writes them, and the same runs published to a
//! test database as `rfm run --database-url` publishes them.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use rfm_core::engine;
use rfm_core::report::RunReport;
use rfm_core::{output, RfmResult, RunOptions};

use crate::{Lease, RunId, Store};

/// The real UCI Online Retail file, from the shared data beside the
/// repository (panics with what is missing when it is not there).
pub fn uci_file() -> PathBuf {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/real/online_retail.csv");
    assert!(
        path.is_file(),
        "{} is missing: the tests need the shared real data beside the repository",
        path.display()
    );
    path
}

/// Runs the engine on `input` and returns its result and the report of a run
/// `run_id` that started (and finished) at `started_at`.
pub fn compute_run(input: &Path, run_id: &str, started_at: &str) -> (RfmResult, RunReport) {
    let opts = RunOptions::default();
    let spec = input.display().to_string();
    let files = engine::open_inputs(&spec, &opts.parse).expect("open input");
    let state = engine::run_local(&files, &opts).expect("run");
    let (ledger, result) = engine::finish_run(state, &files, &opts);
    let result = result.expect("finish run");
    let mut report = RunReport::begin(run_id, &files, &opts);
    report.set_ledger(&ledger);
    report.set_result(&result);
    report.started_at = started_at.into();
    report.finished_at = started_at.into();
    (result, report)
}

/// Runs the engine on `input` and writes its result files into `out`, with
/// `run_id` and `started_at` (which orders the history) in run.json.
pub fn write_run(input: &Path, out: &Path, run_id: &str, started_at: &str) -> RfmResult {
    let (result, mut report) = compute_run(input, run_id, started_at);
    report.input = vec![input.display().to_string()];
    report.seconds = 0.5;
    output::write_results(out, &result, &report).expect("write results");
    result
}

/// Writes the first `lines` lines of `source` (its header among them) to
/// `target`: an older export of the same shop.
pub fn write_first_lines(source: &Path, lines: usize, target: &Path) {
    let mut input = BufReader::new(std::fs::File::open(source).expect("open the source file"));
    let mut out = BufWriter::new(std::fs::File::create(target).expect("create the cut file"));
    let mut line = Vec::new();
    for _ in 0..lines {
        line.clear();
        if input.read_until(b'\n', &mut line).expect("read") == 0 {
            break;
        }
        out.write_all(&line).expect("write");
    }
    out.flush().expect("flush the cut file");
}

/// The `run.json` of a run folder.
pub fn read_report(dir: &Path) -> serde_json::Result<RunReport> {
    serde_json::from_slice(&std::fs::read(dir.join("run.json")).expect("read run.json"))
}

/// Publishes the run folder `dir` (its run.json) with `result` to `store`,
/// as `rfm run --database-url` does; returns the run's id in the store.
pub fn publish_folder(store: &mut Store, dir: &Path, result: &RfmResult) -> RunId {
    let report = read_report(dir).expect("run.json");
    let id = store
        .begin_run(&report, &Lease::with_defaults("test"))
        .expect("begin run");
    store.publish(id, &report, result).expect("publish");
    id
}
