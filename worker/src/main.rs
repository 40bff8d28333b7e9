//! `rfm-worker`: joins an rfm coordinator and computes tasks until stopped.

/// Partial states allocate and free many small buffers: mimalloc keeps that cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use rfm_worker::{WorkerConfig, TASK_DELAY_ENV};

/// An rfm worker: computes partial RFM states of input chunks for a coordinator.
#[derive(Parser, Debug)]
#[command(name = "rfm-worker", version)]
struct Args {
    /// The coordinator's gRPC URL, e.g. http://coordinator:50051.
    #[arg(long, env = "RFM_COORDINATOR")]
    coordinator: String,
    /// Address of this worker's gRPC + Flight server (port 0: any free port).
    #[arg(long, env = "RFM_LISTEN", default_value = "0.0.0.0:50052")]
    listen: SocketAddr,
    /// HOST:PORT the coordinator should dial (default: the address it sees, with the bound port).
    #[arg(long, env = "RFM_ADVERTISE")]
    advertise: Option<String>,
    /// Compute threads (default: one per core).
    #[arg(long, env = "RFM_THREADS")]
    threads: Option<usize>,
    /// Tasks run at once (default: --threads).
    #[arg(long, env = "RFM_SLOTS")]
    slots: Option<usize>,
    /// Time between heartbeats, e.g. 2s or 200ms.
    #[arg(long, env = "RFM_HEARTBEAT_INTERVAL", default_value = "2s", value_parser = rfm_proto::duration::clap_parse)]
    heartbeat_interval: Duration,
    /// How long to keep trying to reach the coordinator at start.
    #[arg(long, env = "RFM_REGISTER_TIMEOUT", default_value = "30s", value_parser = rfm_proto::duration::clap_parse)]
    register_timeout: Duration,
    /// Shared token of the cluster (required on this worker's ports, sent to the coordinator).
    #[arg(long, env = "RFM_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Protocol version to announce (for testing version checks).
    #[arg(long, hide = true, default_value_t = rfm_proto::PROTOCOL_VERSION)]
    protocol_version: u32,
    /// Address of the HTTP port serving /metrics and /healthz (default: none).
    #[arg(long)]
    http_listen: Option<SocketAddr>,
    /// Log lines as text (the message) or json (time, level, target, fields); filter with RUST_LOG.
    #[arg(long, value_enum, default_value = "text")]
    log_format: rfm_settings::LogFormat,
}

/// Exit code when the worker cannot join the cluster.
const CLUSTER_EXIT: i32 = 5;

async fn serve(args: Args) -> anyhow::Result<()> {
    let threads = match args.threads {
        Some(0) => anyhow::bail!("invalid option --threads: must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("rfm-task-{i}"))
        .build()
        .context("cannot start the compute threads")?;
    let task_delay = std::env::var(TASK_DELAY_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or_default();
    let config = WorkerConfig {
        coordinator: args.coordinator,
        listen: args.listen,
        advertise: args.advertise,
        slots: args.slots.unwrap_or(threads).max(1),
        pool: Arc::new(pool),
        heartbeat_interval: args.heartbeat_interval,
        register_timeout: args.register_timeout,
        protocol_version: args.protocol_version,
        task_delay,
        log: true,
        token: rfm_proto::auth::Token::new(args.token),
    };
    let http = match args.http_listen {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr}; choose another --http-listen address")
        })?),
        None => None,
    };
    let mut worker = rfm_worker::start(config).await?;
    tracing::info!(
        "rfm-worker: serving tasks and Flight on {}",
        worker.local_addr
    );
    if let Some(http) = http {
        tracing::info!(
            "rfm-worker: metrics and health on http://{}",
            http.local_addr()?
        );
        tokio::spawn(async move {
            if let Err(e) = rfm_worker::http::serve(http).await {
                tracing::error!("rfm-worker: the HTTP port stopped: {e}");
            }
        });
    }
    tokio::select! {
        r = worker.wait() => r.map_err(anyhow::Error::msg),
        _ = tokio::signal::ctrl_c() => {
            worker.shutdown().await;
            Ok(())
        }
    }
}

fn main() {
    let (args, _) = rfm_settings::parse::<Args>(rfm_settings::Scope::Table("worker"));
    rfm_settings::init_logging(args.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(serve(args)) {
        eprintln!("error: {e:#}");
        std::process::exit(CLUSTER_EXIT);
    }
}
