//! Command line of `rfm-dashboard`: its flags ([`Args`], defined in
//! `rfm-settings` so that `rfm config` lists them without linking this
//! crate) and the runs source they ask for.

pub use rfm_settings::dashboard::Args;

use crate::source::SourceSpec;

/// Where `rfm run` writes its runs by default, read when no source is given.
pub const DEFAULT_RESULTS_ROOT: &str = "rfm-out";

/// The runs source asked for: `--database-url` (which the settings layers
/// also fill from `rfm.toml`, `RFM_DATABASE_URL` or `DATABASE_URL`) or
/// `--results-root`; with neither, `./rfm-out` (as `rfm run` writes it),
/// unless `--coordinator` is given (then only the Live view is shown).
pub fn source(args: &Args) -> Option<SourceSpec> {
    if let Some(url) = args.database_url.as_ref().filter(|u| !u.trim().is_empty()) {
        return Some(SourceSpec::Database(url.clone()));
    }
    match &args.results_root {
        Some(root) => Some(SourceSpec::Results(root.clone())),
        None if args.coordinator.is_none() => {
            Some(SourceSpec::Results(DEFAULT_RESULTS_ROOT.into()))
        }
        None => None,
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
        source(&Args::from_arg_matches(&matches).unwrap())
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
            spec(&[], &[("RFM_RESULTS_ROOT", "runs")]),
            Some(SourceSpec::Results("runs".into()))
        );
        // The old name of the setting still works.
        assert_eq!(
            spec(&[], &[("RFM_RESULTS", "old")]),
            Some(SourceSpec::Results("old".into()))
        );
        assert_eq!(
            spec(&["--results", "old"], &[]),
            Some(SourceSpec::Results("old".into()))
        );
        let rfm_out = Some(SourceSpec::Results(DEFAULT_RESULTS_ROOT.into()));
        assert_eq!(spec(&[], &[("DATABASE_URL", "")]), rfm_out);
        assert_eq!(spec(&[], &[]), rfm_out);
        assert_eq!(spec(&["--coordinator", "h:1"], &[]), None);
        assert_eq!(
            spec(&["--coordinator", "h:1", "--results", "runs"], &env),
            Some(SourceSpec::Results("runs".into()))
        );
    }
}
