//! Live (`/live`): the jobs and workers of the coordinator named by
//! `--coordinator`, drawn on the server at load and then kept current by
//! server-sent events (`/live/events`, a JSON snapshot every second, our
//! script fills the tables with text only). `/api/live` is one snapshot.

use std::convert::Infallible;
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::html::{count, esc};
use crate::live::INTERVAL;
use crate::server::{frame, page_response, AppState};

/// One snapshot, or `{"error": …}`.
async fn snapshot(s: &AppState) -> Option<Result<Value, String>> {
    let mut live = s.live.as_ref()?.client.lock().await;
    Some(live.poll().await)
}

fn jobs_rows(v: &Value) -> String {
    let mut b = String::new();
    for j in v["jobs"].as_array().into_iter().flatten() {
        let n = |k: &str| j[k].as_u64().unwrap_or(0);
        let _ = write!(
            b,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td class=\"num\">{}/{} ({} running)</td><td class=\"num\">{}/{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(j["job_id"].as_str().unwrap_or("")),
            esc(j["stage"].as_str().unwrap_or("")),
            n("tasks_done"),
            n("tasks_total"),
            n("tasks_running"),
            count(n("bytes_done")),
            count(n("bytes_total")),
            count(n("lines_done")),
            count(j["rows_per_second"].as_f64().unwrap_or(0.0) as u64),
            n("retries"),
            j["seconds"].as_f64().unwrap_or(0.0),
            rfm_proto::size::held(n("result_bytes")),
            esc(j["error"].as_str().unwrap_or("")),
        );
    }
    b
}

fn workers_rows(v: &Value) -> String {
    let mut b = String::new();
    for w in v["workers"].as_array().into_iter().flatten() {
        let _ = write!(
            b,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td class=\"num\">{}/{}</td><td class=\"num\">{:.1} s</td></tr>",
            esc(w["worker_id"].as_str().unwrap_or("")),
            esc(w["address"].as_str().unwrap_or("")),
            esc(w["state"].as_str().unwrap_or("")),
            w["running_tasks"].as_u64().unwrap_or(0),
            w["slots"].as_u64().unwrap_or(0),
            w["seconds_since_heartbeat"].as_f64().unwrap_or(0.0),
        );
    }
    b
}

pub async fn page(State(s): State<AppState>) -> Response {
    let f = frame(&s, "Live", "/live");
    let Some(first) = snapshot(&s).await else {
        return page_response(
            StatusCode::OK,
            &f,
            "<h1>Live</h1><p id=\"live-off\">No coordinator to watch: start rfm-web with --coordinator URL (and --coordinator-token-file, --tls-ca for a secured cluster).</p>",
        );
    };
    let (snap, error) = match first {
        Ok(v) => (v, String::new()),
        Err(e) => (json!({}), e),
    };
    let url = s.live.as_ref().map(|l| l.url.clone()).unwrap_or_default();
    let body = format!(
        "<h1>Live</h1><p>Coordinator <code>{}</code>; updated every second.</p>\
         <p class=\"error\" id=\"live-error\" role=\"status\">{}</p>\
         <section id=\"live\" data-events=\"/live/events\">\
         <h2>Jobs</h2><table class=\"data\" id=\"live-jobs\"><thead><tr><th scope=\"col\">Job</th><th scope=\"col\">Stage</th><th scope=\"col\" class=\"num\">Tasks</th><th scope=\"col\" class=\"num\">Bytes</th><th scope=\"col\" class=\"num\">Lines</th><th scope=\"col\" class=\"num\">Rows/s</th><th scope=\"col\" class=\"num\">Retries</th><th scope=\"col\" class=\"num\">Seconds</th><th scope=\"col\" class=\"num\" title=\"The memory a finished job's result holds in the coordinator\">Result</th><th scope=\"col\">Error</th></tr></thead><tbody>{}</tbody></table>\
         <h2>Workers</h2><table class=\"data\" id=\"live-workers\"><thead><tr><th scope=\"col\">Worker</th><th scope=\"col\">Address</th><th scope=\"col\">State</th><th scope=\"col\" class=\"num\">Tasks/slots</th><th scope=\"col\" class=\"num\">Last heartbeat</th></tr></thead><tbody>{}</tbody></table></section>",
        esc(&url),
        esc(&error),
        jobs_rows(&snap),
        workers_rows(&snap),
    );
    page_response(StatusCode::OK, &f, &body)
}

/// One snapshot as JSON (503 when the coordinator cannot be read, 404
/// without `--coordinator`).
pub async fn api(State(s): State<AppState>) -> Response {
    match snapshot(&s).await {
        None => crate::api::error(
            StatusCode::NOT_FOUND,
            "no coordinator: start rfm-web with --coordinator URL",
        ),
        Some(Ok(v)) => crate::api::reply(StatusCode::OK, &v),
        Some(Err(e)) => crate::api::error(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

/// Server-sent events: a snapshot (or `{"error"}`) every second.
pub async fn events(State(s): State<AppState>) -> Response {
    if s.live.is_none() {
        return crate::api::error(StatusCode::NOT_FOUND, "no coordinator to watch");
    }
    let state = Arc::new(s);
    let stream = futures::stream::unfold((state, true), |(s, first)| async move {
        if !first {
            tokio::time::sleep(INTERVAL).await;
        }
        let v = match snapshot(&s).await {
            Some(Ok(v)) => v,
            Some(Err(e)) => json!({ "error": e }),
            None => json!({ "error": "no coordinator" }),
        };
        let event: Result<Event, Infallible> = Ok(Event::default().data(v.to_string()));
        Some((event, (s, false)))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
