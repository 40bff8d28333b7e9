//! Customer detail (`/customers/{id}`): the customer's metrics, its R, F
//! and M scores with the cut points behind them (the value range of every
//! score in this run), the rule of its segment, and its history across the
//! most recent runs.

use std::fmt::Write;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use rfm_core::date::format_timestamp;

use crate::data;
use crate::html::{count, esc, money};
use crate::pages::{not_found, query, run_line, run_page, run_query};
use crate::params::{component, Params};
use crate::server::AppState;

/// How many runs the history reads (each is loaded whole).
const HISTORY: usize = 6;

pub async fn page(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let p = Params::parse(q.as_deref());
    run_page(&s, "/customers", p.run().map(str::to_string), move |d, l| {
        let i = data::index_of(l, &id)
            .ok_or_else(|| not_found(format!("no customer {id:?} in run {}", l.run_id())))?;
        let c = &l.run.customers[i];
        let cp = &l.run.cut_points;
        let mut b = format!("<h1>Customer <span id=\"customer-id\">{}</span></h1>", esc(&c.customer_id));
        b.push_str(&run_line(l));
        let _ = write!(
            b,
            "<section class=\"kpis\">\
             <div class=\"kpi\"><span class=\"k\">Segment</span><span class=\"v\" id=\"segment\">{}</span></div>\
             <div class=\"kpi\"><span class=\"k\">RFM score</span><span class=\"v\">{}</span></div>\
             <div class=\"kpi\"><span class=\"k\">Monetary</span><span class=\"v\" id=\"monetary\">{}</span></div>\
             <div class=\"kpi\"><span class=\"k\">Country</span><span class=\"v\" id=\"country\">{}</span></div></section>",
            esc(c.segment.name()),
            c.rfm_score(),
            money(c.monetary),
            esc(&c.country),
        );
        let _ = write!(
            b,
            "<p class=\"rule\">Segment rule: <strong>{}</strong> — {} (this customer: R = {}, F = {}).</p>",
            esc(c.segment.name()),
            esc(c.segment.rule()),
            c.r,
            c.f
        );
        let _ = write!(
            b,
            "<h2>Metrics</h2><table class=\"ledger\"><tbody>\
             <tr><th scope=\"row\">Recency</th><td class=\"num\">{} days</td></tr>\
             <tr><th scope=\"row\">Frequency</th><td class=\"num\">{} invoices</td></tr>\
             <tr><th scope=\"row\">Monetary</th><td class=\"num\">{}</td></tr>\
             <tr><th scope=\"row\">First purchase</th><td>{}</td></tr>\
             <tr><th scope=\"row\">Last purchase</th><td>{}</td></tr></tbody></table>",
            c.recency,
            count(c.frequency),
            money(c.monetary),
            format_timestamp(c.first_purchase),
            format_timestamp(c.last_purchase),
        );
        b.push_str("<h2>Scores and cut points</h2><p>Each score's range of values in this run; the customer's score is marked.</p><table class=\"data\" id=\"cut-points\"><thead><tr><th scope=\"col\">Score</th>");
        for k in 1..=5 {
            let _ = write!(b, "<th scope=\"col\">{k}</th>");
        }
        b.push_str("</tr></thead><tbody>");
        let mut row = |name: &str, mine: u8, ranges: Vec<(u8, String)>| {
            let _ = write!(b, "<tr><th scope=\"row\">{name} = {mine}</th>");
            for k in 1..=5u8 {
                let text = ranges
                    .iter()
                    .find(|(s, _)| *s == k)
                    .map(|(_, t)| t.clone())
                    .unwrap_or_else(|| "—".into());
                let mark = if k == mine { " class=\"mine\"" } else { "" };
                let _ = write!(b, "<td{mark}>{}</td>", esc(&text));
            }
            b.push_str("</tr>");
        };
        row(
            "R (recency, days)",
            c.r,
            cp.recency
                .iter()
                .map(|(k, lo, hi)| (*k, format!("{lo}–{hi}")))
                .collect(),
        );
        row(
            "F (frequency)",
            c.f,
            cp.frequency
                .iter()
                .map(|(k, lo, hi)| (*k, format!("{lo}–{hi}")))
                .collect(),
        );
        row(
            "M (monetary)",
            c.m,
            cp.monetary
                .iter()
                .map(|(k, lo, hi)| (*k, format!("{lo}–{hi}")))
                .collect(),
        );
        b.push_str("</tbody></table>");
        // History: this customer in the most recent runs with results.
        b.push_str("<h2>History across runs</h2><table class=\"data\" id=\"history\"><thead><tr><th scope=\"col\">Run</th><th scope=\"col\">As of</th><th scope=\"col\">Segment</th><th scope=\"col\">RFM</th><th scope=\"col\" class=\"num\">Recency</th><th scope=\"col\" class=\"num\">Frequency</th><th scope=\"col\" class=\"num\">Monetary</th></tr></thead><tbody>");
        let listing = d.list()?;
        for e in listing
            .runs
            .iter()
            .filter(|e| e.status.has_results())
            .take(HISTORY)
        {
            let other = d.run(Some(e.run_id()))?;
            let href = format!(
                "/customers/{}{}",
                component(&c.customer_id),
                query(&[("run", e.run_id().to_string())])
            );
            match data::index_of(&other, &c.customer_id).map(|j| &other.run.customers[j]) {
                Some(o) => {
                    let _ = write!(
                        b,
                        "<tr><th scope=\"row\"><a href=\"{}\">{}</a></th><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                        esc(&href),
                        esc(e.run_id()),
                        esc(e.report.as_of.as_deref().unwrap_or("?")),
                        esc(o.segment.name()),
                        o.rfm_score(),
                        o.recency,
                        count(o.frequency),
                        money(o.monetary)
                    );
                }
                None => {
                    let _ = write!(
                        b,
                        "<tr><th scope=\"row\">{}</th><td>{}</td><td colspan=\"5\">not a customer in this run</td></tr>",
                        esc(e.run_id()),
                        esc(e.report.as_of.as_deref().unwrap_or("?"))
                    );
                }
            }
        }
        b.push_str("</tbody></table>");
        let _ = write!(
            b,
            "<p><a href=\"/customers{}\">← all customers</a></p>",
            esc(&query(&run_query(l)))
        );
        Ok((format!("Customer {}", c.customer_id), b))
    })
    .await
}
