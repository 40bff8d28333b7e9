//! A run that failed: the stage it stopped at and its error, and the
//! `run.json` it leaves. Every run of `rfm run` and `rfm submit` that gets past
//! its options leaves a complete report in its folder: the results with it,
//! or for a failed run a `run.json` alone, with `"status": "failed"`, the
//! stage, the error, and what is known of its inputs and ledger. A run whose
//! only failure is publishing to the database keeps its computed results
//! beside its failed `run.json`; a run that fails writing into a folder that
//! holds a previous run's files leaves that folder as it was.

use std::time::Instant;

use rfm_core::output::{OutDir, REPORT_FILE};
use rfm_core::report::{self, RunReport, Stage};
use rfm_core::text::escape_for_terminal;

use crate::summary;

/// Why a run stopped.
#[derive(Debug)]
pub struct Failed {
    pub stage: Stage,
    pub error: anyhow::Error,
    /// Whether the results were written before the failure (publishing
    /// failed): they stay in the run folder, beside the failed report.
    pub results_kept: bool,
}

impl Failed {
    pub fn new(stage: Stage, error: anyhow::Error) -> Failed {
        Failed {
            stage,
            error,
            results_kept: false,
        }
    }
}

impl From<rfm_core::Error> for Failed {
    fn from(e: rfm_core::Error) -> Failed {
        Failed::new(e.stage(), e.into())
    }
}

/// Tags an error with the stage it stops.
pub trait At<T> {
    fn at(self, stage: Stage) -> Result<T, Failed>;
}

impl<T, E: Into<anyhow::Error>> At<T> for Result<T, E> {
    fn at(self, stage: Stage) -> Result<T, Failed> {
        self.map_err(|e| Failed::new(stage, e.into()))
    }
}

/// Completes a failed run's report: status, stage, error and times.
pub fn complete(report: &mut RunReport, failed: &Failed, started: Instant) {
    report.fail(failed.stage, &format!("{:#}", failed.error));
    report.finished_at = report::utc_now();
    report.seconds = started.elapsed().as_secs_f64();
}

/// Writes a failed run's completed report as the whole content of its folder
/// and tells the user (the ledger when lines were read, and where the report
/// is); returns the run's error, for the exit code.
pub fn leave(out: &OutDir, report: &RunReport, failed: Failed, quiet: bool) -> anyhow::Error {
    if failed.stage == Stage::Writing && out.holds_files() {
        // Writing there just failed: what is there (a previous run, whole)
        // is better left alone than replaced by a report.
        if !quiet {
            eprintln!(
                "{}",
                escape_for_terminal(&format!(
                    "the files in {} are unchanged",
                    out.path().display()
                ))
            );
        }
        return failed.error;
    }
    let written = match failed.results_kept {
        true => out.replace_report(report),
        false => out.write_report(report),
    };
    match written {
        Ok(()) if !quiet => {
            if report.lines_read > 0 {
                eprint!("{}", escape_for_terminal(&summary::ledger(report)));
            }
            eprintln!(
                "{}",
                escape_for_terminal(&format!(
                    "report: {} (failed at {})",
                    out.path().join(REPORT_FILE).display(),
                    failed.stage
                ))
            );
        }
        Ok(()) => {}
        Err(e) => eprintln!(
            "{}",
            escape_for_terminal(&format!(
                "warning: the failed run's report could not be written: {e}"
            ))
        ),
    }
    failed.error
}
