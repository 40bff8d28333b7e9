//! Command line of `rfm-web`: where the runs are read (`--results-root` or
//! `--database-url`), where it listens (loopback by default), and the token
//! and TLS it needs to listen beyond loopback. Kept here, like
//! [`crate::dashboard`], so that `rfm config` lists the `[web]` table of
//! `rfm.toml` without linking the web server. Flags that name their own
//! variable (`RFM_WEB_LISTEN`, `RFM_WEB_TOKEN`, …) are read from it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// Serve the segments of rfm runs in a browser: overview, R × F heatmap,
/// distributions, customers, customer detail, runs and movement, a live
/// coordinator's jobs, and a JSON API under /api.
#[derive(Debug, Parser)]
#[command(
    name = "rfm-web",
    version,
    after_help = "Settings also come from [web] in rfm.toml and the RFM_* variables each flag names.\n\n\
    Examples:\n  rfm-web --results-root rfm-out\n  \
    rfm-web --database-url postgresql://rfm@localhost/rfm\n  \
    rfm-web --listen 0.0.0.0:8501 --database-url URL --token-file web.token --tls-cert cert.pem --tls-key key.pem"
)]
pub struct Args {
    /// Address to listen on; beyond loopback it needs --token (or --insecure).
    #[arg(long, env = "RFM_WEB_LISTEN", default_value = "127.0.0.1:8501")]
    pub listen: SocketAddr,
    /// A folder written by `rfm run --out DIR`, or a folder whose subfolders
    /// are such runs (default: ./rfm-out, as `rfm` and `rfm-dashboard`).
    #[arg(
        long = "results-root",
        alias = "results",
        env = "RFM_RESULTS_ROOT",
        value_name = "DIR"
    )]
    pub results: Option<PathBuf>,
    /// PostgreSQL store of runs (postgresql://USER:PASSWORD@HOST:PORT/DB; also
    /// RFM_DATABASE_URL or DATABASE_URL); read-only access is enough.
    #[arg(long, value_name = "URL", conflicts_with = "results")]
    pub database_url: Option<String>,
    /// How long to keep trying a database that is not up yet (unreachable,
    /// starting, refusing logins) before giving up; a TLS or certificate
    /// mistake fails at once. 0s: try once.
    #[arg(long, default_value = "60s", value_parser = rfm_proto::duration::clap_parse)]
    pub database_wait: std::time::Duration,
    /// Token a browser or API caller must present (a sign-in form sets it as
    /// a cookie; API calls send `Authorization: Bearer TOKEN`). Prefer
    /// RFM_WEB_TOKEN or --token-file: `ps` shows flag values.
    #[arg(long, env = "RFM_WEB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the token.
    #[arg(long, env = "RFM_WEB_TOKEN_FILE", value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Certificate (PEM) to serve HTTPS (with --tls-key).
    #[arg(long, env = "RFM_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "RFM_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// Coordinator whose jobs and workers the Live page shows (HOST:PORT,
    /// http://HOST:PORT, or https://HOST:PORT with --tls-ca).
    #[arg(long, env = "RFM_COORDINATOR", value_name = "URL")]
    pub coordinator: Option<String>,
    /// File holding the coordinator's client token (with --coordinator).
    #[arg(long, env = "RFM_COORDINATOR_TOKEN_FILE", value_name = "PATH")]
    pub coordinator_token_file: Option<PathBuf>,
    /// CA certificate (PEM) that signed the coordinator's certificate.
    #[arg(long, env = "RFM_TLS_CA", value_name = "PATH")]
    pub tls_ca: Option<PathBuf>,
    /// Listen beyond loopback without a token (said loudly at start).
    #[arg(long)]
    pub insecure: bool,
}

impl Args {
    /// The database to read runs from, unless `--results-root` is given
    /// (the settings layer has already looked up RFM_DATABASE_URL and
    /// DATABASE_URL).
    pub fn database_url(&self) -> Option<String> {
        if self.results.is_some() {
            return None;
        }
        self.database_url.clone().filter(|u| !u.trim().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{resolve, Scope, Source};
    use clap::CommandFactory;

    fn argv(args: &[&str]) -> Vec<std::ffi::OsString> {
        std::iter::once("rfm-web")
            .chain(args.iter().copied())
            .map(Into::into)
            .collect()
    }

    #[test]
    fn defaults_and_sources() {
        let a = Args::try_parse_from(["rfm-web", "--results", "out"]).unwrap();
        assert_eq!(a.listen.to_string(), "127.0.0.1:8501");
        assert_eq!(a.database_url(), None);
        assert!(
            Args::try_parse_from(["rfm-web", "--results", "a", "--database-url", "b"]).is_err()
        );
        // The CLI's and the terminal dashboard's name for it; --results stays.
        let a = Args::try_parse_from(["rfm-web", "--results-root", "runs"]).unwrap();
        assert_eq!(a.results.as_deref(), Some(std::path::Path::new("runs")));
    }

    #[test]
    fn the_environment_names_of_the_web_settings() {
        let cmd = crate::augment(Args::command());
        let env = |n: &str| match n {
            "DATABASE_URL" => Some("postgresql://d/x".to_string()),
            "RFM_WEB_LISTEN" => Some("127.0.0.1:9000".to_string()),
            // The coordinator's and the CLI's: not the web's.
            "RFM_LISTEN" | "RFM_TOKEN" => Some("0.0.0.0:1".to_string()),
            _ => None,
        };
        let r = resolve(&cmd, &argv(&[]), Scope::Table("web"), &env).unwrap();
        assert_eq!(
            r.get("listen").unwrap().value.as_deref(),
            Some("127.0.0.1:9000")
        );
        assert_eq!(r.get("token").unwrap().source, Source::Unset);
        assert_eq!(
            r.get("database_url").unwrap().source,
            Source::Env("DATABASE_URL".into())
        );
        let a = Args::try_parse_from(&r.argv).unwrap();
        assert_eq!(a.database_url().as_deref(), Some("postgresql://d/x"));
        let r = resolve(
            &cmd,
            &argv(&["--results-root", "out"]),
            Scope::Table("web"),
            &env,
        )
        .unwrap();
        let a = Args::try_parse_from(&r.argv).unwrap();
        assert_eq!(a.database_url(), None);
    }
}
