//! The run recorder every coordinator uses (the `rfm-coordinator` process and
//! the embedded one of `rfm run --database-url`): a job's run is recorded
//! `running` at submission under the recorder's lease, which a heartbeat
//! thread renews, then published with its result (binary COPY in one
//! transaction) or recorded `failed` with its report. At start and at each
//! new run, runs whose lease expired (their owner was killed) are marked
//! `abandoned`. Blocking: callers in async code run it on a blocking thread.

use std::sync::{Arc, Mutex};

use rfm_core::report::{RunReport, Stage};
use rfm_core::{RfmResult, RunStatus};

use crate::{Heartbeat, Lease, Result, RunId, Store};

/// Where a recorder tells what it cannot report as an error: runs marked
/// abandoned, renewals that failed, failed runs it could not record.
type Warn = Arc<dyn Fn(&str) + Send + Sync>;

/// A connection to the rfm database recording one owner's runs.
pub struct Recorder {
    store: Mutex<Store>,
    lease: Lease,
    /// Renews the leases of this owner's running runs.
    _heartbeat: Heartbeat,
    warn: Warn,
    /// Where runs go (host, port, database, user; never the password).
    pub target: String,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("target", &self.target)
            .finish()
    }
}

impl Recorder {
    /// Connects to `url`, applies the schema migrations, marks runs with
    /// expired leases abandoned and starts renewing the leases of `lease`'s
    /// owner; `warn` hears what is not an error.
    pub fn connect(
        url: &str,
        lease: Lease,
        warn: impl Fn(&str) + Send + Sync + 'static,
    ) -> Result<Recorder> {
        let warn: Warn = Arc::new(warn);
        let mut store = Store::connect(url)?;
        mark_abandoned(&mut store, &warn);
        let renewals = warn.clone();
        let heartbeat = Heartbeat::start(url, lease.clone(), move |w| renewals(w))?;
        let target = store.target().to_string();
        Ok(Recorder {
            store: Mutex::new(store),
            lease,
            _heartbeat: heartbeat,
            warn,
            target,
        })
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks runs with expired leases abandoned, then records a new run
    /// `running` under this recorder's lease.
    pub fn begin(&self, report: &RunReport) -> Result<RunId> {
        let mut store = self.store();
        mark_abandoned(&mut store, &self.warn);
        store.begin_run(report, &self.lease)
    }

    /// Loads the result and publishes the run atomically; when that fails,
    /// records the run `failed` (stage `database`, with why) and returns the
    /// error.
    pub fn publish(&self, run: RunId, report: &RunReport, result: &RfmResult) -> Result<()> {
        let mut store = self.store();
        let Err(e) = store.publish(run, report, result) else {
            return Ok(());
        };
        let mut failed = report.clone();
        failed.fail(Stage::Database, &format!("publishing failed: {e}"));
        if let Err(again) = store.fail(run, &failed) {
            (self.warn)(&format!(
                "run {} could not be marked failed in the database: {again}",
                failed.run_id
            ));
        }
        Err(e)
    }

    /// Records a skipped scheduled run (its report's `error` says why).
    pub fn skipped(&self, report: &RunReport) -> Result<()> {
        let mut store = self.store();
        mark_abandoned(&mut store, &self.warn);
        store.record_skipped(report, &self.lease)
    }

    /// Records the run `failed` with its report (best effort: a warning when
    /// the database cannot be reached).
    pub fn fail(&self, run: RunId, report: &RunReport) {
        let mut failed = report.clone();
        failed.status = RunStatus::Failed;
        if let Err(e) = self.store().fail(run, &failed) {
            (self.warn)(&format!(
                "run {} could not be marked failed in the database: {e}",
                failed.run_id
            ));
        }
    }
}

/// Marks runs whose lease expired abandoned, telling `warn` of each (a
/// failure is a warning: it never stops the recorder).
fn mark_abandoned(store: &mut Store, warn: &Warn) {
    match store.abandon_expired() {
        Ok(runs) => {
            for a in runs {
                warn(&format!("run {} marked abandoned: {}", a.run_id, a.reason));
            }
        }
        Err(e) => warn(&format!("cannot mark abandoned runs: {e}")),
    }
}
