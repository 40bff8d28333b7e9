//! R × F heatmap (`/heatmap`): 5 × 5 cells with their customers and
//! revenue, shaded by customers (or by revenue with `?by=revenue`); a click
//! on a cell lists its customers.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use rfm_core::Segment;

use crate::charts::{self, Cell};
use crate::html::{count, esc, money};
use crate::pages::{query, run_line, run_page, run_query};
use crate::params::Params;
use crate::server::AppState;

pub async fn page(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let by_revenue = p.get("by") == Some("revenue");
    run_page(&s, "/heatmap", p.run().map(str::to_string), move |_, l| {
        let rq = run_query(l);
        let cells: [[Cell; 5]; 5] = std::array::from_fn(|ri| {
            std::array::from_fn(|fi| {
                let (r, f) = (ri as u8 + 1, fi as u8 + 1);
                let n = l.grid_customers[ri][fi];
                let rev = l.grid_revenue[ri][fi];
                let mut pairs = rq.clone();
                pairs.push(("r", r.to_string()));
                pairs.push(("f", f.to_string()));
                Cell {
                    value: if by_revenue {
                        rev.0 as f64
                    } else {
                        n as f64
                    },
                    lines: [count(n), money(rev)],
                    tip: format!(
                        "R{r} F{f} ({}): {} customers, revenue {}",
                        Segment::of(r, f).name(),
                        count(n),
                        money(rev)
                    ),
                    href: format!("/customers{}", query(&pairs)),
                }
            })
        });
        let mut b = String::from("<h1>R × F heatmap</h1>");
        b.push_str(&run_line(l));
        let mut other = rq.clone();
        if !by_revenue {
            other.push(("by", "revenue".into()));
        }
        b.push_str(&format!(
            "<p>Shaded by {}. <a href=\"/heatmap{}\">Shade by {}</a>. Each cell shows its customers and their revenue; click a cell to list its customers.</p>",
            if by_revenue { "revenue" } else { "customers" },
            esc(&query(&other)),
            if by_revenue { "customers" } else { "revenue" },
        ));
        b.push_str(&charts::heatmap("R × F heatmap", &cells));
        Ok(("R×F heatmap".into(), b))
    })
    .await
}
