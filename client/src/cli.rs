//! Command-line syntax of `rfm` (clap derive): every subcommand and flag.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "rfm",
    version,
    about = "Recency, frequency and monetary segments of a store's customers, from transaction CSVs.",
    after_help = "Exit codes: 0 ok, 1 internal error, 2 usage error, 3 input error, 4 output error, 5 cluster error, 6 database error, 130 interrupted (SIGINT), 143 terminated (SIGTERM)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Compute RFM segments of INPUT in this process and write the result files.
    #[command(after_help = "Examples:\n  rfm run data/sample.csv --out /tmp/rfm\n  \
        rfm run exports/ --out out --as-of 2011-12-10\n  \
        rfm run eu.csv --out out --delimiter ';' --decimal-comma --date-format '%d/%m/%Y %H:%M'")]
    Run(RunArgs),
    /// Watch a folder and run on it (as `rfm run`) whenever files are added or changed, or on a schedule.
    #[command(
        after_help = "Polls DIR every --poll-interval; once a change has been followed by --debounce of \
        quiet, runs on the folder's files as `rfm run DIR` does (one run at a time; a change during a \
        run leads to one more run). With --every or --cron (5 fields, UTC), runs only when due, and \
        records the run skipped when nothing changed since the last successful run. Each run goes to \
        RESULTS_ROOT/RUN_ID (and the database when set). SIGINT/SIGTERM stop watching; a run in \
        progress is recorded failed (interrupted). See docs/WATCH.md.\n\n\
        Examples:\n  rfm watch /data/exports --results-root /data/rfm-out\n  \
        rfm watch /data/exports --cron '0 2 * * *' --database-url postgresql://rfm@localhost/rfm\n  \
        rfm watch /data/exports --every 1h --debounce 30s"
    )]
    Watch(WatchArgs),
    /// Write deterministic synthetic transactions in the UCI Online Retail layout.
    #[command(
        after_help = "Examples:\n  rfm gen --rows 541909 --seed 1 --out /tmp/retail_1x.csv\n  \
        rfm gen --rows 1000 --out -   (to standard output)\n  \
        rfm gen --rows 541909 --out /tmp/retail_1x.parquet   (typed Parquet columns)"
    )]
    Gen(GenArgs),
    /// Compute RFM segments of INPUT on a running cluster; write the result files here.
    #[command(
        after_help = "Examples:\n  rfm submit /data/online_retail.csv --coordinator http://localhost:50051 --out out\n  \
        RFM_COORDINATOR=http://coord:50051 rfm submit /data/exports/ --chunk-size 16MiB\n  \
        rfm submit --upload ~/exports/retail.csv.gz --coordinator https://rfm.example.com:50051"
    )]
    Submit(SubmitArgs),
    /// List, prune or clear the state cache of `rfm run` (each input file's partial state).
    #[command(
        after_help = "Examples:\n  rfm cache ls\n  rfm cache prune --cache-max-size 500MiB\n  \
        rfm cache clear --cache-dir /var/cache/rfm"
    )]
    Cache(CacheCommandArgs),
    /// List the workers registered with a coordinator.
    #[command(after_help = "Examples:\n  rfm workers --coordinator http://localhost:50051")]
    Workers(WorkersArgs),
    /// Ask an rfm-coordinator or rfm-worker whether it serves (gRPC health); exit 0 if it does.
    #[command(
        after_help = "For container healthchecks and scripts: prints SERVING and exits 0, else says why \
        and exits 5. The health service needs no token.\n\n\
        Examples:\n  rfm health http://127.0.0.1:50051\n  rfm health worker-1:50052 --timeout 2s"
    )]
    Health(HealthArgs),
    /// List the runs, newest first (* = the latest published or succeeded one).
    #[command(
        after_help = "Reads PostgreSQL when a database URL is set, else the runs under --results-root \
        (every run folder with a run.json, failed ones included).\n\n\
        Examples:\n  rfm runs\n  rfm runs --database-url postgresql://rfm@localhost/rfm\n  \
        DATABASE_URL=postgresql://rfm@localhost/rfm rfm runs --json"
    )]
    Runs(RunsArgs),
    /// Show customers and revenue moving between segments from RUN_A to RUN_B.
    #[command(
        after_help = "Reads PostgreSQL when a database URL is set, else the runs under --results-root. \
        Revenue is each moving group's monetary in run A and in run B; from PostgreSQL it is the \
        exact sum rounded to cents, from result folders the sum of customers.csv's cents.\n\n\
        Examples:\n  rfm diff\n  rfm diff --changed-only\n  \
        rfm diff 20111210T101500Z-3fa9 20111217T101500Z-77c1\n  \
        rfm diff 20111210T101500Z-3fa9 20111217T101500Z-77c1 --json \\\n    \
        --database-url postgresql://rfm@localhost/rfm"
    )]
    Diff(DiffArgs),
    /// Show the effective settings of every subcommand and server, and where each came from.
    #[command(
        after_help = "Settings come from, lowest first: built-in defaults, rfm.toml (./rfm.toml, \
        $RFM_CONFIG or --config PATH), RFM_* environment variables, flags. \
        The flag --foo-bar of `rfm run` is `foo_bar` in [run] of rfm.toml and RFM_FOO_BAR in the environment.\n\n\
        Examples:\n  rfm config\n  rfm config run --json\n  rfm config coordinator\n  RFM_THREADS=2 rfm --config ci.toml config run\n  \
        rfm run data.csv --threads 3 --print-config   (one subcommand, as JSON, flags included)"
    )]
    Config(ConfigArgs),
    /// Show the segments of a run (the latest by default).
    #[command(
        after_help = "Reads PostgreSQL when a database URL is set, else the runs under --results-root.\n\n\
        Examples:\n  rfm segments\n  rfm segments --run 20111210T101500Z-3fa9 --json\n  \
        rfm segments --database-url postgresql://rfm@localhost/rfm"
    )]
    Segments(SegmentsArgs),
    /// List the customers of a run, filtered and sorted.
    #[command(
        after_help = concat!(
            "--where takes the query language of the dashboard's search (docs/SELECTIONS.md):\n",
            "terms separated by spaces, all of which must match.\n\n",
            "  r=5 f>=4                      scores (r, f, m: 1-5)\n",
            "  recency<=30 frequency>=10     metrics (days, invoices)\n",
            "  monetary>1000                 money, exact to the cent\n",
            "  segment=at-risk country=germany   (=, != only; spaces as - or _)\n",
            "  icel 545                      text: in the id, segment or country, or the RFM score\n",
            "  operators: = : != < <= > >=\n\n",
            "Examples:\n  rfm customers --segment Champions --sort monetary --desc --limit 10\n  ",
            "rfm customers --where 'r=5 f>=4 monetary>1000' --format csv > best.csv\n  ",
            "rfm customers --where 1234 --format json\n  rfm customers --run 20111210T101500Z-3fa9 --sort recency"
        )
    )]
    Customers(CustomersArgs),
    /// Explain one customer's scores: metrics, R/F/M scores, the cut points behind them, the segment rule.
    #[command(
        after_help = "Examples:\n  rfm customer 12347\n  rfm customer 12347 --json\n  \
        rfm customer 12347 --database-url postgresql://rfm@localhost/rfm"
    )]
    Customer(CustomerArgs),
    /// Write a run's customers to a file.
    #[command(
        after_help = "Writes the customers of the run with the columns of customers.csv. \
        In Parquet, monetary is DECIMAL(38, 2), first/last purchase are timestamps (seconds, no time \
        zone), r/f/m are UINT8; pages are Snappy-compressed.\n\n\
        --segment and --where select customers as `rfm customers` does (the query language of \
        the dashboard's search, docs/SELECTIONS.md).\n\n\
        Examples:\n  rfm export --out /tmp/customers.csv\n  \
        rfm export --segment Champions --out champions.csv\n  \
        rfm export --where 'r<=2 f>=4' --out at-risk-regulars.parquet\n  \
        rfm export --out customers.parquet\n  \
        rfm export --run 20111210T101500Z-3fa9 --format parquet --out latest.pq"
    )]
    Export(ExportArgs),
    /// List the jobs a coordinator knows (running, and ended within the last hour).
    #[command(
        after_help = "Examples:\n  rfm jobs --coordinator http://localhost:50051\n  \
        RFM_COORDINATOR=http://coord:50051 rfm jobs --json"
    )]
    Jobs(JobsArgs),
    /// Show one job's status on a coordinator.
    #[command(
        after_help = "Examples:\n  rfm job 20111210T101500Z-3fa9 --coordinator http://localhost:50051\n  \
        rfm job 20111210T101500Z-3fa9 --json"
    )]
    Job(JobArgs),
    /// Cancel a running job: its tasks stop and its workers drop them (a job that has ended: exit 3).
    #[command(
        after_help = "Examples:\n  rfm cancel 20111210T101500Z-3fa9 --coordinator http://localhost:50051"
    )]
    Cancel(JobArgs),
    /// Write a development CA, server and client certificates and tokens for a TLS cluster.
    #[command(
        after_help = "Writes ca.pem, server.pem + server.key (names: --hosts, 127.0.0.1, ::1; for \
        serverAuth and clientAuth), client.pem + client.key, and random client.token, worker.token, \
        admin.token (keys and tokens mode 0600). Existing files are kept unless --force.\n\n\
        Examples:\n  rfm certs --out certs --hosts coordinator,worker,localhost\n  \
        rfm certs --out /etc/rfm/tls --hosts rfm.example.org,10.0.0.5 --days 90 --force"
    )]
    Certs(CertsArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  rfm completions bash > /etc/bash_completion.d/rfm\n  \
        rfm completions zsh > ~/.zfunc/_rfm\n  rfm completions fish > ~/.config/fish/completions/rfm.fish"
    )]
    Completions(CompletionsArgs),
}

/// Which run to read, and from where (shared by the result readers).
#[derive(Args, Debug, Clone)]
pub struct ResultsArgs {
    /// Run id (default: the latest published run, or the latest succeeded one under --results-root).
    #[arg(long = "run")]
    pub run: Option<String>,
    /// Read from this PostgreSQL database (postgresql://USER:PASSWORD@HOST:PORT/DB).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Without a database: the directory holding one directory per run (as `rfm run` writes them).
    #[arg(long, default_value = "rfm-out")]
    pub results_root: PathBuf,
}

#[derive(Args, Debug)]
pub struct SegmentsArgs {
    #[command(flatten)]
    pub from: ResultsArgs,
    /// Print the segments as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct CustomersArgs {
    #[command(flatten)]
    pub from: ResultsArgs,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Sort by this column.
    #[arg(long, value_enum, default_value = "customer-id")]
    pub sort: SortColumn,
    /// Sort in descending order.
    #[arg(long)]
    pub desc: bool,
    /// At most N customers.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Output: an aligned table, CSV (the columns of customers.csv) or JSON.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
    /// Print the customers as JSON (the same as --format json).
    #[arg(long)]
    pub json: bool,
}

/// Which customers (shared by `customers` and `export`).
#[derive(Args, Debug, Clone, Default)]
pub struct SelectArgs {
    /// Only customers of this segment (e.g. Champions, "At Risk").
    #[arg(long)]
    pub segment: Option<String>,
    /// Only customers matching QUERY, e.g. 'r=5 f>=4 monetary>1000' (the dashboard's search language, docs/SELECTIONS.md).
    #[arg(long = "where", visible_alias = "search", value_name = "QUERY")]
    pub query: Option<String>,
}

/// An output format of `rfm customers`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Csv,
    Json,
}

/// A column of `rfm customers --sort`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortColumn {
    CustomerId,
    Recency,
    Frequency,
    Monetary,
    Score,
    Segment,
    Country,
}

#[derive(Args, Debug)]
pub struct CustomerArgs {
    /// The customer id.
    pub id: String,
    #[command(flatten)]
    pub from: ResultsArgs,
    /// Print the explanation as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub from: ResultsArgs,
    #[command(flatten)]
    pub select: SelectArgs,
    /// File format (default: parquet when --out ends in .parquet, else csv).
    #[arg(long, value_enum)]
    pub format: Option<ExportFormat>,
    /// The file to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// A format of `rfm export`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Parquet,
}

/// HTTP/2 keepalive of the connection to the coordinator: a coordinator
/// that stops answering (stopped, frozen, cut off) fails the command.
#[derive(Args, Debug, Clone, Copy)]
pub struct KeepaliveArgs {
    /// Time between HTTP/2 pings to the coordinator.
    #[arg(long, default_value = "10s", value_parser = rfm_proto::duration::clap_parse_positive)]
    pub keepalive_interval: std::time::Duration,
    /// Fail (exit 5) when a ping is not answered within this long.
    #[arg(long, default_value = "10s", value_parser = rfm_proto::duration::clap_parse_positive)]
    pub keepalive_timeout: std::time::Duration,
}

impl KeepaliveArgs {
    pub fn keepalive(&self) -> rfm_proto::keepalive::Keepalive {
        rfm_proto::keepalive::Keepalive {
            interval: self.keepalive_interval,
            timeout: self.keepalive_timeout,
        }
    }
}

/// The coordinator every client command asks unless told otherwise: one on
/// this machine, on its default port.
pub const DEFAULT_COORDINATOR: &str = "http://127.0.0.1:50051";

/// The coordinator to ask (shared by `jobs`, `job`, `cancel`).
#[derive(Args, Debug)]
pub struct CoordinatorArgs {
    /// The coordinator's gRPC URL.
    #[arg(long, default_value = DEFAULT_COORDINATOR)]
    pub coordinator: String,
    #[command(flatten)]
    pub auth: TokenArgs,
    #[command(flatten)]
    pub keepalive: KeepaliveArgs,
    #[command(flatten)]
    pub tls: rfm_proto::tls::ClientTlsArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct JobsArgs {
    #[command(flatten)]
    pub to: CoordinatorArgs,
}

#[derive(Args, Debug)]
pub struct JobArgs {
    /// The job id (the run id `rfm submit` prints).
    pub id: String,
    #[command(flatten)]
    pub to: CoordinatorArgs,
}

#[derive(Args, Debug)]
pub struct CertsArgs {
    /// Directory to write the files into (made if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Host names and IP addresses the server certificate is for, comma-separated
    /// (127.0.0.1 and ::1 are always added).
    #[arg(long, value_delimiter = ',', required = true)]
    pub hosts: Vec<String>,
    /// Days the certificates are valid.
    #[arg(long, default_value_t = 365,
          value_parser = clap::builder::RangedU64ValueParser::<u32>::new().range(1..=36500))]
    pub days: u32,
    /// Replace the files of an earlier run in --out.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// Only this table: a subcommand (run, submit, …) or coordinator, worker, dashboard, web.
    pub command: Option<String>,
    /// Print the settings as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How to read the input (shared by `run` and `submit`).
#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// A CSV file (or .csv.gz, .csv.zst, .parquet, .xlsx, .xls), a directory (its files of those
    /// formats, hidden ones left out) or a glob.
    pub input: String,
    #[command(flatten)]
    pub read: rfm_settings::read::ReadArgs,
    /// Bytes per chunk (task), e.g. 16MiB (default: `rfm run` 64MiB; `rfm submit` the input split
    /// into at least two tasks per worker slot, between the coordinator's minimum and 64MiB).
    #[arg(long)]
    pub chunk_size: Option<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Directory for customers.csv, segments.csv and run.json (default: RESULTS_ROOT/RUN_ID); a
    /// previous run's folder is replaced whole, a folder holding other files is refused.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where runs without --out go, one directory per run; `segments`, `customers`,
    /// `customer` and `export` read the latest run there.
    #[arg(long, default_value = "rfm-out")]
    pub results_root: PathBuf,
    /// Threads the run computes on: parsing, merging and scoring (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print only errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the run report as JSON instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Publish the run to this PostgreSQL database (postgresql://USER:PASSWORD@HOST:PORT/DB).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// With a database: a run whose lease is not renewed for this long (its
    /// process was killed) is marked abandoned by the next rfm that starts.
    #[arg(long, default_value = "30s", value_parser = rfm_proto::duration::clap_parse)]
    pub run_lease: std::time::Duration,
    /// With a database: how often the running run's lease is renewed (at most half of --run-lease).
    #[arg(long, default_value = "5s", value_parser = rfm_proto::duration::clap_parse)]
    pub run_heartbeat: std::time::Duration,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Neither read nor write the state cache: read every file.
    #[arg(long)]
    pub no_cache: bool,
}

/// Where the state cache is (`rfm run`, `rfm cache`).
#[derive(Args, Debug, Clone)]
pub struct CacheArgs {
    /// The state cache: each input file's partial state, kept so a run reads only new or
    /// changed files (default: RESULTS_ROOT/.cache for runs kept there, none with --out; see
    /// docs/CACHE.md).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Bound of the cache's size, e.g. 2GiB: the least recently used entries go first.
    #[arg(long, default_value = "2GiB", value_parser = rfm_proto::size::clap_parse_positive)]
    pub cache_max_size: u64,
}

impl CacheArgs {
    /// The cache, under `results_root` unless --cache-dir says where.
    pub fn cache(&self, results_root: &std::path::Path) -> rfm_core::cache::Cache {
        let dir = self
            .cache_dir
            .clone()
            .unwrap_or_else(|| results_root.join(rfm_core::cache::DEFAULT_DIR_NAME));
        rfm_core::cache::Cache::new(dir, self.cache_max_size)
    }
}

#[derive(Args, Debug)]
pub struct CacheCommandArgs {
    /// ls: list the entries; prune: remove those whose file is gone or changed, then the least
    /// recently used beyond --cache-max-size; clear: remove every entry.
    #[arg(value_enum)]
    pub action: CacheAction,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// The results root whose .cache is meant (without --cache-dir).
    #[arg(long, default_value = "rfm-out")]
    pub results_root: PathBuf,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum CacheAction {
    /// List the entries: input file, its size, the entry's age (since last use) and bytes.
    Ls,
    /// Remove the entries whose file is gone or changed, then the least recently used
    /// ones beyond --cache-max-size.
    Prune,
    /// Remove every entry.
    Clear,
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Where each run goes, one directory per run (as `rfm run` without --out).
    #[arg(long, default_value = "rfm-out")]
    pub results_root: PathBuf,
    /// Threads the run computes on: parsing, merging and scoring (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Publish each run to this PostgreSQL database (postgresql://USER:PASSWORD@HOST:PORT/DB).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// With a database: a run whose lease is not renewed for this long is marked abandoned.
    #[arg(long, default_value = "30s", value_parser = rfm_proto::duration::clap_parse)]
    pub run_lease: std::time::Duration,
    /// With a database: how often the running run's lease is renewed (at most half of --run-lease).
    #[arg(long, default_value = "5s", value_parser = rfm_proto::duration::clap_parse)]
    pub run_heartbeat: std::time::Duration,
    #[command(flatten)]
    pub watch: WatchFlags,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Neither read nor write the state cache: read every file at every run.
    #[arg(long)]
    pub no_cache: bool,
}

/// How a folder is watched (`rfm-coordinator --watch` has the same flags).
#[derive(Args, Debug, Clone)]
pub struct WatchFlags {
    /// Time between two scans of the folder (size and modification time of each file).
    #[arg(long, default_value = "2s", value_parser = rfm_proto::duration::clap_parse_positive)]
    pub poll_interval: std::time::Duration,
    /// A run starts once the folder has not changed for this long (a file being copied is not read half-written).
    #[arg(long, default_value = "5s", value_parser = rfm_proto::duration::clap_parse)]
    pub debounce: std::time::Duration,
    /// Run on this fixed period instead of on each change (skipped when nothing changed), e.g. 1h.
    #[arg(long, value_parser = rfm_proto::duration::clap_parse_positive, conflicts_with = "cron")]
    pub every: Option<std::time::Duration>,
    /// Run at the times of this cron expression, 5 fields in UTC: minute hour day-of-month month
    /// day-of-week, e.g. '0 2 * * *' (skipped when nothing changed).
    #[arg(long)]
    pub cron: Option<rfm_core::cron::Cron>,
}

#[derive(Args, Debug)]
pub struct RunsArgs {
    #[command(flatten)]
    pub from: HistoryArgs,
    /// Print the runs as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Where `runs` and `diff` read the run history.
#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Read from this PostgreSQL database (postgresql://USER:PASSWORD@HOST:PORT/DB).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Without a database: the directory holding one directory per run (as `rfm run` writes them).
    #[arg(long, default_value = "rfm-out")]
    pub results_root: PathBuf,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// Run id of the earlier run (as listed by `rfm runs`; default: the second latest run
    /// with results).
    pub run_a: Option<String>,
    /// Run id of the later run (default: the latest run with results; failed runs have none).
    pub run_b: Option<String>,
    #[command(flatten)]
    pub from: HistoryArgs,
    /// Show only customers whose segment changed (leave out the "X → X" rows).
    #[arg(long)]
    pub changed_only: bool,
    /// Print the movement as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--format`'s value, naming the accepted ones when it is none of them.
fn parse_input_format(text: &str) -> Result<rfm_core::format::InputFormat, String> {
    text.parse()
}

#[derive(Args, Debug)]
pub struct GenArgs {
    /// Number of data lines.
    #[arg(long)]
    pub rows: u64,
    /// Seed: the same rows and seed give the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output file, or - for standard output.
    #[arg(long)]
    pub out: PathBuf,
    /// Output format: csv, csv.gz, csv.zst, parquet or xlsx (a workbook, one sheet per
    /// 1,048,575 rows; to a file only); default: from the --out extension, csv for
    /// standard output.
    #[arg(long, value_parser = parse_input_format)]
    pub format: Option<rfm_core::format::InputFormat>,
    /// Make every invoice a new customer: each line's customer id is its
    /// invoice number without the C (the high-cardinality benchmark).
    #[arg(long)]
    pub customer_per_invoice: bool,
}

#[derive(Args, Debug)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// The coordinator's gRPC URL.
    #[arg(long, default_value = DEFAULT_COORDINATOR)]
    pub coordinator: String,
    #[command(flatten)]
    pub auth: TokenArgs,
    #[command(flatten)]
    pub keepalive: KeepaliveArgs,
    #[command(flatten)]
    pub tls: rfm_proto::tls::ClientTlsArgs,
    /// Directory for customers.csv, segments.csv and run.json (default: RESULTS_ROOT/RUN_ID); a
    /// previous run's folder is replaced whole, a folder holding other files is refused.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where runs without --out go, one directory per run; `segments`, `customers`,
    /// `customer` and `export` read the latest run there.
    #[arg(long, default_value = "rfm-out")]
    pub results_root: PathBuf,
    /// Print only errors (no progress, no summary).
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the run report as JSON instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// The coordinator neither reads nor writes its state cache for this job.
    #[arg(long)]
    pub no_cache: bool,
    /// INPUT is one file of this machine: stream it to the coordinator, which keeps it under its
    /// --data-root (uploads/), and run on that copy (for a cluster that cannot see this disk).
    #[arg(long)]
    pub upload: bool,
    /// Largest customers.csv taken from the coordinator, e.g. 16GiB: it is written to disk as it
    /// comes and kept out of sight until checked whole; a larger one fails the run (exit 4) with
    /// nothing written.
    #[arg(long, default_value = "4GiB", value_parser = rfm_proto::size::clap_parse_positive)]
    pub max_result_size: u64,
}

#[derive(Args, Debug)]
pub struct HealthArgs {
    /// The server's gRPC URL or HOST:PORT (default: the local coordinator).
    #[arg(default_value = DEFAULT_COORDINATOR)]
    pub url: String,
    /// Give up after this long, e.g. 2s or 500ms.
    #[arg(long, default_value = "3s", value_parser = rfm_proto::duration::clap_parse)]
    pub timeout: std::time::Duration,
    #[command(flatten)]
    pub tls: rfm_proto::tls::ClientTlsArgs,
}

#[derive(Args, Debug)]
pub struct WorkersArgs {
    /// The coordinator's gRPC URL.
    #[arg(long, default_value = DEFAULT_COORDINATOR)]
    pub coordinator: String,
    #[command(flatten)]
    pub auth: TokenArgs,
    #[command(flatten)]
    pub keepalive: KeepaliveArgs,
    #[command(flatten)]
    pub tls: rfm_proto::tls::ClientTlsArgs,
    /// Print the workers as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The client credential of a coordinator that requires one.
#[derive(Args, Debug, Default, Clone)]
pub struct TokenArgs {
    /// Client token of the coordinator (prefer RFM_TOKEN or --token-file:
    /// `ps` shows flag values).
    #[arg(long, env = "RFM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the client token.
    #[arg(long, env = "RFM_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

impl TokenArgs {
    /// The token to send (an empty or unreadable file is a usage error).
    pub fn token(&self) -> Result<rfm_proto::auth::Token, crate::exit::UsageError> {
        rfm_proto::auth::load::secret(
            "--token",
            self.token.clone(),
            "--token-file",
            self.token_file.as_deref(),
        )
        .map(rfm_proto::auth::Token::new)
        .map_err(|e| crate::exit::UsageError(e.to_string()))
    }
}
