//! Command line of `rfm-dashboard`, kept here rather than in the dashboard's
//! crate so that `rfm config` can list the `[dashboard]` table without
//! linking the terminal interface. Its flags are also the `[dashboard]`
//! table of `rfm.toml` and the `RFM_*` variables.

use std::path::PathBuf;

use clap::Parser;

/// Browse rfm runs in the terminal: segments, the R × F grid, distributions,
/// customers and movement between runs; and watch a live coordinator's jobs
/// and workers.
#[derive(Debug, Parser)]
#[command(
    name = "rfm-dashboard",
    version,
    after_help = "Keys: 1-6 or Tab for views, arrows or hjkl to move, / to search, Enter for detail, ? for help, q to quit. \
    Settings also come from [dashboard] in rfm.toml and RFM_* variables.\n\n\
    Examples:\n  rfm-dashboard\n  rfm-dashboard --results-root rfm-out\n  \
    rfm-dashboard --database-url postgresql://rfm@localhost/rfm\n  \
    rfm-dashboard --results-root rfm-out --coordinator http://localhost:50051\n  \
    rfm-dashboard --coordinator coordinator:50051 --tls-ca certs/ca.pem --token-file certs/client.token"
)]
pub struct Args {
    /// A folder written by `rfm run --out DIR`, or a folder whose subfolders are such runs
    /// (default: ./rfm-out when neither this, a database nor a coordinator is given; old name
    /// --results).
    #[arg(long, value_name = "DIR", alias = "results")]
    pub results_root: Option<PathBuf>,
    /// PostgreSQL store of runs (postgresql://USER:PASSWORD@HOST:PORT/DB; also
    /// DATABASE_URL); --results-root on the command line wins over it.
    #[arg(long, value_name = "URL", conflicts_with = "results_root")]
    pub database_url: Option<String>,
    /// Live coordinator to watch (HOST:PORT, http://HOST:PORT, or https://HOST:PORT
    /// with --tls-ca): its jobs and workers, polled every second, in the Live view.
    #[arg(long, value_name = "URL")]
    pub coordinator: Option<String>,
    /// Client token of the coordinator, if it requires one (with
    /// --coordinator; prefer RFM_TOKEN or --token-file: `ps` shows flag values).
    #[arg(long, hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the client token (with --coordinator).
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    #[command(flatten)]
    pub tls: rfm_proto::tls::ClientTlsArgs,
}
