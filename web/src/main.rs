//! `rfm-web`: parses the command line, opens the runs source, applies the
//! listening rule (loopback without a token; beyond it a token, or
//! `--insecure` said loudly), and serves HTTP, or HTTPS with `--tls-cert`.

use std::process::ExitCode;
use std::sync::Arc;

use rfm_core::exit;
use rfm_proto::auth::{exposure, load, Token};
use rfm_proto::tls::{ClientTls, ServerTls};
use rfm_runs::{DatabaseSource, FolderSource, RunSource};
use rfm_web::cli::Args;
use rfm_web::data::Data;
use rfm_web::live::{Live, Watched};
use rfm_web::server::{router, AppState};

/// Where runs are read when neither --results-root nor a database is given
/// (the CLI's and the terminal dashboard's default).
const DEFAULT_RESULTS_ROOT: &str = "rfm-out";

fn fail(code: i32, message: &str) -> ExitCode {
    eprintln!("rfm-web: {message}");
    exit::code(code)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let (args, _) = rfm_settings::parse::<Args>(rfm_settings::Scope::Table("web"));
    let token = match load::secret(
        "--token",
        args.token.clone(),
        "--token-file",
        args.token_file.as_deref(),
    ) {
        Ok(t) => t,
        Err(e) => return fail(exit::USAGE, &e.to_string()),
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => match ServerTls::load(c, k, None) {
            Ok(t) => Some(t),
            Err(e) => return fail(exit::USAGE, &e.to_string()),
        },
        (None, None) => None,
        _ => return fail(exit::USAGE, "--tls-cert and --tls-key go together"),
    };
    let warnings = match exposure::check(
        "rfm-web",
        &[args.listen],
        &[("--token", token.is_some())],
        args.insecure,
        tls.is_some(),
    ) {
        Ok(w) => w,
        Err(e) => return fail(exit::USAGE, &e),
    };
    for w in warnings {
        tracing::warn!("{w}");
    }
    let source: Box<dyn RunSource + Sync> =
        match (args.database_url(), &args.results) {
            (Some(url), _) => match connect_waiting(&url, args.database_wait) {
                Ok(s) => Box::new(s),
                Err(e) => return fail(exit::DATABASE, &e.to_string()),
            },
            (None, Some(dir)) => match FolderSource::open(dir) {
                Ok(s) => Box::new(s),
                Err(e) => return fail(exit::INPUT, &e.to_string()),
            },
            (None, None) if std::path::Path::new(DEFAULT_RESULTS_ROOT).is_dir() => {
                match FolderSource::open(std::path::Path::new(DEFAULT_RESULTS_ROOT)) {
                    Ok(s) => Box::new(s),
                    Err(e) => return fail(exit::INPUT, &e.to_string()),
                }
            }
            (None, None) => {
                return fail(
                    exit::USAGE,
                    "no runs to show: ./rfm-out (the default) does not exist; pass --results-root DIR (a folder written by `rfm run --out DIR`, or a folder of such folders) or --database-url URL (or set RFM_DATABASE_URL / DATABASE_URL)",
                )
            }
        };
    let live = match &args.coordinator {
        None => None,
        Some(url) => {
            let token = match load::secret(
                "--coordinator-token-file",
                None,
                "--coordinator-token-file",
                args.coordinator_token_file.as_deref(),
            ) {
                Ok(t) => t,
                Err(e) => return fail(exit::USAGE, &e.to_string()),
            };
            let ca = match &args.tls_ca {
                Some(ca) => match ClientTls::load("--tls-ca", ca, None, None) {
                    Ok(t) => Some(t),
                    Err(e) => return fail(exit::USAGE, &e.to_string()),
                },
                None => None,
            };
            match Live::new(url, token, ca) {
                Ok(l) => Some(Arc::new(Watched::new(l))),
                Err(e) => return fail(exit::USAGE, &e),
            }
        }
    };
    let state = AppState {
        data: Arc::new(Data::new(source)),
        token: token.map(|t| Token::new(Some(t))),
        tls: tls.is_some(),
        live,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(exit::INTERNAL, &format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                return fail(
                    exit::USAGE,
                    &format!("cannot listen on {}: {e}", args.listen),
                )
            }
        };
        let addr = listener.local_addr().unwrap_or(args.listen);
        let scheme = if tls.is_some() { "https" } else { "http" };
        // Tests and scripts read this line to find the port (--listen :0).
        println!(
            "rfm-web: serving {scheme}://{addr}/ ({})",
            state.data.describe()
        );
        let app = router(state);
        let served = match &tls {
            Some(t) => match t.http_listener(listener) {
                Ok(l) => axum::serve(l, app).with_graceful_shutdown(shutdown()).await,
                Err(e) => Err(e),
            },
            None => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown())
                    .await
            }
        };
        match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(exit::INTERNAL, &format!("the server stopped: {e}")),
        }
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}

/// Connects the run database, trying again every 2 s for up to `wait` while
/// the failure may pass (the server not up yet: a compose start), as the
/// coordinator's `--database-wait` does.
fn connect_waiting(url: &str, wait: std::time::Duration) -> rfm_runs::Result<DatabaseSource> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match DatabaseSource::connect(url) {
            Err(rfm_runs::Error::Database(e))
                if e.is_transient_connect() && std::time::Instant::now() < deadline =>
            {
                tracing::warn!("{e}; trying again in 2s (for up to --database-wait {wait:?})");
                std::thread::sleep(std::time::Duration::from_secs(2));
            }
            other => return other,
        }
    }
}
