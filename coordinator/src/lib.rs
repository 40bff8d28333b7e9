//! The rfm coordinator: a worker registry with heartbeat expiry, chunk
//! planning, push dispatch of tasks to free worker slots, retries of lost
//! workers' tasks, the merge of partial states fetched over Arrow Flight, and
//! scoring; clients submit and watch jobs over gRPC and fetch a finished
//! job's scored tables over Arrow Flight on the same port ([`results`]).
//!
//! [`start`] serves it in the current tokio runtime; the `rfm-coordinator`
//! binary and the embedded cluster of `rfm run` both use it;
//! [`Coordinator::drain`] shuts it down gracefully.

pub mod access;
mod answer;
mod attempt;
pub mod cached;
pub mod cli;
pub mod complete;
mod drain;
pub mod driver;
pub mod flight_decode;
mod freed_memory;
pub mod http;
pub mod job;
pub mod limits;
pub mod local_inputs;
pub mod metrics;
pub mod publish;
pub mod registry;
pub mod report;
pub mod results;
pub mod retention;
pub mod service;
pub mod upload;
pub mod watch;

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use rfm_proto::auth::Credentials;
use rfm_proto::keepalive::Keepalive;
use rfm_proto::v1::coordinator_server::CoordinatorServer;
use rfm_proto::{MAX_CONTROL_MESSAGE_BYTES, MAX_MESSAGE_BYTES};
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;

pub use drain::{DrainOutcome, FETCH_GRACE};
pub use driver::DriverConfig;
pub use freed_memory::keep_between_jobs as keep_freed_memory_between_jobs;

/// Default time between worker heartbeats.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);
/// Default silence after which a worker is lost.
pub const DEFAULT_WORKER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a job waits without any live worker before failing.
pub const DEFAULT_NO_WORKER_GRACE: Duration = Duration::from_secs(30);
/// Default attempts per task.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;
/// Default time an attempt may run before it is given up and run elsewhere.
pub const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(600);

/// Settings of a coordinator.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    pub worker_timeout: Duration,
    pub no_worker_grace: Duration,
    pub max_attempts: u32,
    /// An attempt without a result after this long is cancelled and run on
    /// another worker (a task hung on a worker that still heartbeats);
    /// zero: no limit.
    pub task_timeout: Duration,
    /// Who may call the coordinator, and in which role (never sent to
    /// workers: each worker's port takes the call secret it registered with).
    pub credentials: Credentials,
    /// Started with `--insecure` (said in `ListWorkers` and `/readyz`).
    pub insecure: bool,
    /// When finished states are folded on their workers (`--fold-states`).
    pub fold_states: driver::FoldStates,
    /// Whether a running task is cut short at a job's tail for an idle
    /// worker to share it (`--split-tasks`).
    pub split_tasks: bool,
    /// Records and publishes every job's run in PostgreSQL, when set.
    pub recorder: Option<Arc<rfm_store::Recorder>>,
    /// HTTP/2 keepalive of the gRPC port and of the connections to workers.
    pub keepalive: Keepalive,
    /// How many finished jobs are kept for their results, and how long.
    pub retention: retention::Retention,
    /// What any caller can make the coordinator spend.
    pub limits: limits::Limits,
    /// Job inputs must lie under it, when set (`--data-root`).
    pub data_root: Option<Arc<rfm_core::DataRoot>>,
    /// Which `s3://` and `http(s)://` inputs clients may give (`--remote-inputs`).
    pub remote_inputs: rfm_core::remote::RemoteInputs,
    /// TLS of the gRPC port and of the connections to the workers.
    pub tls: CoordinatorTls,
    /// The state cache (`--cache-dir`): files found there are not read again.
    pub cache: Option<Arc<rfm_core::cache::Cache>>,
    /// Set when a worker runs in this process (the embedded cluster): its
    /// finished states are taken from here in memory, not fetched over Flight.
    pub local_states: Option<Arc<rfm_proto::local::LocalStates>>,
    /// Set when a client runs in this process (the embedded cluster): the
    /// input files it opened are taken from here, not opened again.
    pub local_inputs: Option<Arc<local_inputs::LocalInputs>>,
}

/// TLS of a coordinator: its port serves TLS (`serve`), it dials workers
/// over TLS (`dial`), checking `worker_name` on their certificates
/// (default: the host each worker is dialled at).
#[derive(Clone, Debug, Default)]
pub struct CoordinatorTls {
    pub serve: Option<rfm_proto::tls::ServerTls>,
    pub dial: Option<rfm_proto::tls::ClientTls>,
    pub worker_name: Option<String>,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            worker_timeout: DEFAULT_WORKER_TIMEOUT,
            no_worker_grace: DEFAULT_NO_WORKER_GRACE,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            task_timeout: DEFAULT_TASK_TIMEOUT,
            credentials: Credentials::default(),
            insecure: false,
            fold_states: driver::FoldStates::default(),
            split_tasks: true,
            recorder: None,
            keepalive: Keepalive::default(),
            retention: retention::Retention::default(),
            limits: limits::Limits::default(),
            data_root: None,
            remote_inputs: rfm_core::remote::RemoteInputs::default(),
            tls: CoordinatorTls::default(),
            cache: None,
            local_states: None,
            local_inputs: None,
        }
    }
}

/// The scored results of a coordinator's finished jobs, for a client in
/// its process (the embedded cluster of `rfm run`): the result the Flight
/// service would stream, handed over without encoding it.
#[derive(Clone)]
pub struct LocalResults {
    jobs: Arc<retention::JobTable>,
}

impl LocalResults {
    /// The scored result of succeeded job `job_id`, marked fetched as the
    /// Flight service marks it once both its tables are sent.
    pub fn take(&self, job_id: &str) -> Option<Arc<rfm_core::RfmResult>> {
        let job = self.jobs.get(job_id).ok()?;
        let result = job.tables()?;
        job.tables_fetched();
        Some(result)
    }
}

/// A running coordinator.
pub struct Coordinator {
    pub local_addr: SocketAddr,
    /// The workers that registered (for the HTTP port's metrics and readiness).
    pub registry: Arc<registry::Registry>,
    /// Set once the coordinator drains: it takes no new jobs, `/readyz` says so.
    pub draining: Arc<AtomicBool>,
    /// The port serves TLS (its URL is https://).
    pub tls: bool,
    jobs: Arc<retention::JobTable>,
    submitter: watch::Submitter,
    shutdown: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    reaper: tokio::task::JoinHandle<()>,
}

impl Coordinator {
    /// The URL clients and workers use.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// Waits until the server stops (only on error or shutdown).
    /// Submits jobs to this coordinator in-process (`--watch`).
    pub fn submitter(&self) -> watch::Submitter {
        self.submitter.clone()
    }

    /// Every job kept (for the HTTP port's metrics).
    pub fn jobs(&self) -> Arc<retention::JobTable> {
        self.jobs.clone()
    }

    /// Finished jobs' scored results, read in this process.
    pub fn local_results(&self) -> LocalResults {
        LocalResults {
            jobs: self.jobs.clone(),
        }
    }

    pub async fn wait(&mut self) -> Result<(), String> {
        match (&mut self.server).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("the coordinator's server stopped: {e}")),
            Err(e) => Err(format!("the coordinator's server stopped: {e}")),
        }
    }

    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.reaper.abort();
        let _ = self.server.await;
    }
}

/// Serves the coordinator on `listener` and starts expiring silent workers.
pub fn start(config: CoordinatorConfig, listener: TcpListener) -> std::io::Result<Coordinator> {
    let local_addr = listener.local_addr()?;
    let registry = Arc::new(
        registry::Registry::new(
            config.worker_timeout,
            config.keepalive,
            config.limits.max_workers,
        )
        .dialing_with_tls(config.tls.dial.clone(), config.tls.worker_name.clone()),
    );
    let driver = DriverConfig {
        max_attempts: config.max_attempts.max(1),
        no_worker_grace: config.no_worker_grace,
        task_timeout: config.task_timeout,
        tick: (config.worker_timeout / 10)
            .clamp(Duration::from_millis(20), Duration::from_millis(250)),
        recorder: config.recorder.clone(),
        data_root: config.data_root.clone(),
        cache: config.cache.clone(),
        remote_inputs: config.remote_inputs,
        local_states: config.local_states.clone(),
        local_inputs: config.local_inputs.clone(),
        fold_states: config.fold_states,
        split_tasks: config.split_tasks,
    };
    let sweep_every = driver.tick;
    let jobs = Arc::new(retention::JobTable::new(config.retention));
    let draining = Arc::new(AtomicBool::new(false));
    let service = Arc::new(
        service::CoordinatorService::new(
            registry.clone(),
            jobs.clone(),
            draining.clone(),
            driver,
            config.limits,
        )
        .insecure(config.insecure)
        .with_worker_tls(service::WorkerTls::of(&config.tls)),
    );
    service.remove_stale_uploads();
    let submitter = watch::Submitter {
        service: service.clone(),
        jobs: jobs.clone(),
        recorder: config.recorder.clone(),
        data_root: config.data_root.clone(),
    };
    let (shutdown, mut shutdown_rx) = tokio::sync::watch::channel(false);
    // gRPC health (grpc.health.v1), open without the token: "" is SERVING.
    let (_, health) = tonic_health::server::health_reporter();
    let mut builder = config.keepalive.server(rfm_proto::serve::bounded_server());
    if let Some(tls) = &config.tls.serve {
        // Client certificates are optional on the port (CLI clients have
        // none); the worker calls check them (see `service::WorkerTls`).
        builder = builder
            .tls_config(tls.tonic(true))
            .map_err(|e| std::io::Error::other(format!("cannot serve TLS: {e}")))?;
    }
    let server = builder
        .add_service(health)
        .add_service(InterceptedService::new(
            // Calls are small both ways: results travel over Flight.
            CoordinatorServer::from_arc(service)
                .max_decoding_message_size(MAX_CONTROL_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_CONTROL_MESSAGE_BYTES),
            config.credentials.clone().interceptor(),
        ))
        .add_service(InterceptedService::new(
            // Scored tables, to the jobs' owners (checked per call).
            FlightServiceServer::new(results::ResultFlightService::new(jobs.clone()))
                .max_decoding_message_size(MAX_CONTROL_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            config.credentials.clone().interceptor(),
        ))
        .serve_with_incoming_shutdown(rfm_proto::serve::incoming_nodelay(listener), async move {
            let _ = shutdown_rx.wait_for(|stop| *stop).await;
        });
    let server = tokio::spawn(server);
    let swept = registry.clone();
    let idle_jobs = jobs.clone();
    let reaper = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(sweep_every);
        // Pages kept for the next job go back once none has run for a while.
        let mut idle_memory = freed_memory::IdleMemory::default();
        loop {
            ticker.tick().await;
            for (id, address) in swept.sweep() {
                tracing::warn!("rfm-coordinator: worker {id} ({address}) lost: no heartbeat");
            }
            if idle_memory.tick(idle_jobs.activity()) {
                let returning = std::time::Instant::now();
                // Off the runtime's threads, which serve calls meanwhile.
                let _ = tokio::task::spawn_blocking(freed_memory::release).await;
                tracing::debug!(
                    "rfm-coordinator: idle: the memory kept for the next job returned in {:.1} ms",
                    returning.elapsed().as_secs_f64() * 1e3
                );
            }
        }
    });
    Ok(Coordinator {
        local_addr,
        registry,
        draining,
        tls: config.tls.serve.is_some(),
        jobs,
        submitter,
        shutdown,
        server,
        reaper,
    })
}
