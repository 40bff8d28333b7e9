//! The rfm worker: a gRPC task service that computes the partial RFM state of
//! a byte range of an input file (rayon, off the async runtime), an Arrow
//! Flight service that hands finished states to the coordinator (`DoGet`), and
//! a membership loop that registers with the coordinator and heartbeats.
//!
//! [`start`] runs all three in the current tokio runtime; the `rfm-worker`
//! binary and the embedded cluster of `rfm run` both use it;
//! [`Worker::drain`] shuts it down gracefully.

pub mod cli;
pub mod flight;
pub mod http;
mod membership;
mod tasks;

pub use tasks::{Kept, TaskKey, TaskService, TaskStore};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_flight::flight_service_server::FlightServiceServer;
use rfm_proto::auth::{CallSecret, Token};
use rfm_proto::keepalive::Keepalive;
use rfm_proto::tls::ServerTlsSetup;
use rfm_proto::v1::worker_server::WorkerServer;
use rfm_proto::v1::WorkerPhase;
use rfm_proto::{MAX_CONTROL_MESSAGE_BYTES, MAX_MESSAGE_BYTES};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;

/// Environment variable: milliseconds every task waits before computing, a
/// test knob that makes jobs long enough to kill a worker mid-job. Only a
/// build with the `task-delay` feature has it (the process tests' build:
/// `rfm-coordinator`'s tests enable it); a release build reads nothing.
pub const TASK_DELAY_ENV: &str = "RFM_WORKER_TASK_DELAY_MS";

/// The wait of [`TASK_DELAY_ENV`] in a build with the `task-delay` feature;
/// zero in any other build.
pub fn task_delay_from_env() -> Duration {
    if cfg!(feature = "task-delay") {
        std::env::var(TASK_DELAY_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(Duration::ZERO, Duration::from_millis)
    } else {
        Duration::ZERO
    }
}

/// Everything a worker needs to start.
#[derive(Clone)]
pub struct WorkerConfig {
    /// The coordinator's gRPC URL, e.g. `http://10.0.0.1:50051`.
    pub coordinator: String,
    /// Address to bind the gRPC + Flight server to (port 0: any free port).
    pub listen: SocketAddr,
    /// `HOST:PORT` the coordinator should dial; `None`: the address it sees
    /// the registration come from, with the bound port.
    pub advertise: Option<String>,
    /// Tasks run at once.
    pub slots: usize,
    /// The rayon pool tasks compute on (shared by every slot); `None`: the
    /// process's global pool (an embedded worker shares it with its
    /// coordinator's merges and scoring, so that the cores' idle threads
    /// do not spin against each other's work).
    pub pool: Option<Arc<rayon::ThreadPool>>,
    pub heartbeat_interval: Duration,
    /// How long to keep trying the first registration before giving up.
    pub register_timeout: Duration,
    /// Protocol version announced at registration (tests override it).
    pub protocol_version: u32,
    /// Wait before computing each task: honoured only by a build with the
    /// `task-delay` feature (see [`TASK_DELAY_ENV`]), ignored by any other.
    pub task_delay: Duration,
    /// The coordinator's worker token, sent at registration and with heartbeats.
    pub worker_token: Token,
    /// Started with `--insecure` (told at registration, shown by `rfm workers`).
    pub insecure: bool,
    /// HTTP/2 keepalive of its server and of its connection to the coordinator.
    pub keepalive: Keepalive,
    /// Task inputs must lie under it, when set (`--data-root`).
    pub data_root: Option<Arc<rfm_core::DataRoot>>,
    /// TLS of its port (every caller needs a certificate when it has
    /// `--tls-client-ca`) and of its connection to the coordinator.
    pub tls: ServerTlsSetup,
    /// Set when the coordinator runs in this process (the embedded cluster):
    /// finished states are left there in memory, not served over Flight.
    pub local_states: Option<Arc<rfm_proto::local::LocalStates>>,
}

/// Why a worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot listen on {addr}: {source}; choose another --listen address")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Tls(#[from] rfm_proto::tls::TlsError),
    #[error("invalid --coordinator URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("invalid --advertise {0:?}: expected HOST:PORT")]
    BadAdvertise(String),
    #[error("cannot talk to the coordinator at {url}: {message}")]
    TlsFailed { url: String, message: String },
    #[error("the coordinator at {url} refused the registration: {message}")]
    Refused { url: String, message: String },
    #[error("cannot reach the coordinator at {url} (tried for {seconds:.1} s): {message}; check --coordinator and that rfm-coordinator is running")]
    Unreachable {
        url: String,
        seconds: f64,
        message: String,
    },
}

/// A running worker.
pub struct Worker {
    /// The bound address of the gRPC + Flight server.
    pub local_addr: SocketAddr,
    /// The address the coordinator dials, as it answered at registration.
    pub registered_as: String,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    membership: tokio::task::JoinHandle<()>,
    phase: watch::Sender<WorkerPhase>,
    store: Arc<tasks::TaskStore>,
}

/// How a worker's drain went.
#[derive(Debug)]
pub struct DrainOutcome {
    /// Tasks still computing when the drain timed out.
    pub running: u32,
    /// Finished states the coordinator had not fetched by then.
    pub unfetched: usize,
    pub seconds: f64,
}

/// How often the drain looks at the tasks.
const DRAIN_POLL: Duration = Duration::from_millis(50);
/// Time the heartbeat saying the worker left may take.
const LEAVE_GRACE: Duration = Duration::from_secs(3);
/// Time the server gets to close its connections.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

impl Worker {
    /// Tasks being computed now.
    pub fn running_tasks(&self) -> u32 {
        self.store.running()
    }

    /// Shuts down gracefully: tells the coordinator it is draining (no new
    /// tasks come), lets the running tasks finish and the coordinator fetch
    /// their states within `timeout`, tells it that it left, then stops.
    pub async fn drain(self, timeout: Duration) -> DrainOutcome {
        let started = Instant::now();
        let _ = self.phase.send(WorkerPhase::Draining);
        while self.store.running() > 0 || self.store.holding() > 0 {
            if started.elapsed() >= timeout {
                break;
            }
            tokio::time::sleep(DRAIN_POLL).await;
        }
        let outcome = DrainOutcome {
            running: self.store.running(),
            unfetched: self.store.holding(),
            seconds: started.elapsed().as_secs_f64(),
        };
        let _ = self.phase.send(WorkerPhase::Left);
        let mut membership = self.membership;
        if tokio::time::timeout(LEAVE_GRACE, &mut membership)
            .await
            .is_err()
        {
            membership.abort();
        }
        let _ = self.shutdown.send(true);
        let mut server = self.server;
        if tokio::time::timeout(CLOSE_GRACE, &mut server)
            .await
            .is_err()
        {
            server.abort();
        }
        outcome
    }

    /// Stops serving and heartbeating.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.membership.abort();
        let _ = self.server.await;
    }

    /// Waits until the server stops (it only stops on error or shutdown).
    pub async fn wait(&mut self) -> Result<(), String> {
        match (&mut self.server).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("the worker's server stopped: {e}")),
            Err(e) => Err(format!("the worker's server stopped: {e}")),
        }
    }
}

/// Binds the server, registers with the coordinator and starts heartbeating.
pub async fn start(config: WorkerConfig) -> Result<Worker, WorkerError> {
    let url = rfm_proto::tls::normalise_url(
        &config.coordinator,
        "--coordinator",
        config.tls.dial.is_some(),
    )?;
    let listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|source| WorkerError::Listen {
                addr: config.listen,
                source,
            })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| WorkerError::Listen {
            addr: config.listen,
            source,
        })?;
    let (advertise_host, port) = match &config.advertise {
        Some(a) => {
            let (host, port) = a
                .rsplit_once(':')
                .ok_or_else(|| WorkerError::BadAdvertise(a.clone()))?;
            let port: u16 = port
                .parse()
                .map_err(|_| WorkerError::BadAdvertise(a.clone()))?;
            (host.trim_matches(['[', ']']).to_string(), port)
        }
        None => (String::new(), local_addr.port()),
    };

    let store = Arc::new(tasks::TaskStore::new(config.local_states.clone()));
    let task_service =
        tasks::TaskService::new(store.clone(), config.pool.clone(), local_addr.to_string())
            .with_data_root(config.data_root.clone());
    #[cfg(feature = "task-delay")]
    let task_service = {
        if !config.task_delay.is_zero() {
            tracing::warn!(
                "rfm-worker: test build: every task waits {} ms ({TASK_DELAY_ENV})",
                config.task_delay.as_millis()
            );
        }
        task_service.with_delay(config.task_delay)
    };
    let flight_service = flight::StateFlightService::new(store.clone());
    // The only credential the port takes; renewed at every registration.
    let call_secret = CallSecret::default();
    let (shutdown, mut shutdown_rx) = watch::channel(false);
    // gRPC health (grpc.health.v1), open without the secret: "" is SERVING.
    let (_, health) = tonic_health::server::health_reporter();
    let mut builder = config.keepalive.server(rfm_proto::serve::bounded_server());
    if let Some(tls) = &config.tls.serve {
        // With --tls-client-ca every caller needs a certificate signed by it.
        builder = builder
            .tls_config(tls.tonic(false))
            .map_err(|e| WorkerError::Tls(rfm_proto::tls::TlsError::Usage(e.to_string())))?;
    }
    let server = builder
        .add_service(health)
        .add_service(InterceptedService::new(
            // Tasks and tickets are small: only the states served are large.
            WorkerServer::new(task_service)
                .max_decoding_message_size(MAX_CONTROL_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            call_secret.checker(),
        ))
        .add_service(InterceptedService::new(
            FlightServiceServer::new(flight_service)
                .max_decoding_message_size(MAX_CONTROL_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            call_secret.checker(),
        ))
        .serve_with_incoming_shutdown(rfm_proto::serve::incoming_nodelay(listener), async move {
            let _ = shutdown_rx.wait_for(|stop| *stop).await;
        });
    let server = tokio::spawn(server);

    let (phase, phase_rx) = watch::channel(WorkerPhase::Active);
    let member = membership::Membership {
        url,
        advertise_host,
        port: port as u32,
        slots: config.slots.max(1) as u32,
        protocol_version: config.protocol_version,
        heartbeat_interval: config.heartbeat_interval,
        worker_token: config.worker_token.clone(),
        call_secret,
        insecure: config.insecure,
        store: store.clone(),
        keepalive: config.keepalive,
        tls: config.tls.dial.clone(),
        serves_tls: config.tls.serve.is_some(),
        phase: phase_rx,
    };
    let registered = match member.register_first(config.register_timeout).await {
        Ok(r) => r,
        Err(e) => {
            let _ = shutdown.send(true);
            let _ = server.await;
            return Err(e);
        }
    };
    let registered_as = registered.address.clone();
    let membership = tokio::spawn(member.heartbeat_loop(registered));
    Ok(Worker {
        local_addr,
        registered_as,
        shutdown,
        server,
        membership,
        phase,
        store,
    })
}
