//! The HTML pages, one module each; every page has a stable URL (`?run=ID`
//! names the run, the latest by default) so a link can be shared.

pub mod customer;
pub mod customers;
pub mod distributions;
pub mod heatmap;
pub mod live;
pub mod overview;
pub mod runs;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use rfm_core::Segment;

use crate::data::{blocking, Data, DataError, Loaded};
use crate::html::{esc, Frame};
use crate::server::{error_page, page_response, AppState, PageError};

/// The colour class of a segment (`seg-0` … `seg-9`, in [`Segment::ALL`] order).
pub fn seg_class(s: Segment) -> String {
    let i = Segment::ALL.iter().position(|x| *x == s).unwrap_or(0);
    format!("seg-{i}")
}

/// The line under a page's title: the run, its as-of date, and a link to
/// the other runs.
pub fn run_line(l: &Loaded) -> String {
    let e = &l.run.entry;
    format!(
        "<p class=\"runline\">Run <code id=\"run-id\">{}</code>{} · as of <span id=\"as-of\">{}</span> · <a href=\"/runs\">other runs</a></p>",
        esc(e.run_id()),
        if e.latest { " (latest)" } else { "" },
        esc(e.report.as_of.as_deref().unwrap_or("?")),
    )
}

/// `?run=ID` for links within the run a page shows (empty for the latest).
pub fn run_query(l: &Loaded) -> Vec<(&'static str, String)> {
    if l.run.entry.latest {
        Vec::new()
    } else {
        vec![("run", l.run_id().to_string())]
    }
}

/// A query string of owned pairs.
pub fn query(pairs: &[(&'static str, String)]) -> String {
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    crate::params::encode(&refs)
}

/// Renders a page of run `run` (or the latest) on the blocking pool:
/// `render` gets the loaded run and returns (title, body).
pub async fn run_page(
    s: &AppState,
    current: &'static str,
    run: Option<String>,
    render: impl FnOnce(&Data, &Arc<Loaded>) -> Result<(String, String), PageError> + Send + 'static,
) -> Response {
    let r = blocking(&s.data, move |d| {
        let l = d.run(run.as_deref())?;
        let named = (!l.run.entry.latest).then(|| l.run_id().to_string());
        Ok((render(d, &l), named))
    })
    .await;
    match r {
        Ok((Ok((title, body)), named)) => {
            let mut f: Frame = crate::server::frame(s, &title, current);
            f.run = named.as_deref();
            page_response(StatusCode::OK, &f, &body)
        }
        Ok((Err(e), named)) => error_page(s, e, named.as_deref()),
        Err(e) => error_page(s, e, None),
    }
}

/// A data error as a page error (for `?`).
pub fn not_found(message: String) -> PageError {
    PageError::Data(DataError::NotFound(message))
}
