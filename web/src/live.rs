//! The Live page's source: a coordinator's jobs and workers through its
//! `ListJobs` and `ListWorkers` RPCs (with the cluster's client token and
//! TLS), as the terminal dashboard's Live view reads them, turned into one
//! JSON snapshot: per job its stage, tasks, bytes, lines, rows/s, retries;
//! per worker its state, tasks and heartbeat. `/live/events` pushes a
//! snapshot every second as server-sent events.

use std::time::Duration;

use rfm_proto::auth::Token;
use rfm_proto::tls::ClientTls;
use rfm_proto::v1::coordinator_client::CoordinatorClient;
use rfm_proto::v1::{ListJobsRequest, ListWorkersRequest};
use serde_json::{json, Value};
use tonic::transport::Channel;

/// How often `/live/events` polls the coordinator.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// A coordinator polled over gRPC.
pub struct Live {
    url: String,
    token: Token,
    tls: Option<ClientTls>,
    client: Option<CoordinatorClient<Channel>>,
}

impl Live {
    /// A source for `url` (`host:port`, `http://` or `https://`); does not
    /// connect yet. The error names `--coordinator`.
    pub fn new(url: &str, token: Option<String>, tls: Option<ClientTls>) -> Result<Live, String> {
        Ok(Live {
            url: rfm_proto::tls::normalise_url(url, "--coordinator", tls.is_some())
                .map_err(|e| e.to_string())?,
            token: Token::new(token),
            tls,
            client: None,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// One snapshot: `{"coordinator", "jobs": […], "workers": […]}`, or why
    /// the coordinator cannot be read (it is polled again next time).
    pub async fn poll(&mut self) -> Result<Value, String> {
        let client = match &mut self.client {
            Some(c) => c,
            None => {
                let endpoint = rfm_proto::tls::endpoint(&self.url, self.tls.as_ref(), None)
                    .map_err(|e| format!("invalid coordinator URL {}: {e}", self.url))?
                    .connect_timeout(Duration::from_secs(2))
                    .timeout(Duration::from_secs(3));
                // A lazy channel reconnects by itself once the coordinator is back.
                self.client
                    .insert(CoordinatorClient::new(endpoint.connect_lazy()))
            }
        };
        let url = &self.url;
        let ca = self.tls.as_ref().map(|t| t.ca_path());
        let refused = |s: tonic::Status| {
            match rfm_proto::tls::explain(&s, url, "coordinator", ca) {
            Some(tls) => format!("coordinator {url}: {tls}"),
            None => match s.code() {
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => format!(
                    "cannot reach the coordinator at {url}: {}; is rfm-coordinator running?",
                    s.message()
                ),
                tonic::Code::Unauthenticated => format!(
                    "coordinator {url} refused the token: {}; give rfm-web --coordinator-token-file",
                    s.message()
                ),
                _ => format!("coordinator {url}: {}", s.message()),
            },
        }
        };
        let jobs = client
            .list_jobs(self.token.request(ListJobsRequest {}))
            .await
            .map_err(refused)?
            .into_inner()
            .jobs;
        let workers = client
            .list_workers(self.token.request(ListWorkersRequest {}))
            .await
            .map_err(refused)?
            .into_inner()
            .workers;
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
        Ok(json!({ "coordinator": self.url, "jobs": jobs, "workers": workers }))
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
