//! The coordinator's side of the run database (`--database-url`, and the
//! embedded coordinator of `rfm run --database-url`): rfm-store's
//! [`Recorder`] does the recording and publishing; here its blocking calls
//! run on tokio's blocking pool, one at a time over its one connection.

use std::sync::Arc;

use rfm_core::report::RunReport;
use rfm_core::RfmResult;
use rfm_store::{Recorder, RunId};

/// Runs `work` with the recorder on the blocking pool.
async fn blocking<T: Send + 'static>(
    recorder: &Arc<Recorder>,
    work: impl FnOnce(&Recorder) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let recorder = recorder.clone();
    tokio::task::spawn_blocking(move || work(&recorder))
        .await
        .unwrap_or_else(|e| Err(format!("the database call stopped: {e}")))
}

/// Records a new run `running` (after marking expired runs abandoned).
pub async fn begin(recorder: &Arc<Recorder>, report: RunReport) -> Result<RunId, String> {
    blocking(recorder, move |r| {
        r.begin(&report).map_err(|e| e.to_string())
    })
    .await
}

/// Publishes the run with its result; on failure the run is recorded
/// `failed` and the reason returned.
pub async fn publish(
    recorder: &Arc<Recorder>,
    run: RunId,
    report: RunReport,
    result: Arc<RfmResult>,
) -> Result<(), String> {
    blocking(recorder, move |r| {
        r.publish(run, &report, &result).map_err(|e| e.to_string())
    })
    .await
}

/// Records the run `failed` with its report (best effort: the recorder warns).
pub async fn fail(recorder: &Arc<Recorder>, run: RunId, report: RunReport) {
    let outcome = blocking(recorder, move |r| {
        r.fail(run, &report);
        Ok(())
    })
    .await;
    if let Err(e) = outcome {
        tracing::warn!("rfm-coordinator: a failed run could not be recorded in the database: {e}");
    }
}
