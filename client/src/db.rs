//! Publishing a run of `rfm run --database-url` to PostgreSQL: the run is
//! recorded `running` before any work and ends `published` or `failed`.
//! The SQL lives in rfm-store.

use anyhow::Result;
use rfm_core::report::RunReport;
use rfm_core::RfmResult;
use rfm_store::{RunId, Store};

/// A run being recorded in the database: connected before any work, marked
/// `failed` unless it is published (also when dropped early).
pub struct Publisher {
    store: Store,
    run: RunId,
    started: RunReport,
    done: bool,
}

impl Publisher {
    /// Connects (running migrations) and records the run as `running`, or
    /// does nothing without a URL.
    pub fn start(url: Option<&str>, report: &RunReport) -> Result<Option<Publisher>> {
        let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let mut store = Store::connect(url)?;
        let run = store.begin_run(report)?;
        Ok(Some(Publisher {
            store,
            run,
            started: report.clone(),
            done: false,
        }))
    }

    /// Loads the result and publishes the run; on failure records it `failed`.
    pub fn publish(mut self, report: &RunReport, result: &RfmResult) -> Result<()> {
        self.done = true;
        let outcome = self.store.publish(self.run, report, result);
        if let Err(e) = &outcome {
            let mut failed = report.clone();
            failed.status = "failed".into();
            failed.error = Some(format!("publishing failed: {e}"));
            self.record_failure(&failed);
        }
        Ok(outcome?)
    }

    /// Records the run as `failed` with its report (best effort: a warning if
    /// the database cannot be reached).
    pub fn fail(mut self, report: &RunReport) {
        self.done = true;
        let mut failed = report.clone();
        failed.status = "failed".into();
        self.record_failure(&failed);
    }

    fn record_failure(&mut self, report: &RunReport) {
        if let Err(e) = self.store.fail(self.run, report) {
            eprintln!(
                "warning: run {} could not be marked failed in the database: {e}",
                report.run_id
            );
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if !self.done {
            let mut failed = self.started.clone();
            failed.status = "failed".into();
            failed.finished_at = rfm_core::report::utc_now();
            failed.error = Some("the run stopped before its result was ready".into());
            self.record_failure(&failed);
        }
    }
}
