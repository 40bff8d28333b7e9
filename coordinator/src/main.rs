//! `rfm-coordinator`: serves the rfm job API and drives jobs on the workers
//! that register with it. SIGINT/SIGTERM drain it (see
//! `Coordinator::drain`); a second signal stops it at once. The run
//! database's connection is closed off the async runtime, after it stopped.

/// Partial states allocate and free many small buffers: mimalloc keeps that cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Duration;

use rfm_coordinator::access;
use rfm_coordinator::cli::Args;
use rfm_coordinator::CoordinatorConfig;
use rfm_core::exit;
use rfm_core::DataRoot;
use rfm_proto::auth::Credentials;
use rfm_proto::keepalive::Keepalive;
use rfm_proto::stop::StopSignals;
use rfm_settings::fatal;
use rfm_store::Recorder;

/// `host:port` of the run database from its description ("host H port P …"),
/// unless it is a Unix socket.
fn database_address(target: &str) -> Option<String> {
    let rest = target.strip_prefix("host ")?;
    let (host, rest) = rest.split_once(" port ")?;
    let port = rest.split_whitespace().next()?;
    (!host.starts_with('/')).then(|| format!("{host}:{port}"))
}

/// Time between two attempts to reach the run database at start.
const DATABASE_RETRY: Duration = Duration::from_secs(2);

/// Connects to the run database of `--database-url` (or `DATABASE_URL`), if
/// any, trying again for `wait` while the server cannot be reached (a bad URL
/// or schema fails at once).
fn connect_database(
    url: Option<String>,
    lease: rfm_store::Lease,
    wait: Duration,
) -> Result<Option<Arc<Recorder>>, String> {
    let url = url
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .filter(|u| !u.trim().is_empty());
    let Some(url) = url else {
        return Ok(None);
    };
    let deadline = std::time::Instant::now() + wait;
    let recorder = loop {
        match Recorder::connect(&url, lease.clone(), |w| {
            tracing::warn!("rfm-coordinator: {w}")
        }) {
            Err(e)
                if e.is_transient_connect()
                    && std::time::Instant::now() + DATABASE_RETRY <= deadline =>
            {
                tracing::warn!(
                    "rfm-coordinator: {e}; trying again in {DATABASE_RETRY:?} (for up to --database-wait {wait:?})"
                );
                std::thread::sleep(DATABASE_RETRY);
            }
            other => break other.map_err(|e| format!("cannot use the run database: {e}"))?,
        }
    };
    tracing::info!("rfm-coordinator: publishing runs to {}", recorder.target);
    Ok(Some(Arc::new(recorder)))
}

/// The root of `--data-root`, which must be an existing directory (else exit 2).
fn open_data_root(dir: Option<&std::path::Path>) -> Option<Arc<DataRoot>> {
    let root = DataRoot::new(dir?).unwrap_or_else(|e| fatal(exit::USAGE, e));
    tracing::info!(
        "rfm-coordinator: inputs must lie under the data root {}",
        root.path().display()
    );
    Some(Arc::new(root))
}

/// The TLS of `--tls-*` and `--worker-tls-name` (a usage error names the flag).
fn coordinator_tls(args: &Args) -> Result<rfm_coordinator::CoordinatorTls, String> {
    let setup = args.tls.load().map_err(|e| e.to_string())?;
    if setup.dial.is_some() && setup.serve.is_none() {
        return Err(
            "--tls-ca needs --tls-cert and --tls-key on the coordinator: it dials its \
                    workers over TLS only when it serves TLS itself"
                .into(),
        );
    }
    if args.worker_tls_name.is_some() && setup.serve.is_none() {
        return Err(
            "--worker-tls-name needs --tls-cert and --tls-key (workers are dialled over \
                    TLS only by a coordinator serving TLS)"
                .into(),
        );
    }
    if let Some(serve) = &setup.serve {
        tracing::info!(
            "rfm-coordinator: TLS on every port; workers dialled over TLS{}",
            if serve.checks_client_certificates() {
                ", and their certificates checked against --tls-client-ca"
            } else {
                ""
            }
        );
    }
    Ok(rfm_coordinator::CoordinatorTls {
        serve: setup.serve,
        dial: setup.dial,
        worker_name: args.worker_tls_name.clone(),
    })
}

/// Time the runtime's remaining tasks get to end after the drain.
const RUNTIME_GRACE: Duration = Duration::from_secs(5);
/// Time closing the run database's connection may take.
const CLOSE_DATABASE_GRACE: Duration = Duration::from_secs(5);

async fn serve(
    args: Args,
    watch: Option<rfm_coordinator::watch::Watch>,
    credentials: Credentials,
    publisher: Option<Arc<Recorder>>,
    data_root: Option<Arc<DataRoot>>,
    tls: rfm_coordinator::CoordinatorTls,
) -> Result<(), String> {
    let mut signals =
        StopSignals::new().map_err(|e| format!("cannot catch SIGINT/SIGTERM: {e}"))?;
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
        fold_states: args.fold_states,
        split_tasks: args.split_tasks,
        credentials,
        insecure: args.insecure,
        recorder: publisher,
        keepalive: Keepalive {
            interval: args.keepalive_interval,
            timeout: args.keepalive_timeout,
        },
        retention: rfm_coordinator::retention::Retention {
            max_finished: args.max_finished_jobs,
            max_finished_bytes: args.max_finished_results_size,
            keep_for: args.finished_job_ttl,
        },
        limits: rfm_coordinator::limits::Limits {
            max_running_jobs: args.max_running_jobs,
            max_workers: args.max_workers,
            min_chunk_size: args.min_chunk_size,
            max_tasks_per_job: args.max_tasks_per_job,
            max_upload_size: args.max_upload_size,
            upload_retention: args.upload_retention,
        },
        data_root,
        remote_inputs: args.remote_inputs,
        tls: tls.clone(),
        cache: args
            .cache_dir
            .as_ref()
            .map(|dir| Arc::new(rfm_core::cache::Cache::new(dir, args.cache_max_size))),
        // Its workers are other processes: states come over Flight.
        local_states: None,
        // Its clients are other processes: it opens their inputs.
        local_inputs: None,
    };
    let mut coordinator = rfm_coordinator::start(config, listener)
        .map_err(|e| format!("cannot start the coordinator: {e}"))?;
    tracing::info!("rfm-coordinator: listening on {}", coordinator.local_addr);
    let stop_watching = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = match watch {
        Some(w) => Some(
            rfm_coordinator::watch::spawn(
                w,
                coordinator.submitter(),
                tokio::runtime::Handle::current(),
                stop_watching.clone(),
            )
            .map_err(|e| format!("cannot start watching: {e}"))?,
        ),
        None => None,
    };
    if let Some(addr) = args.http_listen {
        let http = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            format!("cannot listen on {addr}: {e}; choose another --http-listen address")
        })?;
        tracing::info!(
            "rfm-coordinator: metrics and health on {}://{}",
            if tls.serve.is_some() { "https" } else { "http" },
            http.local_addr().map_err(|e| e.to_string())?
        );
        let state = rfm_coordinator::http::HttpState {
            registry: coordinator.registry.clone(),
            jobs: coordinator.jobs(),
            min_workers: args.min_workers,
            database,
            draining: coordinator.draining.clone(),
            insecure: args.insecure,
        };
        let http_tls = tls.serve.clone();
        tokio::spawn(async move {
            if let Err(e) = rfm_coordinator::http::serve(http, state, http_tls.as_ref()).await {
                tracing::error!("rfm-coordinator: the HTTP port stopped: {e}");
            }
        });
    }
    let first = tokio::select! {
        r = coordinator.wait() => return r,
        s = signals.next() => s,
    };
    stop_watching.store(true, std::sync::atomic::Ordering::SeqCst);
    coordinator.stop_taking_jobs();
    tracing::info!(
        "rfm-coordinator: {}: shutting down gracefully (a second signal stops at once)",
        first.name()
    );
    let jobs = coordinator.jobs_running();
    signals.exit_on_next(move |second| {
        tracing::error!(
            "rfm-coordinator: second stop signal ({}) while draining: exiting at once (exit {}); \
             job(s) abandoned while running: {}",
            second.name(),
            second.exit_code(),
            jobs()
        );
    });
    let outcome = coordinator.drain(args.drain_timeout).await;
    if let Some(watcher) = watcher {
        // Its run (if any) has ended with the drain; it stops at its next scan.
        let _ = tokio::task::spawn_blocking(move || watcher.join()).await;
    }
    if outcome.unfinished > 0 {
        tracing::warn!(
            "rfm-coordinator: {} job(s) had not recorded their end when the port closed",
            outcome.unfinished
        );
    }
    tracing::info!(
        "rfm-coordinator: stopped: {} job(s) were running at the signal, {} failed at the drain timeout",
        outcome.running_at_start,
        outcome.stopped.len()
    );
    Ok(())
}

/// Closes the run database's connection on a thread of its own, never on
/// the async runtime (the synchronous client runs a runtime of its own), and
/// waits for it a bounded time.
fn close_database(publisher: Option<Arc<Recorder>>) {
    let Some(publisher) = publisher else {
        return;
    };
    let (done, closed) = std::sync::mpsc::channel();
    let closing = std::thread::Builder::new()
        .name("rfm-close-database".into())
        .spawn(move || {
            drop(publisher);
            let _ = done.send(());
        });
    if closing.is_ok() && closed.recv_timeout(CLOSE_DATABASE_GRACE).is_err() {
        tracing::warn!(
            "rfm-coordinator: the run database's connection did not close within {CLOSE_DATABASE_GRACE:?}"
        );
    }
}

/// What `--watch` asks, checked before the coordinator starts.
fn watch_of(args: &Args) -> Result<Option<rfm_coordinator::watch::Watch>, String> {
    let Some(dir) = &args.watch else {
        return Ok(None);
    };
    if !dir.is_dir() {
        return Err(format!(
            "invalid option --watch (setting watch): {} is not a folder; give the folder whose files to watch",
            dir.display()
        ));
    }
    let schedule = rfm_core::watch::Schedule::of(args.every, args.cron.clone())
        .map_err(|e| format!("invalid options: {e}"))?;
    // Options that do not parse stop the coordinator before any run.
    let run = args.read.run_options(None).map_err(|e| e.to_string())?;
    Ok(Some(rfm_coordinator::watch::Watch {
        options: rfm_core::watch::WatchOptions {
            dir: dir.clone(),
            poll: args.poll_interval,
            debounce: args.debounce,
            schedule,
        },
        run,
        results_root: args.results_root.clone(),
    }))
}

fn main() {
    let (mut args, resolved) =
        rfm_settings::parse::<Args>(rfm_settings::Scope::Table("coordinator"));
    rfm_settings::init_logging(args.log_format);
    // Job after job: the pages one frees serve the next.
    rfm_coordinator::keep_freed_memory_between_jobs(args.keep_freed_memory);
    let tls = coordinator_tls(&args).unwrap_or_else(|e| fatal(exit::USAGE, e));
    let usage = |e: String| -> ! { fatal(exit::USAGE, e) };
    let credentials = access::credentials(&args.auth).unwrap_or_else(|e| usage(e));
    for warning in access::command_line_warnings(&resolved) {
        tracing::warn!("{warning}");
    }
    for warning in access::check_exposure(&args, &credentials, tls.serve.is_some())
        .unwrap_or_else(|e| usage(e))
    {
        tracing::warn!("{warning}");
    }
    let lease = rfm_store::Lease::new("rfm-coordinator", args.run_lease, args.run_heartbeat)
        .unwrap_or_else(|e| {
            fatal(
                exit::USAGE,
                format_args!("invalid options --run-lease/--run-heartbeat: {e}"),
            )
        });
    let data_root = open_data_root(args.data_root.as_deref());
    let publisher = connect_database(args.database_url.take(), lease, args.database_wait)
        .unwrap_or_else(|e| fatal(exit::DATABASE, e));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            close_database(publisher);
            fatal(
                exit::CLUSTER,
                format_args!("cannot start the async runtime: {e}"),
            );
        }
    };
    // This thread keeps a handle on the database until the runtime is gone,
    // so that the last one is never dropped on the runtime.
    let watch = watch_of(&args).unwrap_or_else(|e| usage(e));
    let outcome = runtime.block_on(serve(
        args,
        watch,
        credentials,
        publisher.clone(),
        data_root,
        tls,
    ));
    runtime.shutdown_timeout(RUNTIME_GRACE);
    close_database(publisher);
    if let Err(e) = outcome {
        fatal(exit::CLUSTER, e);
    }
}
