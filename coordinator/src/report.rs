//! Builds the run report (`run.json`) of a job: identity, inputs and options
//! first, then the ledger and the result's headline figures.

use rfm_core::engine::InputFile;
use rfm_core::ledger::LineLedger;
use rfm_core::report::{self, RunReport, Stage};
use rfm_core::{RfmResult, RunOptions};

/// A report with the run's identity, inputs and options, before any figures.
pub fn new_report(run_id: &str, files: &[InputFile], opts: &RunOptions) -> RunReport {
    RunReport::begin(run_id, files, opts)
}

/// Fills in the end of a run: ledger, status, and the result's figures or the
/// stage that failed and the error.
pub fn complete(
    report: &mut RunReport,
    ledger: &LineLedger,
    result: Result<&RfmResult, (Stage, String)>,
    seconds: f64,
) {
    report.set_ledger(ledger);
    report.finished_at = report::utc_now();
    report.seconds = seconds;
    match result {
        Ok(result) => report.set_result(result),
        Err((stage, e)) => report.fail(stage, &e),
    }
}
