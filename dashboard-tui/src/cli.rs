//! Command line of `rfm-dashboard`.

use std::path::PathBuf;

use clap::Parser;

use crate::source::SourceSpec;

/// Browse rfm runs in the terminal: segments, the R × F grid, distributions,
/// customers and movement between runs; and watch a live coordinator's jobs
/// and workers.
#[derive(Debug, Parser)]
#[command(name = "rfm-dashboard", version)]
pub struct Args {
    /// A folder written by `rfm run --out DIR`, or a folder whose subfolders are such runs.
    #[arg(long, value_name = "DIR")]
    pub results: Option<PathBuf>,
    /// PostgreSQL store of runs (postgresql://USER:PASSWORD@HOST:PORT/DB); without
    /// --results or --coordinator, RFM_DATABASE_URL or DATABASE_URL is used.
    #[arg(long, value_name = "URL", conflicts_with = "results")]
    pub database_url: Option<String>,
    /// Live coordinator to watch (http://HOST:PORT or HOST:PORT): its jobs and
    /// workers, polled every second, in the Live view.
    #[arg(long, value_name = "URL")]
    pub coordinator: Option<String>,
    /// Shared token of the cluster, if it requires one (with --coordinator).
    #[arg(long, env = "RFM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Environment variables naming the database when no option names a source,
/// in order of precedence.
pub const DATABASE_URL_VARS: [&str; 2] = ["RFM_DATABASE_URL", "DATABASE_URL"];

impl Args {
    /// The runs source asked for, from the options or else the environment;
    /// `None` when neither names one, or when `--coordinator` is given alone
    /// (then only the Live view is shown).
    pub fn source(&self) -> Option<SourceSpec> {
        self.source_with_env(|name| std::env::var(name).ok())
    }

    /// [`Args::source`] with the environment given by `var`.
    pub fn source_with_env(&self, var: impl Fn(&str) -> Option<String>) -> Option<SourceSpec> {
        if let Some(url) = &self.database_url {
            return Some(SourceSpec::Database(url.clone()));
        }
        if let Some(dir) = &self.results {
            return Some(SourceSpec::Results(dir.clone()));
        }
        if self.coordinator.is_some() {
            return None;
        }
        DATABASE_URL_VARS
            .iter()
            .filter_map(|name| var(name))
            .find(|url| !url.trim().is_empty())
            .map(SourceSpec::Database)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(args: &[&str], env: &[(&str, &str)]) -> Option<SourceSpec> {
        let args = Args::parse_from(std::iter::once("rfm-dashboard").chain(args.iter().copied()));
        args.source_with_env(|name| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn options_win_over_the_environment() {
        let env = [
            ("DATABASE_URL", "postgresql://d/x"),
            ("RFM_DATABASE_URL", "postgresql://r/x"),
        ];
        assert_eq!(
            spec(&[], &env),
            Some(SourceSpec::Database("postgresql://r/x".into()))
        );
        assert_eq!(
            spec(&[], &env[..1]),
            Some(SourceSpec::Database("postgresql://d/x".into()))
        );
        assert_eq!(
            spec(&["--results", "runs"], &env),
            Some(SourceSpec::Results("runs".into()))
        );
        assert_eq!(
            spec(&["--database-url", "postgresql://o/x"], &env),
            Some(SourceSpec::Database("postgresql://o/x".into()))
        );
        assert_eq!(spec(&[], &[("DATABASE_URL", " ")]), None);
        assert_eq!(spec(&[], &[]), None);
        // The coordinator alone: only the Live view, even with a database in
        // the environment; with a runs source, both.
        assert_eq!(spec(&["--coordinator", "h:1"], &env), None);
        assert_eq!(
            spec(&["--coordinator", "h:1", "--results", "runs"], &env),
            Some(SourceSpec::Results("runs".into()))
        );
    }
}
