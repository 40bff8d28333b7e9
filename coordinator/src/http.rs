//! The coordinator's HTTP port (`--http-listen`): `/metrics` (Prometheus
//! text), `/healthz` (the process serves) and `/readyz` (ready for jobs: not
//! shutting down, at least `--min-workers` live workers taking tasks and,
//! when a run database is configured, its server accepting connections;
//! a coordinator started with `--insecure` says so in every answer).
//! With `--tls-cert` it serves HTTPS with the gRPC port's certificate.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use rfm_proto::tls::ServerTls;
use tokio::net::TcpListener;

use crate::metrics::METRICS;
use crate::registry::Registry;
use crate::retention::JobTable;

/// What the HTTP port looks at.
#[derive(Clone)]
pub struct HttpState {
    pub registry: Arc<Registry>,
    /// The jobs kept (finished ones' count and memory are gauges).
    pub jobs: Arc<JobTable>,
    /// Live workers needed before `/readyz` answers 200.
    pub min_workers: usize,
    /// `host:port` of the run database, if the coordinator publishes runs.
    pub database: Option<String>,
    /// Set while the coordinator drains (shuts down).
    pub draining: Arc<AtomicBool>,
    /// Started with `--insecure`: every `/readyz` answer says so.
    pub insecure: bool,
}

const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn metrics(State(s): State<Arc<HttpState>>) -> impl IntoResponse {
    let workers = s.registry.list();
    let lost = workers.iter().filter(|w| w.state == "lost").count();
    let body = METRICS.render(s.registry.alive_count(), lost, s.jobs.finished_kept());
    ([(header::CONTENT_TYPE, PROMETHEUS)], body)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<Arc<HttpState>>) -> (StatusCode, String) {
    let (code, mut body) = readiness(&s).await;
    if s.insecure {
        body.push_str("insecure: started with --insecure (no credential or data root required)\n");
    }
    (code, body)
}

async fn readiness(s: &HttpState) -> (StatusCode, String) {
    if s.draining.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down (finishing the running jobs, taking no new ones)\n".into(),
        );
    }
    let alive = s.registry.accepting_count();
    if alive < s.min_workers {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: {alive} live worker(s) taking tasks, --min-workers is {}\n",
                s.min_workers
            ),
        );
    }
    if let Some(db) = &s.database {
        let reach = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(db.as_str()),
        )
        .await;
        if !matches!(reach, Ok(Ok(_))) {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: the run database at {db} does not accept connections\n"),
            );
        }
    }
    (StatusCode::OK, format!("ready: {alive} live worker(s)\n"))
}

/// Serves the HTTP routes on `listener` until the task is dropped, over
/// TLS when `tls` is given (the coordinator's `--tls-cert`).
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    tls: Option<&ServerTls>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Arc::new(state));
    match tls {
        Some(tls) => axum::serve(tls.http_listener(listener)?, app).await,
        None => axum::serve(listener, app).await,
    }
}
