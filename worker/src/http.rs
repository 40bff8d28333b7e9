//! The worker's HTTP port (`--http-listen`): `/healthz` and `/metrics`
//! (Prometheus text: tasks started, completed and failed, tasks running,
//! bytes and lines computed). With `--tls-cert` it serves HTTPS with the
//! gRPC port's certificate.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use rfm_proto::tls::ServerTls;
use tokio::net::TcpListener;

/// The worker's counters.
pub struct Metrics {
    started: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    lines: AtomicU64,
}

/// The counters of this process.
pub static METRICS: Metrics = Metrics {
    started: AtomicU64::new(0),
    completed: AtomicU64::new(0),
    failed: AtomicU64::new(0),
    bytes: AtomicU64::new(0),
    lines: AtomicU64::new(0),
};

/// Counts one task: started when made, failed when dropped unless
/// [`TaskCount::completed`] was called.
pub struct TaskCount {
    done: bool,
}

impl TaskCount {
    pub fn start() -> TaskCount {
        METRICS.started.fetch_add(1, Relaxed);
        TaskCount { done: false }
    }

    pub fn completed(mut self, bytes: u64, lines: u64) {
        self.done = true;
        METRICS.completed.fetch_add(1, Relaxed);
        METRICS.bytes.fetch_add(bytes, Relaxed);
        METRICS.lines.fetch_add(lines, Relaxed);
    }
}

impl Drop for TaskCount {
    fn drop(&mut self) {
        if !self.done {
            METRICS.failed.fetch_add(1, Relaxed);
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let (started, completed, failed) = (
            self.started.load(Relaxed),
            self.completed.load(Relaxed),
            self.failed.load(Relaxed),
        );
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "rfm_worker_tasks_started_total",
            "counter",
            "Tasks received.",
            started,
        );
        metric(
            "rfm_worker_tasks_completed_total",
            "counter",
            "Tasks computed.",
            completed,
        );
        metric(
            "rfm_worker_tasks_failed_total",
            "counter",
            "Tasks that failed or were cancelled.",
            failed,
        );
        metric(
            "rfm_worker_tasks_running",
            "gauge",
            "Tasks being computed.",
            started.saturating_sub(completed + failed),
        );
        metric(
            "rfm_worker_bytes_processed_total",
            "counter",
            "Input bytes of computed tasks.",
            self.bytes.load(Relaxed),
        );
        metric(
            "rfm_worker_lines_processed_total",
            "counter",
            "Input lines of computed tasks.",
            self.lines.load(Relaxed),
        );
        s
    }
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        METRICS.render(),
    )
}

/// Serves `/healthz` and `/metrics` on `listener`.
pub async fn serve(listener: TcpListener, tls: Option<&ServerTls>) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }));
    match tls {
        Some(tls) => axum::serve(tls.http_listener(listener)?, app).await,
        None => axum::serve(listener, app).await,
    }
}
