//! Runs (`/runs`): the history of runs, newest first; and the movement
//! between two chosen runs (`/movement?from=A&to=B`, by default the run
//! before the latest and the latest): a matrix of customers moving from
//! each segment to each segment, with the revenue that moved, and the
//! largest moves out of the best segments listed first.

use std::fmt::Write;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use rfm_core::money::Money;
use rfm_core::{RunStatus as Status, Segment};

use crate::api::movement_pair;
use crate::data::{blocking, DataError};
use crate::html::{count, esc, money};
use crate::params::{encode, Params};
use crate::server::{error_page, frame, page_response, AppState, PageError};

pub async fn page(State(s): State<AppState>) -> Response {
    let r = blocking(&s.data, |d| {
        let listing = d.list()?;
        let mut b = String::from("<h1>Runs</h1>");
        let _ = write!(
            b,
            "<p>{} runs in {}, newest first.</p>",
            count(listing.runs.len() as u64),
            esc(d.describe())
        );
        b.push_str("<table class=\"data sortable\" id=\"runs\"><thead><tr><th scope=\"col\">Run</th><th scope=\"col\">Status</th><th scope=\"col\">Started</th><th scope=\"col\">Finished</th><th scope=\"col\">As of</th><th scope=\"col\" class=\"num\">Customers</th><th scope=\"col\" class=\"num\">Revenue</th><th scope=\"col\" class=\"num\">Lines read</th></tr></thead><tbody>");
        for e in &listing.runs {
            let id = e.run_id();
            let link = if e.status.has_results() {
                format!("<a href=\"/{}\">{}</a>", esc(&encode(&[("run", id)])), esc(id))
            } else {
                esc(id)
            };
            // A skipped run is neither a result nor a failure: its own
            // class, and why it did not run.
            let status = match (e.status, e.report.error.as_deref()) {
                (Status::Skipped, Some(why)) => format!(
                    "<td class=\"status status-skipped\" title=\"{t}\">skipped<br><small>{t}</small></td>",
                    t = esc(why)
                ),
                (status, _) => format!(
                    "<td class=\"status status-{s}\">{s}</td>",
                    s = esc(status.as_str())
                ),
            };
            let _ = write!(
                b,
                "<tr><th scope=\"row\">{link}{}</th>{status}<td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                if e.latest { " <span class=\"tag\">latest</span>" } else { "" },
                esc(e.started_at()),
                esc(e.finished_at().unwrap_or("")),
                esc(e.report.as_of.as_deref().unwrap_or("")),
                count(e.report.customers),
                esc(e.report.revenue.as_deref().unwrap_or("")),
                count(e.report.lines_read),
            );
        }
        b.push_str("</tbody></table>");
        for skipped in &listing.skipped {
            let _ = write!(b, "<p class=\"error\">Not shown: {}</p>", esc(skipped));
        }
        let ids: Vec<&str> = listing
            .runs
            .iter()
            .filter(|e| e.status.has_results())
            .map(|e| e.run_id())
            .collect();
        if ids.len() >= 2 {
            b.push_str("<h2>Compare two runs</h2><form method=\"get\" action=\"/movement\" class=\"filters\">");
            for (name, pick) in [("from", 1), ("to", 0)] {
                let _ = write!(b, "<label>{name} <select name=\"{name}\">");
                for (i, id) in ids.iter().enumerate() {
                    let _ = write!(
                        b,
                        "<option{}>{}</option>",
                        if i == pick { " selected" } else { "" },
                        esc(id)
                    );
                }
                b.push_str("</select></label>");
            }
            b.push_str("<button type=\"submit\">Show movement</button></form>");
        }
        Ok(b)
    })
    .await;
    match r {
        Ok(body) => page_response(StatusCode::OK, &frame(&s, "Runs", "/runs"), &body),
        Err(e) => error_page(&s, e, None),
    }
}

pub async fn movement(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let r = blocking(&s.data, move |d| {
        let (from, to) = movement_pair(d, &p)?;
        let a = d.run(Some(&from))?;
        let b_run = d.run(Some(&to))?;
        let moves = rfm_runs::movement(&a.run.customers, &b_run.run.customers)
            .map_err(|e| DataError::Unavailable(e.to_string()))?;
        let mut b = String::from("<h1>Movement between two runs</h1>");
        let _ = write!(
            b,
            "<p>From <code id=\"from\">{}</code> (as of {}) to <code id=\"to\">{}</code> (as of {}). Rows: the segment in the first run; columns: in the second. Each cell: customers, and their revenue in the second run. <a href=\"/runs\">Choose other runs</a>.</p>",
            esc(a.run_id()),
            esc(a.run.entry.report.as_of.as_deref().unwrap_or("?")),
            esc(b_run.run_id()),
            esc(b_run.run.entry.report.as_of.as_deref().unwrap_or("?")),
        );
        let mut keys: Vec<Option<Segment>> = Segment::ALL.iter().copied().map(Some).collect();
        keys.push(None);
        let name = |s: Option<Segment>, none: &str| s.map_or(none.to_string(), |s| s.name().to_string());
        b.push_str("<div class=\"scroll\"><table class=\"data matrix\" id=\"movement\"><thead><tr><th scope=\"col\">from ↓ / to →</th>");
        for k in &keys {
            let _ = write!(b, "<th scope=\"col\">{}</th>", esc(&name(*k, "(gone)")));
        }
        b.push_str("</tr></thead><tbody>");
        for from_k in &keys {
            let _ = write!(b, "<tr><th scope=\"row\">{}</th>", esc(&name(*from_k, "(new)")));
            for to_k in &keys {
                match moves.iter().find(|m| m.from == *from_k && m.to == *to_k) {
                    Some(m) => {
                        let tip = format!(
                            "{} → {}: {} customers; revenue {} in the first run, {} in the second",
                            name(m.from, "(new)"),
                            name(m.to, "(gone)"),
                            count(m.customers),
                            money(m.revenue_from),
                            money(m.revenue_to)
                        );
                        let stay = if m.from == m.to { " stay" } else { "" };
                        let _ = write!(
                            b,
                            "<td class=\"num mark{stay}\" data-tip=\"{t}\" title=\"{t}\">{}<br><small>{}</small></td>",
                            count(m.customers),
                            money(if m.to.is_some() { m.revenue_to } else { m.revenue_from }),
                            t = esc(&tip),
                        );
                    }
                    None => b.push_str("<td class=\"num empty\">·</td>"),
                }
            }
            b.push_str("</tr>");
        }
        b.push_str("</tbody></table></div>");
        // The moves that matter most: out of a segment into a worse one, by revenue at stake.
        let rank = |s: Option<Segment>| s.map_or(99, |s| Segment::ALL.iter().position(|x| *x == s).unwrap_or(99));
        let mut slips: Vec<_> = moves
            .iter()
            .filter(|m| m.from.is_some() && m.from != m.to && matches!(m.from, Some(Segment::Champions | Segment::LoyalCustomers | Segment::CantLoseThem | Segment::PotentialLoyalists)))
            .filter(|m| rank(m.to) > rank(m.from))
            .collect();
        slips.sort_by(|x, y| y.revenue_from.cmp(&x.revenue_from).then(y.customers.cmp(&x.customers)));
        b.push_str("<h2>Who slipped</h2><table class=\"data\" id=\"slipped\"><thead><tr><th scope=\"col\">From</th><th scope=\"col\">To</th><th scope=\"col\" class=\"num\">Customers</th><th scope=\"col\" class=\"num\">Their revenue before</th><th scope=\"col\" class=\"num\">after</th></tr></thead><tbody>");
        let mut at_stake = Money::ZERO;
        for m in slips.iter().take(12) {
            at_stake = at_stake.checked_add(m.revenue_from).unwrap_or(Money::MAX);
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&name(m.from, "(new)")),
                esc(&name(m.to, "(gone)")),
                count(m.customers),
                money(m.revenue_from),
                money(m.revenue_to)
            );
        }
        b.push_str("</tbody></table>");
        let _ = write!(b, "<p>Revenue of the customers listed above, before: {}.</p>", money(at_stake));
        Ok(b)
    })
    .await;
    match r {
        Ok(body) => page_response(StatusCode::OK, &frame(&s, "Movement", "/movement"), &body),
        Err(e) => error_page(&s, PageError::Data(e), None),
    }
}
