//! Customers (`/customers`): one page of the selected customers at a time
//! (filtered, sorted and paged on the server, [`crate::select`]), with the
//! search, the filters, column headers that sort, and the current
//! selection as CSV (`/customers.csv`, same parameters, every page).

use std::fmt::Write;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use rfm_core::date::format_timestamp;
use rfm_core::Segment;

use crate::data::blocking;
use crate::html::{count, esc, money};
use crate::pages::{query, run_line, run_page, run_query};
use crate::params::{component, Params};
use crate::select::{self, Selection, COLUMNS};
use crate::server::{download, error_page, AppState, PageError};

/// Column titles, in [`COLUMNS`] order.
const TITLES: [&str; 11] = [
    "Customer",
    "Recency (days)",
    "Frequency",
    "Monetary",
    "First purchase",
    "Last purchase",
    "Country",
    "R",
    "F",
    "M",
    "Segment",
];

pub async fn page(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let sel = match Selection::parse(&p) {
        Ok(sel) => sel,
        Err(e) => return error_page(&s, e, p.run()),
    };
    run_page(&s, "/customers", p.run().map(str::to_string), move |_, l| {
        let rq = run_query(l);
        let ids = sel.q.as_deref().map(|q| l.matching(q));
        let page = select::page(&l.run.customers, l.order(sel.sort.0), ids.as_deref(), &sel);
        let pages = page.pages(sel.size);
        let mut b = String::from("<h1>Customers</h1>");
        b.push_str(&run_line(l));
        // Filters: a plain GET form (works without script).
        b.push_str("<form method=\"get\" action=\"/customers\" class=\"filters\" id=\"filters\">");
        if let Some((_, r)) = rq.first() {
            let _ = write!(b, "<input type=\"hidden\" name=\"run\" value=\"{}\">", esc(r));
        }
        let _ = write!(
            b,
            "<label>Search id <input type=\"search\" name=\"q\" id=\"q\" value=\"{}\"></label>",
            esc(sel.q.as_deref().unwrap_or(""))
        );
        let _ = write!(
            b,
            "<label>Where <input name=\"where\" id=\"where\" value=\"{}\" size=\"24\" \
             placeholder=\"r=5 f>=4 monetary>1000\" title=\"{}\"></label>",
            esc(sel.query.as_ref().map_or("", |(w, _)| w.as_str())),
            esc(rfm_runs::query::GRAMMAR)
        );
        b.push_str("<label>Segment <select name=\"segment\"><option value=\"\">All</option>");
        for sg in Segment::ALL {
            let _ = write!(
                b,
                "<option{}>{}</option>",
                if sel.segment == Some(sg) { " selected" } else { "" },
                esc(sg.name())
            );
        }
        let _ = write!(
            b,
            "</select></label><label>Country <input name=\"country\" value=\"{}\" size=\"12\"></label>",
            esc(sel.country.as_deref().unwrap_or(""))
        );
        for (key, v) in [("r", sel.r), ("f", sel.f), ("m", sel.m)] {
            let _ = write!(
                b,
                "<label>{} <select name=\"{key}\"><option value=\"\">any</option>",
                key.to_uppercase()
            );
            for k in 1..=5u8 {
                let _ = write!(
                    b,
                    "<option{}>{k}</option>",
                    if v == Some(k) { " selected" } else { "" }
                );
            }
            b.push_str("</select></label>");
        }
        if sel.sort != (0, false) {
            let _ = write!(
                b,
                "<input type=\"hidden\" name=\"sort\" value=\"{}\">",
                esc(&sel.sort_param())
            );
        }
        b.push_str("<button type=\"submit\">Apply</button> <a href=\"/customers\">Clear</a></form>");
        let with_run = |mut pairs: Vec<(&'static str, String)>| {
            let mut all = rq.clone();
            all.append(&mut pairs);
            query(&all)
        };
        let current = sel.sort_param();
        let _ = write!(
            b,
            "<p id=\"summary\"><span id=\"total\">{}</span> customers · page {} of {} · <a id=\"download\" href=\"/customers.csv{}\" download>Download CSV</a></p>",
            count(page.total as u64),
            count(sel.page as u64),
            count(pages as u64),
            esc(&with_run(sel.pairs(1, &current).into_iter().filter(|(k, _)| *k != "page").collect())),
        );
        b.push_str("<table id=\"customers\" class=\"data\"><thead><tr>");
        for (i, title) in TITLES.iter().enumerate() {
            let (dir, next) = match sel.sort {
                (c, false) if c == i => ("ascending", format!("-{}", COLUMNS[i])),
                (c, true) if c == i => ("descending", COLUMNS[i].to_string()),
                _ => ("none", COLUMNS[i].to_string()),
            };
            let _ = write!(
                b,
                "<th scope=\"col\" aria-sort=\"{dir}\"><a href=\"/customers{}\">{title}</a></th>",
                esc(&with_run(sel.pairs(1, &next)))
            );
        }
        b.push_str("</tr></thead><tbody>");
        for c in &page.rows {
            let _ = write!(
                b,
                "<tr><th scope=\"row\"><a class=\"cust\" href=\"/customers/{href}{rq}\">{id}</a></th>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td>{}</td></tr>",
                c.recency,
                count(c.frequency),
                money(c.monetary),
                format_timestamp(c.first_purchase),
                format_timestamp(c.last_purchase),
                esc(&c.country),
                c.r,
                c.f,
                c.m,
                esc(c.segment.name()),
                href = esc(&component(&c.customer_id)),
                rq = esc(&query(&rq)),
                id = esc(&c.customer_id),
            );
        }
        b.push_str("</tbody></table><nav class=\"pager\" aria-label=\"pages\">");
        if sel.page > 1 {
            let _ = write!(
                b,
                "<a rel=\"prev\" href=\"/customers{}\">← previous</a>",
                esc(&with_run(sel.pairs(sel.page - 1, &current)))
            );
        }
        if sel.page < pages {
            let _ = write!(
                b,
                "<a rel=\"next\" id=\"next\" href=\"/customers{}\">next →</a>",
                esc(&with_run(sel.pairs(sel.page + 1, &current)))
            );
        }
        b.push_str("</nav>");
        Ok(("Customers".into(), b))
    })
    .await
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// `/customers.csv`: every customer of the selection (all pages), in its
/// order, with the columns of `customers.csv`.
pub async fn csv(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let sel = match Selection::parse(&p) {
        Ok(sel) => sel,
        Err(e) => return error_page(&s, e, p.run()),
    };
    let run = p.run().map(str::to_string);
    let r = blocking(&s.data, move |d| {
        let l = d.run(run.as_deref())?;
        let mut out = String::from(
            "customer_id,recency,frequency,monetary,first_purchase,last_purchase,country,r,f,m,rfm_score,segment\n",
        );
        let ids = sel.q.as_deref().map(|q| l.matching(q));
        for c in select::all(&l.run.customers, l.order(sel.sort.0), ids.as_deref(), &sel) {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{}",
                field(&c.customer_id),
                c.recency,
                c.frequency,
                c.monetary_text(),
                format_timestamp(c.first_purchase),
                format_timestamp(c.last_purchase),
                field(&c.country),
                c.r,
                c.f,
                c.m,
                c.rfm_score(),
                field(c.segment.name())
            );
        }
        Ok((l.run_id().to_string(), out))
    })
    .await;
    match r {
        Ok((id, body)) => {
            let safe: String = id
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
                .collect();
            download(
                "text/csv; charset=utf-8",
                &format!("customers-{safe}.csv"),
                body.into_bytes(),
            )
        }
        Err(e) => {
            let mut res = error_page(&s, PageError::Data(e), None);
            if res.status() == StatusCode::OK {
                *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            }
            res
        }
    }
}
