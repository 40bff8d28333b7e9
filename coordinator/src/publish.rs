//! Publishing the coordinator's runs to PostgreSQL (`rfm-coordinator
//! --database-url`): each job is recorded `running` at submission, owned by
//! this coordinator under a lease that a heartbeat thread renews, then
//! published with its result (binary COPY in one transaction, through
//! rfm-store) or recorded `failed` with its report. At start-up and at each
//! submission, runs whose lease expired (their process was killed) are marked
//! `abandoned`. The store is synchronous: every call runs on tokio's blocking
//! pool, one at a time over one connection.

use std::sync::{Arc, Mutex};

use rfm_core::report::RunReport;
use rfm_core::RfmResult;
use rfm_store::{Heartbeat, Lease, RunId, Store};

/// The coordinator's connection to the rfm database.
pub struct Publisher {
    store: Mutex<Store>,
    lease: Lease,
    /// Renews the leases of this coordinator's running runs.
    _heartbeat: Heartbeat,
    /// Where runs go (host, port, database, user; never the password).
    pub target: String,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("target", &self.target)
            .finish()
    }
}

impl Publisher {
    /// Connects to `url`, applies the schema migrations, marks runs with
    /// expired leases abandoned and starts renewing the leases of this
    /// coordinator's runs (blocking).
    pub fn connect(url: &str, lease: Lease) -> Result<Publisher, rfm_store::Error> {
        let mut store = Store::connect(url)?;
        log_abandoned(&mut store);
        let heartbeat = Heartbeat::start(url, lease.clone(), |w| {
            tracing::warn!("rfm-coordinator: {w}")
        })?;
        let target = store.target().to_string();
        Ok(Publisher {
            store: Mutex::new(store),
            lease,
            _heartbeat: heartbeat,
            target,
        })
    }

    /// Runs `work` with the store on the blocking pool.
    async fn with_store<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&mut Store) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = this.store.lock().unwrap_or_else(|e| e.into_inner());
            work(&mut store)
        })
        .await
        .unwrap_or_else(|e| Err(format!("the database call stopped: {e}")))
    }

    /// Marks runs with expired leases abandoned, then records a new run as
    /// `running` under this coordinator's lease.
    pub async fn begin(self: &Arc<Self>, report: RunReport) -> Result<RunId, String> {
        let lease = self.lease.clone();
        self.with_store(move |store| {
            log_abandoned(store);
            store.begin_run(&report, &lease).map_err(|e| e.to_string())
        })
        .await
    }

    /// Loads the result and publishes the run atomically; on failure records
    /// the run `failed` (with why) and returns the reason.
    pub async fn publish(
        self: &Arc<Self>,
        run: RunId,
        report: RunReport,
        result: RfmResult,
    ) -> Result<(), String> {
        self.with_store(move |store| {
            let Err(e) = store.publish(run, &report, &result) else {
                return Ok(());
            };
            let mut failed = report;
            failed.fail(
                rfm_core::report::Stage::Database,
                &format!("publishing failed: {e}"),
            );
            if let Err(again) = store.fail(run, &failed) {
                eprintln!(
                    "rfm-coordinator: run {} could not be marked failed in the database: {again}",
                    failed.run_id
                );
            }
            Err(e.to_string())
        })
        .await
    }

    /// Records the run `failed` with its report (best effort: a warning on stderr).
    pub async fn fail(self: &Arc<Self>, run: RunId, report: RunReport) {
        let outcome = self
            .with_store(move |store| {
                let mut failed = report;
                failed.status = "failed".into();
                store
                    .fail(run, &failed)
                    .map_err(|e| format!("run {}: {e}", failed.run_id))
            })
            .await;
        if let Err(e) = outcome {
            eprintln!("rfm-coordinator: a failed run could not be recorded in the database: {e}");
        }
    }
}

/// Marks runs whose lease expired abandoned, logging each (a failure is a
/// warning: it never stops the coordinator).
fn log_abandoned(store: &mut Store) {
    match store.abandon_expired() {
        Ok(runs) => {
            for a in runs {
                tracing::warn!(
                    "rfm-coordinator: run {} marked abandoned: {}",
                    a.run_id,
                    a.reason
                );
            }
        }
        Err(e) => tracing::warn!("rfm-coordinator: cannot mark abandoned runs: {e}"),
    }
}
