//! `rfm-coordinator`: serves the rfm job API and drives jobs on the workers
//! that register with it.

/// Partial states allocate and free many small buffers: mimalloc keeps that cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;

use rfm_coordinator::cli::Args;
use rfm_coordinator::CoordinatorConfig;

/// `host:port` of the run database from its description ("host H port P …"),
/// unless it is a Unix socket.
fn database_address(target: &str) -> Option<String> {
    let rest = target.strip_prefix("host ")?;
    let (host, rest) = rest.split_once(" port ")?;
    let port = rest.split_whitespace().next()?;
    (!host.starts_with('/')).then(|| format!("{host}:{port}"))
}

/// Exit code of a bad option value.
const USAGE_EXIT: i32 = 2;
/// Exit code when the coordinator cannot serve.
const CLUSTER_EXIT: i32 = 5;
/// Exit code when the database is unreachable or refuses the login.
const DATABASE_EXIT: i32 = 6;

/// Connects to the run database of `--database-url` (or `DATABASE_URL`), if any.
fn connect_database(
    url: Option<String>,
    lease: rfm_store::Lease,
) -> Result<Option<Arc<rfm_coordinator::publish::Publisher>>, String> {
    let url = url
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .filter(|u| !u.trim().is_empty());
    let Some(url) = url else {
        return Ok(None);
    };
    let publisher = rfm_coordinator::publish::Publisher::connect(&url, lease)
        .map_err(|e| format!("cannot use the run database: {e}"))?;
    tracing::info!("rfm-coordinator: publishing runs to {}", publisher.target);
    Ok(Some(Arc::new(publisher)))
}

async fn serve(
    args: Args,
    publisher: Option<Arc<rfm_coordinator::publish::Publisher>>,
) -> Result<(), String> {
    let database = publisher.as_ref().and_then(|p| database_address(&p.target));
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
        task_timeout: args.task_timeout,
        max_attempts: args.max_attempts,
        log: true,
        token: rfm_proto::auth::Token::new(args.token),
        publisher,
    };
    let mut coordinator = rfm_coordinator::start(config, listener)
        .map_err(|e| format!("cannot start the coordinator: {e}"))?;
    tracing::info!("rfm-coordinator: listening on {}", coordinator.local_addr);
    if let Some(addr) = args.http_listen {
        let http = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            format!("cannot listen on {addr}: {e}; choose another --http-listen address")
        })?;
        tracing::info!(
            "rfm-coordinator: metrics and health on http://{}",
            http.local_addr().map_err(|e| e.to_string())?
        );
        let state = rfm_coordinator::http::HttpState {
            registry: coordinator.registry.clone(),
            min_workers: args.min_workers,
            database,
        };
        tokio::spawn(async move {
            if let Err(e) = rfm_coordinator::http::serve(http, state).await {
                tracing::error!("rfm-coordinator: the HTTP port stopped: {e}");
            }
        });
    }
    tokio::select! {
        r = coordinator.wait() => r,
        _ = tokio::signal::ctrl_c() => {
            coordinator.shutdown().await;
            Ok(())
        }
    }
}

fn main() {
    let (mut args, _) = rfm_settings::parse::<Args>(rfm_settings::Scope::Table("coordinator"));
    rfm_settings::init_logging(args.log_format);
    let lease = rfm_store::Lease::new("rfm-coordinator", args.run_lease, args.run_heartbeat)
        .unwrap_or_else(|e| {
            eprintln!("error: invalid options --run-lease/--run-heartbeat: {e}");
            std::process::exit(USAGE_EXIT);
        });
    let publisher = match connect_database(args.database_url.take(), lease) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(DATABASE_EXIT);
        }
    };
    let outcome = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
        .and_then(|rt| rt.block_on(serve(args, publisher)));
    if let Err(e) = outcome {
        eprintln!("error: {e}");
        std::process::exit(CLUSTER_EXIT);
    }
}
