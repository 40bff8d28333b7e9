//! Logs of the servers: `tracing` events on stderr, filtered by `RUST_LOG`
//! (default `info`), as plain lines (`--log-format text`: the UTC time and
//! the message, as people read it) or one JSON object per line (`--log-format json`,
//! with time, level and target, for log collectors). A server that cannot
//! go on says why the same way ([`fatal`]).

use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// The UTC time and the message, one line per event.
    #[default]
    Text,
    /// One JSON object per event: timestamp, level, target, fields.
    Json,
}

/// Installs the global subscriber (once; later calls do nothing).
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_target(false)
            .with_level(false)
            .with_ansi(false)
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// Ends a server after a failure it cannot go on from: logs `error:
/// {message}` as an error event (a plain line with `--log-format text`, a
/// JSON object with `json`) and exits with `code` (see `rfm_core::exit`).
pub fn fatal(code: i32, message: impl std::fmt::Display) -> ! {
    tracing::error!("error: {message}");
    std::process::exit(code)
}
