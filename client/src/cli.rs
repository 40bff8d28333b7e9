//! Command-line syntax of `rfm` (clap derive): every subcommand and flag.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "rfm",
    version,
    about = "Recency, frequency and monetary segments of a store's customers, from transaction CSVs.",
    after_help = "Exit codes: 0 ok, 1 internal error, 2 usage error, 3 input error, 4 output error, 5 cluster error, 6 database error."
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
    /// Write deterministic synthetic transactions in the UCI Online Retail layout.
    #[command(
        after_help = "Examples:\n  rfm gen --rows 541909 --seed 1 --out /tmp/retail_1x.csv\n  \
        rfm gen --rows 1000 --out -   (to standard output)"
    )]
    Gen(GenArgs),
    /// Compute RFM segments of INPUT on a running cluster; write the result files here.
    #[command(
        after_help = "Examples:\n  rfm submit /data/online_retail.csv --coordinator http://localhost:50051 --out out\n  \
        RFM_COORDINATOR=http://coord:50051 rfm submit /data/exports/ --chunk-size 16MiB"
    )]
    Submit(SubmitArgs),
    /// List the workers registered with a coordinator.
    #[command(after_help = "Examples:\n  rfm workers --coordinator http://localhost:50051")]
    Workers(WorkersArgs),
    /// List the runs recorded in PostgreSQL, newest first (* = latest published).
    #[command(
        after_help = "Examples:\n  rfm runs --database-url postgresql://rfm@localhost/rfm\n  \
        DATABASE_URL=postgresql://rfm@localhost/rfm rfm runs --json"
    )]
    Runs(RunsArgs),
    /// Show customers and revenue moving between segments from RUN_A to RUN_B.
    #[command(
        after_help = "Examples:\n  rfm diff 20111210T101500Z-3fa9 20111217T101500Z-77c1 \\\n    \
        --database-url postgresql://rfm@localhost/rfm"
    )]
    Diff(DiffArgs),
}

/// How to read the input (shared by `run` and `submit`).
#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// A CSV file, a directory (its *.csv files) or a glob.
    pub input: String,
    /// Field delimiter: one character, or `tab`.
    #[arg(long, default_value = ",")]
    pub delimiter: String,
    /// Prices use ',' as the decimal mark (European exports).
    #[arg(long)]
    pub decimal_comma: bool,
    /// strftime format of InvoiceDate, e.g. '%d/%m/%Y %H:%M' (default: auto-detect the spec's forms).
    #[arg(long)]
    pub date_format: Option<String>,
    /// Reference date for recency, YYYY-MM-DD (default: the day after the latest purchase).
    #[arg(long)]
    pub as_of: Option<String>,
    /// Fail when malformed / lines read is greater than this fraction.
    #[arg(long, default_value_t = 0.01)]
    pub max_malformed_share: f64,
    /// Bytes per chunk (task), e.g. 67108864 or 64MiB.
    #[arg(long, default_value = "64MiB")]
    pub chunk_size: String,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Directory for customers.csv, segments.csv and run.json (default: rfm-out/<run id>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Worker threads (default: one per core).
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
}

#[derive(Args, Debug)]
pub struct RunsArgs {
    /// The PostgreSQL database (postgresql://USER:PASSWORD@HOST:PORT/DB).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Print the runs as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// Run id of the earlier run (as listed by `rfm runs`).
    pub run_a: String,
    /// Run id of the later run.
    pub run_b: String,
    /// The PostgreSQL database (postgresql://USER:PASSWORD@HOST:PORT/DB).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Print the movement as JSON.
    #[arg(long)]
    pub json: bool,
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
}

#[derive(Args, Debug)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// The coordinator's gRPC URL, e.g. http://localhost:50051.
    #[arg(long, env = "RFM_COORDINATOR")]
    pub coordinator: String,
    /// Shared token of the cluster, if it requires one.
    #[arg(long, env = "RFM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Directory for customers.csv, segments.csv and run.json (default: rfm-out/<run id>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print only errors (no progress, no summary).
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the run report as JSON instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct WorkersArgs {
    /// The coordinator's gRPC URL, e.g. http://localhost:50051.
    #[arg(long, env = "RFM_COORDINATOR")]
    pub coordinator: String,
    /// Shared token of the cluster, if it requires one.
    #[arg(long, env = "RFM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the workers as JSON.
    #[arg(long)]
    pub json: bool,
}
