//! One read of a coordinator's jobs and workers (`ListJobs`, then
//! `ListWorkers`) with the cluster's client token and TLS: the source of the
//! terminal dashboard's Live view and of the web dashboard's Live page. The
//! channel is lazy and reconnects by itself once the coordinator is back; a
//! failed read says why in words an operator can act on.

use std::time::Duration;

use crate::auth::Token;
use crate::tls::ClientTls;
use crate::v1::coordinator_client::CoordinatorClient;
use crate::v1::{JobStatus, ListJobsRequest, ListWorkersRequest, WorkerInfo};
use tonic::transport::Channel;

/// The longest a read waits to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest each call of a read takes.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// What one read returns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterStatus {
    /// By job id.
    pub jobs: Vec<JobStatus>,
    pub workers: Vec<WorkerInfo>,
}

/// A coordinator read over gRPC.
pub struct CoordinatorStatus {
    url: String,
    token: Token,
    tls: Option<ClientTls>,
    /// How the caller's user gives a token, for the message when it is refused
    /// (e.g. "pass --token or set RFM_TOKEN").
    token_hint: &'static str,
    client: Option<CoordinatorClient<Channel>>,
}

impl CoordinatorStatus {
    /// A reader of `url` (`host:port`, `http://` or `https://`); does not
    /// connect yet. An error names `--coordinator` when the URL is malformed
    /// or its scheme does not match the TLS setting.
    pub fn new(
        url: &str,
        token: Option<String>,
        tls: Option<ClientTls>,
        token_hint: &'static str,
    ) -> Result<CoordinatorStatus, String> {
        Ok(CoordinatorStatus {
            url: crate::tls::normalise_url(url, "--coordinator", tls.is_some())
                .map_err(|e| e.to_string())?,
            token: Token::new(token),
            tls,
            token_hint,
            client: None,
        })
    }

    /// The coordinator's URL, normalised.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Lists the jobs and workers once. Must run inside a tokio runtime; the
    /// connection is kept for the next read (see [`Self::disconnect`]).
    pub async fn read(&mut self) -> Result<ClusterStatus, String> {
        let client = match &mut self.client {
            Some(c) => c,
            None => {
                let endpoint = crate::tls::endpoint(&self.url, self.tls.as_ref(), None)
                    .map_err(|e| format!("invalid coordinator URL {}: {e}", self.url))?
                    .connect_timeout(CONNECT_TIMEOUT)
                    .timeout(CALL_TIMEOUT);
                self.client
                    .insert(CoordinatorClient::new(endpoint.connect_lazy()))
            }
        };
        let (url, hint) = (&self.url, self.token_hint);
        let ca = self.tls.as_ref().map(|t| t.ca_path());
        let refused = |s: tonic::Status| match crate::tls::explain(&s, url, "coordinator", ca) {
            Some(tls) => format!("coordinator {url}: {tls}"),
            None => match s.code() {
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => format!(
                    "cannot reach the coordinator at {url}: {}; is rfm-coordinator running?",
                    s.message()
                ),
                tonic::Code::Unauthenticated => {
                    format!(
                        "coordinator {url} refused the token: {}; {hint}",
                        s.message()
                    )
                }
                _ => format!("coordinator {url}: {}", s.message()),
            },
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
        Ok(ClusterStatus { jobs, workers })
    }

    /// Drops the connection (it belongs to the runtime that made it).
    pub fn disconnect(&mut self) {
        self.client = None;
    }
}
