//! The Live page's source: a coordinator's jobs and workers through its
//! `ListJobs` and `ListWorkers` RPCs (with the cluster's client token and
//! TLS), as the terminal dashboard's Live view reads them, turned into one
//! JSON snapshot: per job its stage, tasks, bytes, lines, rows/s, retries;
//! per worker its state, tasks and heartbeat. `/live/events` pushes a
//! snapshot every second as server-sent events.

use std::time::Duration;

use rfm_proto::cluster_status::{ClusterStatus, CoordinatorStatus};
use rfm_proto::tls::ClientTls;
use serde_json::{json, Value};

/// How often `/live/events` polls the coordinator.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// A coordinator polled over gRPC.
pub struct Live {
    status: CoordinatorStatus,
}

impl Live {
    /// A source for `url` (`host:port`, `http://` or `https://`); does not
    /// connect yet. The error names `--coordinator`.
    pub fn new(url: &str, token: Option<String>, tls: Option<ClientTls>) -> Result<Live, String> {
        let hint = "give rfm-web --coordinator-token-file";
        Ok(Live {
            status: CoordinatorStatus::new(url, token, tls, hint)?,
        })
    }

    pub fn url(&self) -> &str {
        self.status.url()
    }

    /// One snapshot: `{"coordinator", "jobs": […], "workers": […]}`, or why
    /// the coordinator cannot be read (it is polled again next time).
    pub async fn poll(&mut self) -> Result<Value, String> {
        let ClusterStatus { jobs, workers } = self.status.read().await?;
        let jobs: Vec<Value> = jobs
            .into_iter()
            .map(|j| {
                let rate = if j.elapsed_seconds > 0.0 {
                    (j.lines_done as f64 / j.elapsed_seconds).round()
                } else {
                    0.0
                };
                json!({
                    "job_id": j.job_id,
                    "stage": j.stage,
                    "tasks_done": j.tasks_done,
                    "tasks_total": j.tasks_total,
                    "tasks_running": j.tasks_running,
                    "bytes_done": j.bytes_done,
                    "bytes_total": j.bytes_total,
                    "lines_done": j.lines_done,
                    "rows_per_second": rate,
                    "retries": j.retries,
                    "seconds": j.elapsed_seconds,
                    "result_bytes": j.result_bytes,
                    "error": j.error,
                })
            })
            .collect();
        let workers: Vec<Value> = workers
            .into_iter()
            .map(|w| {
                json!({
                    "worker_id": w.worker_id,
                    "address": w.address,
                    "state": w.state,
                    "running_tasks": w.running_tasks,
                    "slots": w.slots,
                    "seconds_since_heartbeat": w.seconds_since_heartbeat,
                })
            })
            .collect();
        Ok(json!({ "coordinator": self.status.url(), "jobs": jobs, "workers": workers }))
    }
}

/// The coordinator the server watches, shared by every request.
pub struct Watched {
    pub url: String,
    pub client: tokio::sync::Mutex<Live>,
}

impl Watched {
    pub fn new(live: Live) -> Watched {
        Watched {
            url: live.url().to_string(),
            client: tokio::sync::Mutex::new(live),
        }
    }
}
