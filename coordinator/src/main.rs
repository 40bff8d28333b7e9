//! `rfm-coordinator`: serves the rfm job API and drives jobs on the workers
//! that register with it.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use rfm_coordinator::CoordinatorConfig;

/// The rfm coordinator: plans jobs, pushes tasks to workers, merges and scores.
#[derive(Parser, Debug)]
#[command(name = "rfm-coordinator", version)]
struct Args {
    /// Address of the gRPC server.
    #[arg(long, default_value = "0.0.0.0:50051")]
    listen: SocketAddr,
    /// A worker silent for this long is lost and its tasks run elsewhere.
    #[arg(long, default_value = "10s", value_parser = rfm_proto::duration::clap_parse)]
    worker_timeout: Duration,
    /// A job with no live worker for this long fails.
    #[arg(long, default_value = "30s", value_parser = rfm_proto::duration::clap_parse)]
    no_worker_grace: Duration,
    /// Attempts per task before the job fails.
    #[arg(long, default_value_t = rfm_coordinator::DEFAULT_MAX_ATTEMPTS)]
    max_attempts: u32,
    /// Shared token of the cluster (required from clients and workers, sent to workers).
    #[arg(long, env = "RFM_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// Exit code when the coordinator cannot serve.
const CLUSTER_EXIT: i32 = 5;

async fn serve(args: Args) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {}: {e}; choose another --listen address",
                args.listen
            )
        })?;
    let config = CoordinatorConfig {
        worker_timeout: args.worker_timeout,
        no_worker_grace: args.no_worker_grace,
        max_attempts: args.max_attempts,
        log: true,
        token: rfm_proto::auth::Token::new(args.token),
    };
    let mut coordinator = rfm_coordinator::start(config, listener)
        .map_err(|e| format!("cannot start the coordinator: {e}"))?;
    eprintln!("rfm-coordinator: listening on {}", coordinator.local_addr);
    tokio::select! {
        r = coordinator.wait() => r,
        _ = tokio::signal::ctrl_c() => {
            coordinator.shutdown().await;
            Ok(())
        }
    }
}

fn main() {
    let args = Args::parse();
    let outcome = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
        .and_then(|rt| rt.block_on(serve(args)));
    if let Err(e) = outcome {
        eprintln!("error: {e}");
        std::process::exit(CLUSTER_EXIT);
    }
}
