//! The JSON API: `/api/runs`, `/api/segments`, `/api/customers` (paged,
//! sorted, filtered like the Customers page), `/api/customers/{id}` and
//! `/api/movement` (`from`, `to`; by default the run before the latest, and
//! the latest). `?run=ID` picks a run, the latest by default. Errors are
//! `{"error": "…"}` with 400 (a bad parameter), 404 (an unknown run or
//! customer) or 503 (the source cannot be read). Figures are as published:
//! amounts as 2-decimal text, shares as 6-decimal fraction text.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use rfm_runs::{Customer, RunEntry};
use serde_json::{json, Value};

use crate::data::{self, blocking, DataError};
use crate::params::Params;
use crate::select::{self, BadParam, Selection};
use crate::server::{AppState, PageError};

/// A JSON answer.
pub fn reply(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: &str) -> Response {
    reply(status, &json!({ "error": message }))
}

fn failed(e: PageError) -> Response {
    match e {
        PageError::Bad(BadParam(m)) => error(StatusCode::BAD_REQUEST, &m),
        PageError::Data(DataError::NotFound(m)) => error(StatusCode::NOT_FOUND, &m),
        PageError::Data(DataError::Unavailable(m)) => error(StatusCode::SERVICE_UNAVAILABLE, &m),
    }
}

fn answer(result: Result<Value, PageError>) -> Response {
    match result {
        Ok(v) => reply(StatusCode::OK, &v),
        Err(e) => failed(e),
    }
}

/// A run as listed.
pub fn entry_json(e: &RunEntry) -> Value {
    json!({
        "run_id": e.run_id(),
        "label": e.label,
        "status": e.status.to_string(),
        "started_at": e.started_at(),
        "finished_at": e.finished_at(),
        "latest": e.latest,
        "customers": e.report.customers,
        "revenue": e.report.revenue,
        "as_of": e.report.as_of,
    })
}

pub async fn runs(State(s): State<AppState>) -> Response {
    let r = blocking(&s.data, |d| {
        let listing = d.list()?;
        Ok(json!({
            "source": d.describe(),
            "runs": listing.runs.iter().map(entry_json).collect::<Vec<_>>(),
            "skipped": listing.skipped,
        }))
    })
    .await;
    answer(r.map_err(PageError::from))
}

pub async fn segments(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let run = p.run().map(str::to_string);
    let r = blocking(&s.data, move |d| {
        let l = d.run(run.as_deref())?;
        Ok(json!({
            "run_id": l.run_id(),
            "as_of": l.run.entry.report.as_of,
            "customers": l.run.customers.len(),
            "revenue": l.revenue.to_fixed(2),
            "segments": l.run.segments,
        }))
    })
    .await;
    answer(r.map_err(PageError::from))
}

pub async fn customers(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let sel = match Selection::parse(&p) {
        Ok(sel) => sel,
        Err(e) => return failed(e.into()),
    };
    let run = p.run().map(str::to_string);
    let r = blocking(&s.data, move |d| {
        let l = d.run(run.as_deref())?;
        let ids = sel.q.as_deref().map(|q| l.matching(q));
        let page = select::page(&l.run.customers, l.order(sel.sort.0), ids.as_deref(), &sel);
        Ok(json!({
            "run_id": l.run_id(),
            "total": page.total,
            "page": sel.page,
            "size": sel.size,
            "pages": page.pages(sel.size),
            "sort": sel.sort_param(),
            "customers": page.rows,
        }))
    })
    .await;
    answer(r.map_err(PageError::from))
}

/// One customer's JSON with its scores' cut points and segment rule.
pub fn customer_json(c: &Customer) -> Value {
    json!({
        "customer": c,
        "segment_rule": c.segment.rule(),
    })
}

pub async fn customer(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let p = Params::parse(q.as_deref());
    let run = p.run().map(str::to_string);
    let r = blocking(&s.data, move |d| {
        let l = d.run(run.as_deref())?;
        let i = data::index_of(&l, &id).ok_or_else(|| {
            DataError::NotFound(format!("no customer {id:?} in run {}", l.run_id()))
        })?;
        let c = &l.run.customers[i];
        let mut v = customer_json(c);
        v["run_id"] = json!(l.run_id());
        v["cut_points"] = json!(l.run.cut_points);
        Ok(v)
    })
    .await;
    answer(r.map_err(PageError::from))
}

/// The two runs a movement compares: `from` and `to` as given, else the
/// latest run (`to`) and the run with results before it (`from`).
pub fn movement_pair(d: &data::Data, p: &Params) -> Result<(String, String), DataError> {
    let listing = d.list()?;
    let with_results: Vec<&RunEntry> = listing
        .runs
        .iter()
        .filter(|e| e.status.has_results())
        .collect();
    let to = match p.get("to") {
        Some(t) => t.to_string(),
        None => with_results
            .iter()
            .find(|e| e.latest)
            .map(|e| e.run_id().to_string())
            .ok_or_else(|| DataError::NotFound("no run with results yet".into()))?,
    };
    let from = match p.get("from") {
        Some(f) => f.to_string(),
        None => with_results
            .iter()
            .skip_while(|e| e.run_id() != to && e.label != to)
            .nth(1)
            .map(|e| e.run_id().to_string())
            .ok_or_else(|| {
                DataError::NotFound(format!(
                    "no run with results before {to}: a movement needs two runs"
                ))
            })?,
    };
    Ok((from, to))
}

pub async fn movement(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let r = blocking(&s.data, move |d| {
        let (from, to) = movement_pair(d, &p)?;
        let a = d.run(Some(&from))?;
        let b = d.run(Some(&to))?;
        let moves = rfm_runs::movement(&a.run.customers, &b.run.customers)
            .map_err(|e| DataError::Unavailable(e.to_string()))?;
        Ok(json!({ "from": a.run_id(), "to": b.run_id(), "moves": moves }))
    })
    .await;
    answer(r.map_err(PageError::from))
}
