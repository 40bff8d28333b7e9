//! Command line of `rfm-worker`; its flags are also the `[worker]` table of
//! `rfm.toml` and the `RFM_*` variables (see `rfm-settings`).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

/// An rfm worker: computes partial RFM states of input chunks for a coordinator.
#[derive(Parser, Debug)]
#[command(
    name = "rfm-worker",
    version,
    after_help = "Settings also come from [worker] in rfm.toml and RFM_* variables (see `rfm config worker`).\n\n\
    Examples:\n  rfm-worker --coordinator http://coordinator:50051\n  \
    RFM_WORKER_TOKEN_FILE=worker.token rfm-worker --coordinator http://10.0.0.1:50051 --listen 0.0.0.0:50052 --data-root /data --advertise 10.0.0.7:50052 --threads 8\n  \
    rfm-worker --coordinator http://127.0.0.1:50051 --listen 127.0.0.1:0 --http-listen 127.0.0.1:9091"
)]
pub struct Args {
    /// The coordinator's gRPC URL, e.g. http://coordinator:50051.
    #[arg(long, env = "RFM_COORDINATOR")]
    pub coordinator: String,
    /// Address of this worker's gRPC + Flight server (port 0: any free port;
    /// beyond loopback it needs --worker-token and --data-root, or --insecure).
    #[arg(long, env = "RFM_LISTEN", default_value = "127.0.0.1:50052")]
    pub listen: SocketAddr,
    /// HOST:PORT the coordinator should dial (default: the address it sees, with the bound port).
    #[arg(long, env = "RFM_ADVERTISE")]
    pub advertise: Option<String>,
    /// Compute threads (default: one per core).
    #[arg(long, env = "RFM_THREADS")]
    pub threads: Option<usize>,
    /// Tasks run at once (default: --threads).
    #[arg(long, env = "RFM_SLOTS")]
    pub slots: Option<usize>,
    /// Time between heartbeats, e.g. 2s or 200ms.
    #[arg(long, env = "RFM_HEARTBEAT_INTERVAL", default_value = "2s", value_parser = rfm_proto::duration::clap_parse)]
    pub heartbeat_interval: Duration,
    /// How long to keep trying to reach the coordinator at start.
    #[arg(long, env = "RFM_REGISTER_TIMEOUT", default_value = "30s", value_parser = rfm_proto::duration::clap_parse)]
    pub register_timeout: Duration,
    /// The coordinator's worker token, sent when registering and
    /// heartbeating (prefer RFM_WORKER_TOKEN or --worker-token-file: `ps`
    /// shows flag values). This worker's own port takes only the random call
    /// secret it gives the coordinator at registration.
    #[arg(long, env = "RFM_WORKER_TOKEN", hide_env_values = true)]
    pub worker_token: Option<String>,
    /// File holding the worker token.
    #[arg(long, env = "RFM_WORKER_TOKEN_FILE")]
    pub worker_token_file: Option<std::path::PathBuf>,
    /// Protocol version to announce (for testing version checks).
    #[arg(long, hide = true, default_value_t = rfm_proto::PROTOCOL_VERSION)]
    pub protocol_version: u32,
    /// Address of the HTTP port serving /metrics and /healthz (default: none).
    #[arg(long)]
    pub http_listen: Option<SocketAddr>,
    /// On SIGINT/SIGTERM, the running tasks get this long to finish and be
    /// fetched by the coordinator (no new tasks come); a second signal stops at once.
    #[arg(long, default_value = "30s", value_parser = rfm_proto::duration::clap_parse)]
    pub drain_timeout: Duration,
    /// Time between HTTP/2 pings on every gRPC connection (to the coordinator and from it).
    #[arg(long, default_value = "10s", value_parser = rfm_proto::duration::clap_parse_positive)]
    pub keepalive_interval: Duration,
    /// A connection whose ping is not answered within this long is dropped.
    #[arg(long, default_value = "10s", value_parser = rfm_proto::duration::clap_parse_positive)]
    pub keepalive_timeout: Duration,
    /// Inputs must lie under this directory (symlinks and `..` resolved);
    /// required to listen beyond loopback (unless --insecure).
    #[arg(long, env = "RFM_DATA_ROOT")]
    pub data_root: Option<std::path::PathBuf>,
    /// Start on a non-loopback address without credentials or a data root
    /// (said loudly at start, in /readyz and in `rfm workers`).
    #[arg(long)]
    pub insecure: bool,
    /// TLS of the gRPC + Flight and HTTP ports and of the connection to the coordinator.
    #[command(flatten)]
    pub tls: rfm_proto::tls::ServerTlsArgs,
    /// Log lines as text (the message) or json (time, level, target, fields); filter with RUST_LOG.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: rfm_settings::LogFormat,
}
