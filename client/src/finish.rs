//! How `rfm run` and `rfm submit` end, one way for both: a finished job —
//! from the embedded coordinator or from a cluster's, which scored it and
//! published it — becomes the run's files (written at once, see
//! [`rfm_core::output::OutDir`]; a fetched job's `customers.csv` is already
//! in their folder, written as it came, see [`crate::staged`]) and its
//! printed summary; a failure at any stage after the options leaves a failed
//! `run.json` (see [`crate::failure`]).

use std::time::Instant;

use anyhow::{Context, Result};
use rfm_core::output::OutDir;
use rfm_core::report::{RunReport, Stage};

use crate::cluster::{self, Finished, JobError};
use crate::failure::{self, At as _, Failed};
use crate::{exit, interrupt, summary};

/// Runs a run's `attempt`; `report` holds what is known when it fails. Once
/// the job has ended, the attempt sets its `finishing` guard, which holds a
/// signal off until the outcome is recorded. On failure, completes `report`,
/// leaves it in `out` and returns the run's error (for the exit code).
pub fn run_to_end(
    out: &OutDir,
    report: &mut RunReport,
    started: Instant,
    quiet: bool,
    attempt: impl FnOnce(&mut RunReport, &mut Option<interrupt::Finishing>) -> Result<(), Failed>,
) -> Result<()> {
    let mut finishing = None;
    let Err(failed) = attempt(report, &mut finishing) else {
        return Ok(());
    };
    // From here this command records its outcome: a signal waits.
    let _finishing = finishing.unwrap_or_else(interrupt::finishing);
    failure::complete(report, &failed, started);
    Err(failure::leave(out, report, failed, quiet))
}

/// Writes a finished job's result files into `out` and tells the user (the
/// report as JSON with `json`, else unless `quiet` the summary); `report`
/// becomes the coordinator's. A job that failed, or whose run could not be
/// published, is an error (its results kept in the second case).
pub fn write(
    finished: Finished,
    out: &OutDir,
    report: &mut RunReport,
    json: bool,
    quiet: bool,
) -> Result<(), Failed> {
    if let Some(coordinators) = finished.report.clone() {
        *report = coordinators;
    }
    // A cache entry that was damaged or not written: said even with --quiet.
    for w in report.cache.iter().flat_map(|c| &c.warnings) {
        eprintln!(
            "{}",
            rfm_core::text::escape_for_terminal(&format!("warning: {w}"))
        );
    }
    if let Some(failed) = cluster::job_failure(&finished) {
        return Err(failed);
    }
    let (Some(_), Some(mut result)) = (&finished.report, finished.result) else {
        return Err(Failed::new(
            Stage::Tasks,
            anyhow::anyhow!("the coordinator sent no report or no result for a succeeded job"),
        ));
    };
    match result.staged.take() {
        // customers.csv is in its folder already: the rest joins it.
        Some(writer) => writer
            .finish()
            .and_then(|staged| out.write_results_staged(&result.result, staged, report)),
        None => out.write_results_with(&result.result, result.customers_file(), report),
    }
    .at(Stage::Writing)?;
    if let Some(error) = finished.publish_error {
        return Err(Failed {
            stage: Stage::Database,
            error: JobError {
                code: exit::DATABASE,
                message: format!(
                    "results written to {} but run {} not published: {error}",
                    out.path().display(),
                    report.run_id
                ),
            }
            .into(),
            results_kept: true,
        });
    }
    let shown = summary::show_success(
        report,
        &result.result,
        out.path(),
        finished.published_to.as_deref(),
        json,
        quiet,
    );
    // Freed beside the process's end, not before it.
    rfm_core::score::drop_aside(result);
    shown.context("cannot show the report").at(Stage::Writing)
}
