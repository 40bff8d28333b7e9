//! Command line of `rfm-coordinator`; its flags are also the `[coordinator]`
//! table of `rfm.toml` and the `RFM_*` variables (see `rfm-settings`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// The rfm coordinator: plans jobs, pushes tasks to workers, merges and scores.
#[derive(Parser, Debug)]
#[command(
    name = "rfm-coordinator",
    version,
    after_help = "Settings also come from [coordinator] in rfm.toml and RFM_* variables (see `rfm config coordinator`).\n\n\
    Examples:\n  rfm-coordinator --listen 0.0.0.0:50051 --http-listen 0.0.0.0:9090\n  \
    rfm-coordinator --database-url postgresql://rfm:secret@db:5432/rfm --token change-me\n  \
    RFM_WORKER_TIMEOUT=5s rfm-coordinator --task-timeout 2m --log-format json\n  \
    rfm-coordinator --watch /data/exports --cron '0 2 * * *' --database-url postgresql://rfm@db/rfm"
)]
pub struct Args {
    /// Address of the gRPC server (beyond loopback it needs credentials and
    /// --data-root, or --insecure).
    #[arg(long, env = "RFM_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// A worker silent for this long is lost and its tasks run elsewhere.
    #[arg(long, env = "RFM_WORKER_TIMEOUT", default_value = "10s", value_parser = rfm_proto::duration::clap_parse)]
    pub worker_timeout: Duration,
    /// A job with no live worker for this long fails.
    #[arg(long, env = "RFM_NO_WORKER_GRACE", default_value = "30s", value_parser = rfm_proto::duration::clap_parse)]
    pub no_worker_grace: Duration,
    /// Attempts per task before the job fails.
    #[arg(long, env = "RFM_MAX_ATTEMPTS", default_value_t = crate::DEFAULT_MAX_ATTEMPTS)]
    pub max_attempts: u32,
    /// An attempt without a result after this long (a task hung on a worker that
    /// still heartbeats) is cancelled and run on another worker; 0 = no limit.
    #[arg(long, default_value = "10m", value_parser = rfm_proto::duration::clap_parse)]
    pub task_timeout: Duration,
    /// When a worker keeps a finished state for its next task to fold in, so
    /// that several tasks cross the network and are merged here as one: auto
    /// (while states wait for this coordinator's merge), always (while tasks
    /// are left: the fewest transfers, for workers far away) or never.
    #[arg(long, value_enum, default_value_t = crate::driver::FoldStates::Auto)]
    pub fold_states: crate::driver::FoldStates,
    /// At a job's tail, whether a worker that still reads is asked to cut its
    /// task short for an idle worker to take the rest (true or false).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub split_tasks: bool,
    /// Finished jobs kept in memory for `rfm job` and their results (the oldest
    /// are dropped first; at least 1).
    #[arg(long, default_value_t = crate::retention::DEFAULT_MAX_FINISHED_JOBS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_finished_jobs: usize,
    /// The memory the results of finished jobs may hold, about (e.g. 2GiB):
    /// past it the oldest are dropped; the newest is always kept, and so is a
    /// result not fetched yet, for 10s.
    #[arg(long, default_value = "512MiB", value_parser = rfm_proto::size::clap_parse_positive)]
    pub max_finished_results_size: u64,
    /// How long a finished job stays in memory for `rfm job` and its result
    /// (at least 10s).
    #[arg(long, default_value = "1h", value_parser = crate::retention::parse_ttl)]
    pub finished_job_ttl: Duration,
    /// How long the memory a job freed is kept for the next job before it is
    /// returned to the system, once no job runs (0: within about a second, as
    /// rfm run returns it).
    #[arg(long, default_value = "30s", value_parser = rfm_proto::duration::clap_parse)]
    pub keep_freed_memory: Duration,
    /// Jobs running at once; a submission beyond is refused (RESOURCE_EXHAUSTED).
    #[arg(long, default_value_t = crate::limits::DEFAULT_MAX_RUNNING_JOBS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_running_jobs: usize,
    /// Workers the registry holds; lost and left ones are purged to make
    /// room, and a registration into a table full of live workers is refused.
    #[arg(long, default_value_t = crate::limits::DEFAULT_MAX_WORKERS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_workers: usize,
    /// The smallest --chunk-size a job may ask for (e.g. 1MiB).
    #[arg(long, default_value = "1MiB", value_parser = rfm_proto::size::clap_parse_positive)]
    pub min_chunk_size: u64,
    /// The most tasks (chunks) one job may have.
    #[arg(long, default_value_t = crate::limits::DEFAULT_MAX_TASKS_PER_JOB,
          value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..))]
    pub max_tasks_per_job: u64,
    /// The largest file a client may upload (`rfm submit --upload`, stored under
    /// --data-root in uploads/), e.g. 2GiB; a larger one is refused before any byte is stored.
    #[arg(long, default_value = "16GiB", value_parser = rfm_proto::size::clap_parse_positive)]
    pub max_upload_size: u64,
    /// Uploads not sent or used again for this long are removed (when the
    /// coordinator starts and when a new upload arrives); 0 keeps them forever.
    #[arg(long, default_value = "7d", value_parser = rfm_proto::duration::clap_parse)]
    pub upload_retention: Duration,
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Record every job's run in this PostgreSQL database and publish its result
    /// (postgresql://USER:PASSWORD@HOST:PORT/DB; also DATABASE_URL).
    #[arg(long, env = "RFM_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// With a database: at start, keep trying to connect for this long while
    /// PostgreSQL cannot be reached or refuses the login (it may start after
    /// the coordinator, as under docker-compose); 0s gives up at once.
    #[arg(long, env = "RFM_DATABASE_WAIT", default_value = "60s", value_parser = rfm_proto::duration::clap_parse)]
    pub database_wait: Duration,
    /// With a database: a run whose lease is not renewed for this long (this
    /// coordinator was killed) is marked abandoned by the next process that starts.
    #[arg(long, default_value = "30s", value_parser = rfm_proto::duration::clap_parse)]
    pub run_lease: Duration,
    /// With a database: how often the leases of running runs are renewed (at most half of --run-lease).
    #[arg(long, default_value = "5s", value_parser = rfm_proto::duration::clap_parse)]
    pub run_heartbeat: Duration,
    /// Address of the HTTP port serving /metrics, /healthz and /readyz (default: none).
    #[arg(long)]
    pub http_listen: Option<SocketAddr>,
    /// Live workers needed before /readyz answers 200.
    #[arg(long, default_value_t = 1)]
    pub min_workers: usize,
    /// On SIGINT/SIGTERM, running jobs get this long to finish (no new jobs are
    /// taken); those still running then fail. A second signal stops at once.
    #[arg(long, default_value = "30s", value_parser = rfm_proto::duration::clap_parse)]
    pub drain_timeout: Duration,
    /// Time between HTTP/2 pings on every gRPC connection (to clients and workers).
    #[arg(long, default_value = "10s", value_parser = rfm_proto::duration::clap_parse_positive)]
    pub keepalive_interval: Duration,
    /// A connection whose ping is not answered within this long is dropped
    /// (a stopped worker's calls then fail and its tasks run elsewhere).
    #[arg(long, default_value = "10s", value_parser = rfm_proto::duration::clap_parse_positive)]
    pub keepalive_timeout: Duration,
    /// Inputs must lie under this directory (symlinks and `..` resolved);
    /// required to listen beyond loopback (unless --insecure).
    #[arg(long, env = "RFM_DATA_ROOT")]
    pub data_root: Option<std::path::PathBuf>,
    /// Keep each input file's partial state in this directory between jobs, so a
    /// job re-reads only new or changed files (default: no cache; see docs/CACHE.md).
    #[arg(long, env = "RFM_CACHE_DIR")]
    pub cache_dir: Option<std::path::PathBuf>,
    /// Bound of the --cache-dir's size, e.g. 2GiB: the least recently used entries go first.
    #[arg(long, default_value = "2GiB", value_parser = rfm_proto::size::clap_parse_positive)]
    pub cache_max_size: u64,
    /// Which remote inputs clients may give: none; public (s3:// with this
    /// process's AWS_* credentials, and http(s):// URLs whose host resolves
    /// to public addresses only: no loopback, private or link-local); all.
    #[arg(long, env = "RFM_REMOTE_INPUTS", default_value = "public")]
    pub remote_inputs: rfm_core::remote::RemoteInputs,
    /// Start on a non-loopback address without credentials or a data root
    /// (said loudly at start, in /readyz and in `rfm workers`).
    #[arg(long)]
    pub insecure: bool,
    /// TLS of the gRPC and HTTP ports and of the connections to the workers.
    #[command(flatten)]
    pub tls: rfm_proto::tls::ServerTlsArgs,
    /// With TLS: the name every worker's certificate must hold (default: the
    /// host the worker is dialled at).
    #[arg(long, env = "RFM_WORKER_TLS_NAME")]
    pub worker_tls_name: Option<String>,
    /// Watch this folder and run on its files (as `rfm submit DIR` would) whenever files are
    /// added or changed, or on --every/--cron; runs are recorded in the run database.
    #[arg(long, value_name = "DIR")]
    pub watch: Option<PathBuf>,
    /// With --watch: time between two scans of the folder (size and modification time of each file).
    #[arg(long, default_value = "2s", value_parser = rfm_proto::duration::clap_parse_positive)]
    pub poll_interval: Duration,
    /// With --watch: a run starts once the folder has not changed for this long.
    #[arg(long, default_value = "5s", value_parser = rfm_proto::duration::clap_parse)]
    pub debounce: Duration,
    /// With --watch: run on this fixed period instead of on each change (skipped when nothing
    /// changed since the last successful run), e.g. 1h.
    #[arg(long, value_parser = rfm_proto::duration::clap_parse_positive, conflicts_with = "cron", requires = "watch")]
    pub every: Option<Duration>,
    /// With --watch: run at the times of this cron expression, 5 fields in UTC: minute hour
    /// day-of-month month day-of-week, e.g. '0 2 * * *' (skipped when nothing changed).
    #[arg(long, requires = "watch")]
    pub cron: Option<rfm_core::cron::Cron>,
    /// With --watch: also write each run's folder (customers.csv, segments.csv, run.json; run.json
    /// alone for a failed or skipped run) under this root, one folder per run id, as `rfm run`
    /// does, for `rfm segments` and the dashboards.
    #[arg(long, value_name = "DIR")]
    pub results_root: Option<PathBuf>,
    /// With --watch: how the watched files are read (the flags of `rfm run`).
    #[command(flatten)]
    pub read: rfm_settings::read::ReadArgs,
    /// Log lines as text (the message) or json (time, level, target, fields); filter with RUST_LOG.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: rfm_settings::LogFormat,
}

/// The coordinator's credentials (see docs/SECURITY.md). Prefer the
/// variables or the files: a value on the command line is visible in `ps`.
#[derive(clap::Args, Debug, Default)]
pub struct AuthArgs {
    /// Client token (identity `client`): submit, watch, fetch and cancel its own jobs.
    #[arg(long, env = "RFM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the client token.
    #[arg(long, env = "RFM_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// More client credentials: one `NAME TOKEN` a line; NAME owns the jobs it submits.
    #[arg(long, env = "RFM_CLIENTS_FILE")]
    pub clients_file: Option<PathBuf>,
    /// Admin token: every client call on every job.
    #[arg(long, env = "RFM_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// File holding the admin token.
    #[arg(long, env = "RFM_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Worker token: registration and heartbeats only.
    #[arg(long, env = "RFM_WORKER_TOKEN", hide_env_values = true)]
    pub worker_token: Option<String>,
    /// File holding the worker token.
    #[arg(long, env = "RFM_WORKER_TOKEN_FILE")]
    pub worker_token_file: Option<PathBuf>,
}
