//! Distributions (`/distributions`): histograms of recency, frequency and
//! monetary, for the whole run or one segment (`?segment=`), on a linear or
//! log scale (`?scale=log`). Frequency and monetary are binned on a log
//! axis (their spread covers several orders of magnitude).

use axum::extract::{RawQuery, State};
use axum::response::Response;
use rfm_core::Segment;

use crate::charts;
use crate::html::{esc, money};
use crate::pages::{query, run_line, run_page, run_query};
use crate::params::Params;
use crate::select::BadParam;
use crate::server::AppState;

/// Bins of `values` on a linear axis: `n` equal bins from min to max.
fn linear(values: &[f64], n: usize, label: impl Fn(f64) -> String) -> Vec<(String, u64)> {
    let (lo, hi) = bounds(values);
    let width = ((hi - lo) / n as f64).max(1.0);
    let mut bins = vec![0u64; n];
    for v in values {
        let i = (((v - lo) / width) as usize).min(n - 1);
        bins[i] += 1;
    }
    bins.into_iter()
        .enumerate()
        .map(|(i, c)| (label(lo + width * i as f64), c))
        .collect()
}

/// Bins of positive `values` on a log10 axis.
fn logarithmic(values: &[f64], n: usize, label: impl Fn(f64) -> String) -> Vec<(String, u64)> {
    let logs: Vec<f64> = values.iter().map(|v| v.max(0.01).log10()).collect();
    let (lo, hi) = bounds(&logs);
    let width = ((hi - lo) / n as f64).max(1e-9);
    let mut bins = vec![0u64; n];
    for v in &logs {
        let i = (((v - lo) / width) as usize).min(n - 1);
        bins[i] += 1;
    }
    bins.into_iter()
        .enumerate()
        .map(|(i, c)| (label(10f64.powf(lo + width * i as f64)), c))
        .collect()
}

fn bounds(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)))
}

pub async fn page(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let log = p.get("scale") == Some("log");
    let segment = p.get("segment").map(str::to_string);
    run_page(&s, "/distributions", p.run().map(str::to_string), move |_, l| {
        let seg = match &segment {
            Some(name) => Some(
                Segment::from_name(name)
                    .ok_or_else(|| BadParam(format!("segment={name:?} is not a segment")))?,
            ),
            None => None,
        };
        let chosen: Vec<&rfm_runs::Customer> = l
            .run
            .customers
            .iter()
            .filter(|c| seg.is_none_or(|s| c.segment == s))
            .collect();
        let rq = run_query(l);
        let mut b = String::from("<h1>Distributions</h1>");
        b.push_str(&run_line(l));
        b.push_str("<form method=\"get\" action=\"/distributions\" class=\"filters\">");
        if let Some((_, r)) = rq.first() {
            b.push_str(&format!("<input type=\"hidden\" name=\"run\" value=\"{}\">", esc(r)));
        }
        b.push_str("<label>Segment <select name=\"segment\"><option value=\"\">All</option>");
        for sg in Segment::ALL {
            b.push_str(&format!(
                "<option{}>{}</option>",
                if seg == Some(sg) { " selected" } else { "" },
                esc(sg.name())
            ));
        }
        b.push_str(&format!(
            "</select></label><label>Scale <select name=\"scale\"><option value=\"linear\">linear</option><option value=\"log\"{}>log</option></select></label><button type=\"submit\">Show</button></form>",
            if log { " selected" } else { "" }
        ));
        let mut pairs = rq.clone();
        if let Some(sg) = seg {
            pairs.push(("segment", sg.name().to_string()));
        }
        if !log {
            pairs.push(("scale", "log".into()));
        }
        b.push_str(&format!(
            "<p>{} customers{}. Heights on a {} scale (<a href=\"/distributions{}\">switch</a>).</p>",
            crate::html::count(chosen.len() as u64),
            seg.map(|s| format!(" in {}", esc(s.name()))).unwrap_or_default(),
            if log { "log" } else { "linear" },
            esc(&query(&pairs)),
        ));
        if chosen.is_empty() {
            b.push_str("<p>No customer.</p>");
            return Ok(("Distributions".into(), b));
        }
        let recency: Vec<f64> = chosen.iter().map(|c| c.recency as f64).collect();
        let frequency: Vec<f64> = chosen.iter().map(|c| c.frequency as f64).collect();
        let monetary: Vec<f64> = chosen.iter().map(|c| c.monetary_f64()).collect();
        b.push_str("<h2>Recency (days since the last purchase)</h2>");
        b.push_str(&charts::histogram(
            "recency",
            &linear(&recency, 30, |v| format!("{v:.0} d")),
            log,
        ));
        b.push_str("<h2>Frequency (invoices, log axis)</h2>");
        b.push_str(&charts::histogram(
            "frequency",
            &logarithmic(&frequency, 30, |v| format!("{v:.0}")),
            log,
        ));
        b.push_str("<h2>Monetary (log axis)</h2>");
        b.push_str(&charts::histogram(
            "monetary",
            &logarithmic(&monetary, 30, |v| {
                money(rfm_core::money::Money((v * 100.0) as i128 * (rfm_core::money::ONE / 100)))
            }),
            log,
        ));
        Ok(("Distributions".into(), b))
    })
    .await
}
