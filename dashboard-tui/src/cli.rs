//! Command line of `rfm-dashboard`; its flags are also the `[dashboard]` table
//! of `rfm.toml` and the `RFM_*` variables (see `rfm-settings`).

use std::path::PathBuf;

use clap::Parser;

use crate::source::SourceSpec;

/// Browse rfm runs in the terminal: segments, the R × F grid, distributions,
/// customers and movement between runs; and watch a live coordinator's jobs
/// and workers.
#[derive(Debug, Parser)]
#[command(
    name = "rfm-dashboard",
    version,
    after_help = "Keys: 1-6 or Tab for views, arrows or hjkl to move, / to search, Enter for detail, ? for help, q to quit. \
    Settings also come from [dashboard] in rfm.toml and RFM_* variables.\n\n\
    Examples:\n  rfm-dashboard --results rfm-out\n  \
    rfm-dashboard --database-url postgresql://rfm@localhost/rfm\n  \
    rfm-dashboard --results rfm-out --coordinator http://localhost:50051\n  \
    rfm-dashboard --coordinator coordinator:50051 --tls-ca certs/ca.pem --token-file certs/client.token"
)]
pub struct Args {
    /// A folder written by `rfm run --out DIR`, or a folder whose subfolders are such runs.
    #[arg(long, value_name = "DIR")]
    pub results: Option<PathBuf>,
    /// PostgreSQL store of runs (postgresql://USER:PASSWORD@HOST:PORT/DB; also
    /// DATABASE_URL); --results on the command line wins over it.
    #[arg(long, value_name = "URL", conflicts_with = "results")]
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

impl Args {
    /// The runs source asked for: `--database-url` (which the settings layers
    /// also fill from `rfm.toml`, `RFM_DATABASE_URL` or `DATABASE_URL`) or
    /// `--results`; `None` when neither is set (with `--coordinator` alone,
    /// only the Live view is shown).
    pub fn source(&self) -> Option<SourceSpec> {
        if let Some(url) = self.database_url.as_ref().filter(|u| !u.trim().is_empty()) {
            return Some(SourceSpec::Database(url.clone()));
        }
        self.results.clone().map(SourceSpec::Results)
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use clap::{CommandFactory, FromArgMatches};
    use rfm_settings::Scope;

    use super::*;

    /// The source of a command line and environment, through the same
    /// settings layers as `main`.
    fn spec(args: &[&str], env: &[(&str, &str)]) -> Option<SourceSpec> {
        let cmd = rfm_settings::augment(Args::command());
        let argv: Vec<OsString> = std::iter::once("rfm-dashboard")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        let var = |name: &str| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        let resolved = rfm_settings::resolve(&cmd, &argv, Scope::Table("dashboard"), &var).unwrap();
        let matches = cmd.try_get_matches_from(resolved.argv).unwrap();
        Args::from_arg_matches(&matches).unwrap().source()
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
        // --results on the command line silences the database of the environment.
        assert_eq!(
            spec(&["--results", "runs"], &env),
            Some(SourceSpec::Results("runs".into()))
        );
        assert_eq!(
            spec(&["--database-url", "postgresql://o/x"], &env),
            Some(SourceSpec::Database("postgresql://o/x".into()))
        );
        assert_eq!(
            spec(&[], &[("RFM_RESULTS", "rfm-out")]),
            Some(SourceSpec::Results("rfm-out".into()))
        );
        assert_eq!(spec(&[], &[("DATABASE_URL", "")]), None);
        assert_eq!(spec(&[], &[]), None);
        assert_eq!(spec(&["--coordinator", "h:1"], &[]), None);
        assert_eq!(
            spec(&["--coordinator", "h:1", "--results", "runs"], &env),
            Some(SourceSpec::Results("runs".into()))
        );
    }
}
