//! The worker's membership: registers with the coordinator (checking the
//! protocol version), then heartbeats every interval; when the coordinator no
//! longer knows it (it restarted, or declared this worker lost) it registers
//! again under a new id. Runs on the async runtime, never blocked by tasks.
//! A change of phase (draining, left) is told at once, in an extra heartbeat;
//! the one saying the worker left is the last. Every registration carries a
//! fresh call secret, the only credential the worker's port takes from then on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rfm_proto::keepalive::Keepalive;
use rfm_proto::tls::ClientTls;
use rfm_proto::v1::coordinator_client::CoordinatorClient;
use rfm_proto::v1::{HeartbeatRequest, RegisterWorkerRequest, RegisterWorkerResponse, WorkerPhase};
use tokio::sync::watch;
use tonic::transport::Channel;
use tonic::Code;

use rfm_proto::auth::{CallSecret, Token};

use crate::tasks::TaskStore;
use crate::WorkerError;

pub struct Membership {
    pub url: String,
    pub advertise_host: String,
    pub port: u32,
    pub slots: u32,
    pub protocol_version: u32,
    pub heartbeat_interval: Duration,
    /// The coordinator's worker token.
    pub worker_token: Token,
    /// The secret the worker's port takes, renewed at every registration.
    pub call_secret: CallSecret,
    /// Started with `--insecure`.
    pub insecure: bool,
    pub store: Arc<TaskStore>,
    pub keepalive: Keepalive,
    /// TLS of the connection to the coordinator (https), if any.
    pub tls: Option<ClientTls>,
    /// This worker's port serves TLS (said at registration).
    pub serves_tls: bool,
    /// Draining or left, as the worker's drain says.
    pub phase: watch::Receiver<WorkerPhase>,
}

impl Membership {
    fn say(&self, message: String) {
        tracing::info!("{message}");
    }

    /// What went wrong with TLS in a failed call, in plain words, if TLS
    /// is the matter.
    fn tls_failure(&self, status: &tonic::Status) -> Option<String> {
        let ca = self.tls.as_ref().map(|t| t.ca_path());
        rfm_proto::tls::explain(status, &self.url, "coordinator", ca)
    }

    /// A failed call's message, in plain words when TLS is the matter. A TLS
    /// connection closed at once after the handshake is most likely this
    /// worker's certificate refused by the coordinator's --tls-client-ca
    /// (TLS 1.3 checks it after the client's side of the handshake ended).
    fn explain(&self, status: &tonic::Status) -> String {
        if let Some(tls) = self.tls_failure(status) {
            return tls;
        }
        if self.tls.is_some() && std::error::Error::source(status).is_some() {
            return format!(
                "{}: the coordinator closed the connection; if it checks client certificates \
                 (--tls-client-ca), this worker's --tls-cert must be signed by that CA",
                status.message()
            );
        }
        status.message().to_string()
    }

    fn client(&self) -> Result<CoordinatorClient<Channel>, WorkerError> {
        let endpoint = rfm_proto::tls::endpoint(&self.url, self.tls.as_ref(), None)
            .map_err(|e| WorkerError::BadUrl {
                url: self.url.clone(),
                reason: e.to_string(),
            })?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5));
        let channel = self.keepalive.client(endpoint).connect_lazy();
        Ok(CoordinatorClient::new(channel))
    }

    async fn register(
        &self,
        client: &mut CoordinatorClient<Channel>,
    ) -> Result<RegisterWorkerResponse, tonic::Status> {
        let request = RegisterWorkerRequest {
            protocol_version: self.protocol_version,
            advertise_host: self.advertise_host.clone(),
            port: self.port,
            slots: self.slots,
            call_secret: self.call_secret.renew(),
            insecure: self.insecure,
            tls: self.serves_tls,
        };
        client
            .register_worker(self.worker_token.request(request))
            .await
            .map(|r| r.into_inner())
    }

    /// Registers, retrying while the coordinator is unreachable for at most
    /// `timeout`; a refusal (protocol mismatch, not a coordinator) is final.
    pub async fn register_first(
        &self,
        timeout: Duration,
    ) -> Result<RegisterWorkerResponse, WorkerError> {
        let started = Instant::now();
        let mut client = self.client()?;
        loop {
            match self.register(&mut client).await {
                Ok(r) => return Ok(r),
                Err(s) if self.tls_failure(&s).is_some() => {
                    // A TLS mismatch does not heal by waiting.
                    return Err(WorkerError::TlsFailed {
                        url: self.url.clone(),
                        message: self.explain(&s),
                    });
                }
                Err(s) if s.code() == Code::Unavailable || s.code() == Code::DeadlineExceeded => {
                    if started.elapsed() >= timeout {
                        return Err(WorkerError::Unreachable {
                            url: self.url.clone(),
                            seconds: started.elapsed().as_secs_f64(),
                            message: self.explain(&s),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(s) if s.code() == Code::Unimplemented => {
                    return Err(WorkerError::Refused {
                        url: self.url.clone(),
                        message: "it does not speak the rfm coordinator protocol (is the URL a coordinator's?)".into(),
                    })
                }
                Err(s) => {
                    return Err(WorkerError::Refused {
                        url: self.url.clone(),
                        message: self.explain(&s),
                    })
                }
            }
        }
    }

    /// Heartbeats until the worker has left, registering again when the
    /// coordinator asks (unless draining).
    pub async fn heartbeat_loop(mut self, registered: RegisterWorkerResponse) {
        let Ok(mut client) = self.client() else {
            return;
        };
        let mut worker_id = registered.worker_id;
        self.say(format!(
            "rfm-worker: registered as {worker_id} ({})",
            registered.address
        ));
        let mut out_of_touch = false;
        let mut ticker = tokio::time::interval(self.heartbeat_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                changed = self.phase.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
            let phase = *self.phase.borrow_and_update();
            let beat = HeartbeatRequest {
                worker_id: worker_id.clone(),
                running_tasks: self.store.running(),
                phase: phase as i32,
                call_secret: self.call_secret.current().to_string(),
            };
            let answer = client.heartbeat(self.worker_token.request(beat)).await;
            if phase == WorkerPhase::Left {
                return;
            }
            match answer {
                Ok(r) if r.get_ref().known => {
                    if out_of_touch {
                        self.say(format!("rfm-worker: coordinator {} is back", self.url));
                        out_of_touch = false;
                    }
                }
                Ok(_) if phase == WorkerPhase::Draining => {}
                Ok(_) => match self.register(&mut client).await {
                    Ok(r) => {
                        self.store.forget_finished();
                        self.say(format!(
                            "rfm-worker: registered again as {} ({})",
                            r.worker_id, r.address
                        ));
                        worker_id = r.worker_id;
                    }
                    Err(s) => self.say(format!(
                        "rfm-worker: cannot register again with {}: {}",
                        self.url,
                        s.message()
                    )),
                },
                Err(s) => {
                    if !out_of_touch {
                        self.say(format!(
                            "rfm-worker: heartbeat to {} failed: {}; retrying every {:?}",
                            self.url,
                            s.message(),
                            self.heartbeat_interval
                        ));
                        out_of_touch = true;
                    }
                }
            }
        }
    }
}
