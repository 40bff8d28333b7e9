//! Publishing the coordinator's runs to PostgreSQL (`rfm-coordinator
//! --database-url`): each job is recorded `running` at submission, then
//! published with its result (binary COPY in one transaction, through
//! rfm-store) or recorded `failed` with its report. The store is synchronous:
//! every call runs on tokio's blocking pool, one at a time over one connection.

use std::sync::{Arc, Mutex};

use rfm_core::report::RunReport;
use rfm_core::RfmResult;
use rfm_store::{RunId, Store};

/// The coordinator's connection to the rfm database.
pub struct Publisher {
    store: Mutex<Store>,
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
    /// Connects to `url` and applies the schema migrations (blocking).
    pub fn connect(url: &str) -> Result<Publisher, rfm_store::Error> {
        let store = Store::connect(url)?;
        let target = store.target().to_string();
        Ok(Publisher {
            store: Mutex::new(store),
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

    /// Records a new run as `running`.
    pub async fn begin(self: &Arc<Self>, report: RunReport) -> Result<RunId, String> {
        self.with_store(move |store| store.begin_run(&report).map_err(|e| e.to_string()))
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
