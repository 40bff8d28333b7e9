//! `rfm-worker`: joins an rfm coordinator and computes tasks until stopped.
//! SIGINT/SIGTERM drain it (see `Worker::drain`); a second signal stops it at once.

/// Partial states allocate and free many small buffers: mimalloc keeps that cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;

use anyhow::Context;
use rfm_core::exit;
use rfm_core::DataRoot;
use rfm_proto::auth::{exposure, load, Token};
use rfm_proto::keepalive::Keepalive;
use rfm_proto::stop::StopSignals;
use rfm_proto::tls::ServerTlsSetup;
use rfm_settings::fatal;
use rfm_worker::cli::Args;
use rfm_worker::WorkerConfig;

/// The root of `--data-root`, which must be an existing directory (else exit 2).
fn open_data_root(dir: Option<&std::path::Path>) -> Option<Arc<DataRoot>> {
    let root = DataRoot::new(dir?).unwrap_or_else(|e| fatal(exit::USAGE, e));
    tracing::info!(
        "rfm-worker: task inputs must lie under the data root {}",
        root.path().display()
    );
    Some(Arc::new(root))
}

/// The worker token of the flags, after the non-loopback rule: a worker
/// listening beyond loopback needs it and a data root, or `--insecure`.
/// Errors are usage errors (exit 2).
fn check_access(
    args: &Args,
    resolved: &rfm_settings::Resolved,
    tls: bool,
) -> Result<Token, String> {
    let token = load::secret(
        "--worker-token",
        args.worker_token.clone(),
        "--worker-token-file",
        args.worker_token_file.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    if resolved
        .get("worker_token")
        .is_some_and(|e| e.source == rfm_settings::Source::Flag && e.value.is_some())
    {
        tracing::warn!(
            "rfm-worker: {}",
            load::command_line_warning("--worker-token", "RFM_WORKER_TOKEN", "--worker-token-file")
        );
    }
    let listen: Vec<_> = std::iter::once(args.listen)
        .chain(args.http_listen)
        .collect();
    let warnings = exposure::check(
        "rfm-worker",
        &listen,
        &[
            ("--worker-token", token.is_some()),
            ("--data-root", args.data_root.is_some()),
        ],
        args.insecure,
        tls,
    )?;
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    Ok(Token::new(token))
}

async fn serve(
    args: Args,
    worker_token: Token,
    data_root: Option<Arc<DataRoot>>,
    tls: ServerTlsSetup,
) -> anyhow::Result<()> {
    let mut signals = StopSignals::new().context("cannot catch SIGINT/SIGTERM")?;
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
    let config = WorkerConfig {
        coordinator: args.coordinator,
        listen: args.listen,
        advertise: args.advertise,
        slots: args.slots.unwrap_or(threads).max(1),
        pool: Some(Arc::new(pool)),
        heartbeat_interval: args.heartbeat_interval,
        register_timeout: args.register_timeout,
        protocol_version: args.protocol_version,
        task_delay: rfm_worker::task_delay_from_env(),
        worker_token,
        insecure: args.insecure,
        keepalive: Keepalive {
            interval: args.keepalive_interval,
            timeout: args.keepalive_timeout,
        },
        data_root,
        tls: tls.clone(),
        // Its coordinator is another process: states go over Flight.
        local_states: None,
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
            "rfm-worker: metrics and health on {}://{}",
            if tls.serve.is_some() { "https" } else { "http" },
            http.local_addr()?
        );
        let http_tls = tls.serve.clone();
        tokio::spawn(async move {
            if let Err(e) = rfm_worker::http::serve(http, http_tls.as_ref()).await {
                tracing::error!("rfm-worker: the HTTP port stopped: {e}");
            }
        });
    }
    let first = tokio::select! {
        r = worker.wait() => return r.map_err(anyhow::Error::msg),
        s = signals.next() => s,
    };
    tracing::info!(
        "rfm-worker: {}: shutting down gracefully: no new tasks; {} running task(s) get up to \
         {:.1} s (--drain-timeout) to finish and be fetched (a second signal stops at once)",
        first.name(),
        worker.running_tasks(),
        args.drain_timeout.as_secs_f64()
    );
    signals.exit_on_next(|second| {
        tracing::error!(
            "rfm-worker: second stop signal ({}) while draining: exiting at once (exit {}); \
             the coordinator runs this worker's tasks elsewhere",
            second.name(),
            second.exit_code()
        );
    });
    let outcome = worker.drain(args.drain_timeout).await;
    if outcome.running > 0 || outcome.unfetched > 0 {
        tracing::warn!(
            "rfm-worker: drain timeout: {} task(s) still running and {} state(s) not fetched; \
             the coordinator runs them elsewhere",
            outcome.running,
            outcome.unfetched
        );
    }
    tracing::info!(
        "rfm-worker: stopped after {:.1} s of drain",
        outcome.seconds
    );
    Ok(())
}

fn main() {
    let (args, resolved) = rfm_settings::parse::<Args>(rfm_settings::Scope::Table("worker"));
    rfm_settings::init_logging(args.log_format);
    let tls = args
        .tls
        .load()
        .and_then(|tls| {
            rfm_proto::tls::normalise_url(&args.coordinator, "--coordinator", tls.dial.is_some())?;
            Ok(tls)
        })
        .unwrap_or_else(|e| fatal(exit::USAGE, e));
    let worker_token = check_access(&args, &resolved, tls.serve.is_some())
        .unwrap_or_else(|e| fatal(exit::USAGE, e));
    let data_root = open_data_root(args.data_root.as_deref());
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| {
        fatal(
            exit::INTERNAL,
            format_args!("cannot start the async runtime: {e}"),
        )
    });
    if let Err(e) = runtime.block_on(serve(args, worker_token, data_root, tls)) {
        fatal(exit::CLUSTER, format_args!("{e:#}"));
    }
}
