//! The live coordinator: a snapshot of its jobs and workers drawn from the
//! `ListJobs` and `ListWorkers` RPCs ([`LiveSource`]), and a background
//! thread polling it every second ([`LivePoller`]) so the screen never waits
//! on the network. A coordinator that cannot be reached is reported as
//! [`LiveUpdate::Lost`] and polled again a second later.

use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use rfm_proto::cluster_status::CoordinatorStatus;
use rfm_proto::tls::ClientTls;
use rfm_proto::v1::{JobStatus, WorkerInfo};

/// Name of the polling thread.
pub const THREAD_NAME: &str = "rfm-dashboard-live";

/// How often the coordinator is polled.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// A worker silent for longer than this (two heartbeat intervals and a
/// margin) is shown as stale.
pub const STALE_SECONDS: f64 = 5.0;

/// One job as the coordinator reports it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobRow {
    pub id: String,
    /// Stage or final state (`running`, `merging`, `succeeded`, `failed`…).
    pub stage: String,
    pub tasks_done: u32,
    pub tasks_total: u32,
    pub tasks_running: u32,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub lines_done: u64,
    pub retries: u32,
    pub seconds: f64,
    /// The memory the finished job's result holds in the coordinator (0
    /// while it runs, or without a result).
    pub result_bytes: u64,
    pub error: String,
}

impl From<JobStatus> for JobRow {
    fn from(s: JobStatus) -> JobRow {
        JobRow {
            id: s.job_id,
            stage: s.stage,
            tasks_done: s.tasks_done,
            tasks_total: s.tasks_total,
            tasks_running: s.tasks_running,
            bytes_done: s.bytes_done,
            bytes_total: s.bytes_total,
            lines_done: s.lines_done,
            retries: s.retries,
            seconds: s.elapsed_seconds,
            result_bytes: s.result_bytes,
            error: s.error,
        }
    }
}

/// One worker as the coordinator knows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkerRow {
    pub id: String,
    pub address: String,
    /// `alive` or `lost`.
    pub state: String,
    pub running_tasks: u32,
    pub slots: u32,
    pub seconds_since_heartbeat: f64,
}

impl WorkerRow {
    /// Silent for more than [`STALE_SECONDS`], or given up by the coordinator.
    pub fn stale(&self) -> bool {
        self.seconds_since_heartbeat > STALE_SECONDS || self.state == "lost"
    }
}

impl From<WorkerInfo> for WorkerRow {
    fn from(w: WorkerInfo) -> WorkerRow {
        WorkerRow {
            id: w.worker_id,
            address: w.address,
            state: w.state,
            running_tasks: w.running_tasks,
            slots: w.slots,
            seconds_since_heartbeat: w.seconds_since_heartbeat,
        }
    }
}

/// The coordinator's jobs and workers at one poll.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveSnapshot {
    pub jobs: Vec<JobRow>,
    pub workers: Vec<WorkerRow>,
}

/// What the polling thread sends.
#[derive(Clone, Debug, PartialEq)]
pub enum LiveUpdate {
    Snapshot(LiveSnapshot),
    /// The coordinator could not be reached or refused the call; polling goes on.
    Lost(String),
}

/// A coordinator polled over gRPC (with the cluster's token and TLS, if any).
pub struct LiveSource {
    status: CoordinatorStatus,
}

impl LiveSource {
    /// A source for `url` (`host:port`, `http://` or `https://`); does not
    /// connect yet. An error names `--coordinator` when the URL is malformed
    /// or its scheme does not match `--tls-ca`.
    pub fn new(
        url: &str,
        token: Option<String>,
        tls: Option<ClientTls>,
    ) -> Result<LiveSource, String> {
        let hint = "pass --token or set RFM_TOKEN";
        Ok(LiveSource {
            status: CoordinatorStatus::new(url, token, tls, hint)?,
        })
    }

    pub fn url(&self) -> &str {
        self.status.url()
    }

    /// Lists the jobs and workers once. Must run inside a tokio runtime.
    pub async fn poll(&mut self) -> Result<LiveSnapshot, String> {
        let read = self.status.read().await?;
        Ok(LiveSnapshot {
            jobs: read.jobs.into_iter().map(JobRow::from).collect(),
            workers: read.workers.into_iter().map(WorkerRow::from).collect(),
        })
    }

    /// [`LiveSource::poll`] on a runtime of its own, with a connection of its
    /// own (for tests and scripts).
    pub fn poll_blocking(&mut self) -> Result<LiveSnapshot, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let snapshot = runtime.block_on(self.poll());
        // The channel's connection lives on this runtime: do not keep it.
        self.status.disconnect();
        snapshot
    }
}

/// Handle to the polling thread; dropping it ends the thread after its
/// current poll.
pub struct LivePoller {
    updates: Receiver<LiveUpdate>,
}

impl LivePoller {
    /// Polls `source` every `interval` on a background thread.
    pub fn spawn(mut source: LiveSource, interval: Duration) -> LivePoller {
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx.send(LiveUpdate::Lost(format!(
                            "cannot start the async runtime: {e}"
                        )));
                        return;
                    }
                };
                loop {
                    let update = match runtime.block_on(source.poll()) {
                        Ok(snapshot) => LiveUpdate::Snapshot(snapshot),
                        Err(e) => LiveUpdate::Lost(e),
                    };
                    if tx.send(update).is_err() {
                        return;
                    }
                    std::thread::sleep(interval);
                }
            });
        if let Err(e) = spawned {
            let (tx, rx) = mpsc::channel();
            let _ = tx.send(LiveUpdate::Lost(format!(
                "cannot start the polling thread: {e}"
            )));
            return LivePoller { updates: rx };
        }
        LivePoller { updates: rx }
    }

    /// Updates ready now, without waiting.
    pub fn ready(&self) -> Vec<LiveUpdate> {
        self.updates.try_iter().collect()
    }

    /// Waits for the next update (for tests).
    pub fn wait(&self, timeout: Duration) -> Option<LiveUpdate> {
        self.updates.recv_timeout(timeout).ok()
    }
}
