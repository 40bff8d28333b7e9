//! Helpers shared by the store's tests: real runs of the engine, their
//! reports, and the result files rendered in memory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rfm_core::engine;
use rfm_core::ledger::LineLedger;
use rfm_core::report::{self, RunReport};
use rfm_core::{output, RfmResult, RunOptions};

/// A file of the shared real data directory (`../shared/data/real` beside the repo).
pub fn real_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/real")
        .join(name)
}

/// The engine's outcome on one file: ledger and result (or the error).
pub fn compute(path: &Path, opts: &RunOptions) -> (LineLedger, rfm_core::Result<RfmResult>) {
    let files = engine::open_inputs(&path.display().to_string(), &opts.parse).expect("open input");
    let state = engine::run_local(&files, opts).expect("compute");
    engine::finish_run(state, &files, opts)
}

/// The engine's result on a file that must succeed.
pub fn result_of(path: &Path) -> RfmResult {
    compute(path, &RunOptions::default()).1.expect("result")
}

/// A report for a run of `input`, with the ledger's figures and, when the
/// run succeeded, its headline figures.
pub fn report_for(input: &Path, ledger: &LineLedger, result: Option<&RfmResult>) -> RunReport {
    let opts = RunOptions::default();
    let run_id = report::new_run_id() + &format!("-{}", unique());
    let mut r = RunReport::begin(&run_id, &[], &opts);
    r.input = vec![input.display().to_string()];
    r.set_ledger(ledger);
    r.finished_at = report::utc_now();
    if let Some(res) = result {
        r.set_result(res);
    }
    r
}

fn unique() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// `customers.csv` as the core writes it.
pub fn customers_csv(result: &RfmResult) -> String {
    let mut buf = Vec::new();
    output::write_customers(result, &mut buf).expect("write customers");
    String::from_utf8(buf).expect("utf-8")
}

/// `segments.csv` as the core writes it.
pub fn segments_csv(result: &RfmResult) -> String {
    let mut buf = Vec::new();
    output::write_segments(result, &mut buf).expect("write segments");
    String::from_utf8(buf).expect("utf-8")
}

/// Rows of text as CSV with a header (the core's CSV dialect).
pub fn to_csv(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(header).unwrap();
    for r in rows {
        w.write_record(r).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

/// A query's rows as text (every column must be text).
pub fn text_rows(client: &mut postgres::Client, sql: &str) -> Vec<Vec<String>> {
    client
        .query(sql, &[])
        .expect(sql)
        .iter()
        .map(|row| {
            (0..row.len())
                .map(|i| row.get::<_, Option<String>>(i).unwrap_or_default())
                .collect()
        })
        .collect()
}
