//! Publishing a run of `rfm run --database-url` to PostgreSQL: the run is
//! recorded `running` before any work, under a lease a heartbeat thread
//! renews, and ends `published` or `failed`. Starting also marks runs whose
//! lease expired (their process was killed) `abandoned`. The SQL lives in
//! rfm-store.

use std::sync::{Arc, Mutex};

use anyhow::Result;
use rfm_core::report::RunReport;
use rfm_core::RfmResult;
use rfm_store::{Heartbeat, Lease, RunId, Store};

/// A run being recorded in the database: connected before any work, marked
/// `failed` unless it is published (also when dropped early).
pub struct Publisher {
    record: RunRecord,
    started: RunReport,
    done: bool,
    /// Renews the run's lease until the run ends.
    _heartbeat: Heartbeat,
}

/// The run's row, shareable with another thread (an interrupt records the
/// run `failed` through it).
#[derive(Clone)]
pub struct RunRecord {
    store: Arc<Mutex<Store>>,
    run: RunId,
}

impl RunRecord {
    /// Records the run as `failed` with its report (best effort: a warning if
    /// the database cannot be reached).
    pub fn fail(&self, report: &RunReport) {
        let mut failed = report.clone();
        failed.status = "failed".into();
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = store.fail(self.run, &failed) {
            eprintln!(
                "warning: run {} could not be marked failed in the database: {e}",
                report.run_id
            );
        }
    }
}

impl Publisher {
    /// Connects (running migrations), marks runs with expired leases
    /// `abandoned`, records this run as `running` under `lease` and starts
    /// renewing it; or does nothing without a URL.
    pub fn start(url: Option<&str>, report: &RunReport, lease: Lease) -> Result<Option<Publisher>> {
        let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let mut store = Store::connect(url)?;
        for a in store.abandon_expired()? {
            eprintln!("note: run {} marked abandoned: {}", a.run_id, a.reason);
        }
        let run = store.begin_run(report, &lease)?;
        let heartbeat = Heartbeat::start(url, lease, |w| eprintln!("warning: {w}"))?;
        Ok(Some(Publisher {
            record: RunRecord {
                store: Arc::new(Mutex::new(store)),
                run,
            },
            started: report.clone(),
            done: false,
            _heartbeat: heartbeat,
        }))
    }

    /// The run's row, to record it `failed` from another thread.
    pub fn record(&self) -> RunRecord {
        self.record.clone()
    }

    /// Loads the result and publishes the run; on failure records it `failed`.
    /// Returns where it was published (host, port, database, user).
    pub fn publish(mut self, report: &RunReport, result: &RfmResult) -> Result<String> {
        self.done = true;
        let mut store = self.record.store.lock().unwrap_or_else(|e| e.into_inner());
        let target = store.target().to_string();
        let outcome = store.publish(self.record.run, report, result);
        drop(store);
        if let Err(e) = &outcome {
            let mut failed = report.clone();
            failed.error = Some(format!("publishing failed: {e}"));
            self.record.fail(&failed);
        }
        outcome?;
        Ok(target)
    }

    /// Records the run as `failed` with its report (best effort).
    pub fn fail(mut self, report: &RunReport) {
        self.done = true;
        self.record.fail(report);
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if !self.done {
            let mut failed = self.started.clone();
            failed.finished_at = rfm_core::report::utc_now();
            failed.error = Some("the run stopped before its result was ready".into());
            self.record.fail(&failed);
        }
    }
}
