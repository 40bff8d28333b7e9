//! A run's cut points: as scoring saved them with the run, or — for a run
//! saved before they were — computed once from its customers with the
//! engine's own rule ([`rfm_core::score::cut_points`]).

use rfm_core::score::{self, CustomerRow, CutPoints};

use crate::model::Customer;

/// The saved cut points, or those of `customers` when none were saved.
pub fn cut_points(saved: Option<CutPoints>, customers: &[Customer]) -> CutPoints {
    saved.unwrap_or_else(|| {
        let rows: Vec<CustomerRow> = customers.iter().map(row).collect();
        score::cut_points(&rows)
    })
}

/// The engine's row for a customer: the fields scoring reads.
fn row(c: &Customer) -> CustomerRow {
    CustomerRow {
        customer_id: c.customer_id.clone(),
        recency: c.recency,
        frequency: c.frequency,
        monetary: c.monetary,
        first_purchase: c.first_purchase,
        last_purchase: c.last_purchase,
        country: c.country.as_str().into(),
        r: c.r,
        f: c.f,
        m: c.m,
        segment: c.segment,
    }
}
