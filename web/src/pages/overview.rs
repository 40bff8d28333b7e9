//! Overview (`/`): the run's id, as-of date, customers and revenue; its
//! line ledger (lines read, exclusions per reason, malformed share); its
//! segments as bars of customers and of revenue share, a treemap, and a
//! table.

use std::fmt::Write;

use axum::extract::{RawQuery, State};
use axum::response::Response;

use crate::charts::{self, Bar, Tile};
use crate::html::{count, esc, money, percent};
use crate::pages::{query, run_line, run_page, run_query, seg_class};
use crate::params::Params;
use crate::server::AppState;

pub async fn page(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    run_page(&s, "/", p.run().map(str::to_string), |_, l| {
        let rep = &l.run.entry.report;
        let mut b = String::new();
        b.push_str("<h1>Overview</h1>");
        b.push_str(&run_line(l));
        let _ = write!(
            b,
            "<section class=\"kpis\">\
             <div class=\"kpi\"><span class=\"k\">Customers</span><span class=\"v\" id=\"kpi-customers\">{}</span></div>\
             <div class=\"kpi\"><span class=\"k\">Revenue</span><span class=\"v\" id=\"kpi-revenue\">{}</span></div>\
             <div class=\"kpi\"><span class=\"k\">As of</span><span class=\"v\">{}</span></div>\
             <div class=\"kpi\"><span class=\"k\">Latest purchase</span><span class=\"v\">{}</span></div></section>",
            count(l.run.customers.len() as u64),
            money(l.revenue),
            esc(rep.as_of.as_deref().unwrap_or("?")),
            esc(rep.latest_purchase.as_deref().unwrap_or("?")),
        );
        let ex = &rep.excluded;
        let malformed_share = if rep.lines_read > 0 {
            format!("{:.4}%", rep.malformed as f64 * 100.0 / rep.lines_read as f64)
        } else {
            "0%".into()
        };
        let _ = write!(
            b,
            "<h2>Line ledger</h2><table class=\"ledger\" id=\"ledger\"><tbody>\
             <tr><th scope=\"row\">Lines read</th><td class=\"num\">{}</td></tr>\
             <tr><th scope=\"row\">Purchase lines</th><td class=\"num\">{}</td></tr>\
             <tr><th scope=\"row\">Excluded: missing customer</th><td class=\"num\">{}</td></tr>\
             <tr><th scope=\"row\">Excluded: cancellation</th><td class=\"num\">{}</td></tr>\
             <tr><th scope=\"row\">Excluded: quantity ≤ 0</th><td class=\"num\">{}</td></tr>\
             <tr><th scope=\"row\">Excluded: price ≤ 0</th><td class=\"num\">{}</td></tr>\
             <tr><th scope=\"row\">Malformed</th><td class=\"num\">{} ({})</td></tr>\
             </tbody></table>",
            count(rep.lines_read),
            count(rep.purchase_lines),
            count(ex.missing_customer),
            count(ex.cancellation),
            count(ex.quantity_le_0),
            count(ex.price_le_0),
            count(rep.malformed),
            malformed_share,
        );
        let rq = run_query(l);
        let link = |seg: &str| {
            let mut pairs = rq.clone();
            pairs.push(("segment", seg.to_string()));
            format!("/customers{}", query(&pairs))
        };
        let segs = &l.run.segments;
        let tip = |sg: &rfm_runs::SegmentSummary| {
            format!(
                "{}: {} customers ({}), revenue {} ({})",
                sg.segment.name(),
                count(sg.customers),
                percent(&sg.customers_share),
                money(sg.revenue),
                percent(&sg.revenue_share)
            )
        };
        let customers: Vec<Bar> = segs
            .iter()
            .map(|sg| Bar {
                label: sg.segment.name().into(),
                value: sg.customers as f64,
                figure: format!("{} ({})", count(sg.customers), percent(&sg.customers_share)),
                tip: tip(sg),
                href: Some(link(sg.segment.name())),
                class: seg_class(sg.segment),
            })
            .collect();
        let revenue: Vec<Bar> = segs
            .iter()
            .map(|sg| Bar {
                label: sg.segment.name().into(),
                value: sg.revenue_share.parse().unwrap_or(0.0),
                figure: percent(&sg.revenue_share),
                tip: tip(sg),
                href: Some(link(sg.segment.name())),
                class: seg_class(sg.segment),
            })
            .collect();
        let tiles: Vec<Tile> = segs
            .iter()
            .map(|sg| Tile {
                label: sg.segment.name().into(),
                weight: sg.customers as f64,
                tip: tip(sg),
                href: Some(link(sg.segment.name())),
                class: seg_class(sg.segment),
            })
            .collect();
        b.push_str("<div class=\"grid2\"><section><h2>Customers per segment</h2>");
        b.push_str(&charts::bars("customers per segment", &customers));
        b.push_str("</section><section><h2>Revenue share per segment</h2>");
        b.push_str(&charts::bars("revenue share per segment", &revenue));
        b.push_str("</section></div><h2>Segments by customers (treemap)</h2>");
        b.push_str(&charts::treemap("segments by customers", &tiles));
        b.push_str(
            "<h2>Segments</h2><table class=\"sortable\" id=\"segments\"><thead><tr>\
             <th scope=\"col\">Segment</th><th scope=\"col\" class=\"num\">Customers</th><th scope=\"col\" class=\"num\">Share</th>\
             <th scope=\"col\" class=\"num\">Revenue</th><th scope=\"col\" class=\"num\">Revenue share</th>\
             <th scope=\"col\" class=\"num\">Avg recency</th><th scope=\"col\" class=\"num\">Avg frequency</th>\
             <th scope=\"col\" class=\"num\">Avg monetary</th><th scope=\"col\">Rule</th></tr></thead><tbody>",
        );
        for sg in segs {
            let _ = write!(
                b,
                "<tr data-segment=\"{name}\"><th scope=\"row\"><a href=\"{href}\">{name}</a></th>\
                 <td class=\"num\" data-v=\"{c}\">{cc}</td><td class=\"num\" data-v=\"{cs}\">{csp}</td>\
                 <td class=\"num\" data-v=\"{rv}\">{rvt}</td><td class=\"num revenue-share\" data-v=\"{rs}\">{rsp}</td>\
                 <td class=\"num\">{ar}</td><td class=\"num\">{af}</td><td class=\"num\">{am}</td><td>{rule}</td></tr>",
                name = esc(sg.segment.name()),
                href = esc(&link(sg.segment.name())),
                c = sg.customers,
                cc = count(sg.customers),
                cs = esc(&sg.customers_share),
                csp = percent(&sg.customers_share),
                rv = sg.revenue.to_fixed(2),
                rvt = money(sg.revenue),
                rs = esc(&sg.revenue_share),
                rsp = percent(&sg.revenue_share),
                ar = esc(&sg.avg_recency),
                af = esc(&sg.avg_frequency),
                am = esc(&sg.avg_monetary),
                rule = esc(sg.segment.rule()),
            );
        }
        b.push_str("</tbody></table>");
        Ok(("Overview".into(), b))
    })
    .await
}
