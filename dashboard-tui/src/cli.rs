//! Command line of `rfm-dashboard`.

use std::path::PathBuf;

use clap::Parser;

use crate::source::SourceSpec;

/// Browse rfm runs in the terminal: segments, the R × F grid, distributions,
/// customers and movement between runs.
#[derive(Debug, Parser)]
#[command(name = "rfm-dashboard", version)]
pub struct Args {
    /// A folder written by `rfm run --out DIR`, or a folder whose subfolders are such runs.
    #[arg(long, value_name = "DIR")]
    pub results: Option<PathBuf>,
    /// PostgreSQL store of runs (not available in this build yet).
    #[arg(long, value_name = "URL", conflicts_with = "results")]
    pub database_url: Option<String>,
    /// Live coordinator (not available in this build yet).
    #[arg(long, value_name = "URL", conflicts_with_all = ["results", "database_url"])]
    pub coordinator: Option<String>,
}

impl Args {
    /// The source asked for; `None` when no option names one.
    pub fn source(&self) -> Option<SourceSpec> {
        if let Some(url) = &self.database_url {
            return Some(SourceSpec::Database(url.clone()));
        }
        if let Some(url) = &self.coordinator {
            return Some(SourceSpec::Coordinator(url.clone()));
        }
        self.results.clone().map(SourceSpec::Results)
    }
}
