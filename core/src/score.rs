//! From a merged [`PartialState`] to the run's result (spec §3–5): as-of date,
//! recency, NTILE(5) scores, segments and per-segment figures. Every sum is
//! checked: a total beyond the exact range fails the run with
//! [`Error::Overflow`] instead of publishing a wrapped figure.

use serde::{Deserialize, Serialize};

use crate::date::{self, Date, Timestamp};
use crate::error::{Error, Result};
use crate::ledger::LineLedger;
use crate::money::{self, Money};
use crate::partial::PartialState;
use crate::segment::Segment;

/// One scored customer: a row of `customers.csv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerRow {
    /// The normalised id's text.
    pub customer_id: String,
    /// The id's UTF-8 bytes (ordering key).
    pub id_bytes: Box<[u8]>,
    pub recency: i64,
    pub frequency: u64,
    pub monetary: Money,
    pub first_purchase: Timestamp,
    pub last_purchase: Timestamp,
    pub country: String,
    pub r: u8,
    pub f: u8,
    pub m: u8,
    pub segment: Segment,
}

impl CustomerRow {
    /// The three scores as text, e.g. `545`.
    pub fn rfm_score(&self) -> String {
        format!("{}{}{}", self.r, self.f, self.m)
    }
}

/// One segment's figures: a row of `segments.csv`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SegmentRow {
    pub segment: Segment,
    pub customers: u64,
    /// Exact Σ monetary.
    pub revenue: Money,
    pub recency_sum: i64,
    pub frequency_sum: u64,
    /// Rounded figures as published (6 decimals for shares, 2 for the rest).
    pub customers_share: String,
    pub revenue_text: String,
    pub revenue_share: String,
    pub avg_recency: String,
    pub avg_frequency: String,
    pub avg_monetary: String,
}

/// Value bounds of each score bucket: for score k, the smallest and largest
/// metric among the customers that got k (monetary rounded to 2 decimals).
/// Saved with the run (`run.json`, PostgreSQL) for readers to show.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutPoints {
    pub recency: Vec<(u8, i64, i64)>,
    pub frequency: Vec<(u8, u64, u64)>,
    pub monetary: Vec<(u8, String, String)>,
}

/// The result of a run.
#[derive(Clone, Debug)]
pub struct RfmResult {
    pub as_of: Date,
    pub latest_purchase: Date,
    /// Sorted by customer id bytes.
    pub customers: Vec<CustomerRow>,
    /// Non-empty segments sorted by name.
    pub segments: Vec<SegmentRow>,
    /// Exact Σ monetary over all customers.
    pub revenue: Money,
    pub ledger: LineLedger,
    pub cut_points: CutPoints,
}

/// Text of bytes that are UTF-8, or their ISO-8859-1 reading.
pub fn text_of(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| b as char).collect(),
    }
}

/// SQL `NTILE(k)` bucket (1-based) of the 0-based position `pos` among `n` rows.
pub fn ntile(pos: usize, n: usize, k: usize) -> u8 {
    let q = n / k;
    let r = n % k;
    let big = r * (q + 1);
    let bucket = if pos < big {
        pos / (q + 1)
    } else {
        (pos - big) / q.max(1) + r
    };
    (bucket + 1) as u8
}

/// Scores the state. `as_of` overrides the default (the day after the latest purchase).
pub fn finish(mut state: PartialState, as_of: Option<Date>) -> Result<RfmResult> {
    state.seal();
    let ledger = state.ledger.clone();
    if state.customer_count() == 0 {
        return Err(Error::NoPurchases {
            input: "the input".into(),
            ledger: ledger.describe(),
        });
    }
    let latest = state
        .customers()
        .iter()
        .map(|c| date::date_of(c.last_ts))
        .max()
        .expect("at least one customer");
    let as_of = match as_of {
        None => latest + 1,
        Some(d) if d <= latest => {
            return Err(Error::AsOfTooEarly {
                as_of: date::format_date(d),
                latest: date::format_date(latest),
            })
        }
        Some(d) => d,
    };

    let mut customers: Vec<CustomerRow> = state
        .customers()
        .iter()
        .enumerate()
        .map(|(i, c)| CustomerRow {
            customer_id: text_of(state.id(i)),
            id_bytes: state.id(i).into(),
            recency: (as_of - date::date_of(c.last_ts)) as i64,
            frequency: c.frequency(),
            monetary: c.monetary,
            first_purchase: c.first_ts,
            last_purchase: c.last_ts,
            country: text_of(state.country_of(c)),
            r: 0,
            f: 0,
            m: 0,
            segment: Segment::Hibernating,
        })
        .collect();
    customers.sort_unstable_by(|a, b| a.id_bytes.cmp(&b.id_bytes));
    let n = customers.len();

    // Positions in id order are the tie-breaker: stable sorts on the metric keep it.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(customers[i].recency));
    for (pos, &i) in order.iter().enumerate() {
        customers[i].r = ntile(pos, n, 5);
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| customers[i].frequency);
    for (pos, &i) in order.iter().enumerate() {
        customers[i].f = ntile(pos, n, 5);
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| customers[i].monetary);
    for (pos, &i) in order.iter().enumerate() {
        customers[i].m = ntile(pos, n, 5);
    }
    for c in &mut customers {
        c.segment = Segment::of(c.r, c.f);
    }

    let revenue = Money::checked_sum(customers.iter().map(|c| c.monetary)).ok_or_else(|| {
        Error::Overflow {
            what: format!("the total revenue of the {n} customers"),
        }
    })?;
    let cut_points = cut_points(&customers);
    let segments = segment_rows(&customers, revenue)?;
    Ok(RfmResult {
        as_of,
        latest_purchase: latest,
        customers,
        segments,
        revenue,
        ledger,
        cut_points,
    })
}

/// The cut points of scored customers: per score, the smallest and largest
/// recency, frequency and monetary among the customers that got it.
pub fn cut_points(customers: &[CustomerRow]) -> CutPoints {
    let mut cp = CutPoints::default();
    for k in 1..=5u8 {
        let r: Vec<i64> = customers
            .iter()
            .filter(|c| c.r == k)
            .map(|c| c.recency)
            .collect();
        if let (Some(lo), Some(hi)) = (r.iter().min(), r.iter().max()) {
            cp.recency.push((k, *lo, *hi));
        }
        let f: Vec<u64> = customers
            .iter()
            .filter(|c| c.f == k)
            .map(|c| c.frequency)
            .collect();
        if let (Some(lo), Some(hi)) = (f.iter().min(), f.iter().max()) {
            cp.frequency.push((k, *lo, *hi));
        }
        let m: Vec<Money> = customers
            .iter()
            .filter(|c| c.m == k)
            .map(|c| c.monetary)
            .collect();
        if let (Some(lo), Some(hi)) = (m.iter().min(), m.iter().max()) {
            cp.monetary.push((k, lo.to_fixed(2), hi.to_fixed(2)));
        }
    }
    cp
}

/// Per-segment figures; `total_revenue` is the checked Σ monetary of all customers.
fn segment_rows(customers: &[CustomerRow], total_revenue: Money) -> Result<Vec<SegmentRow>> {
    let total_customers = customers.len() as i128;
    let mut rows: Vec<SegmentRow> = Vec::new();
    for seg in Segment::ALL {
        let members: Vec<&CustomerRow> = customers.iter().filter(|c| c.segment == seg).collect();
        if members.is_empty() {
            continue;
        }
        let overflow = |figure: &str| Error::Overflow {
            what: format!("the {figure} of segment {seg}"),
        };
        let count = members.len() as i128;
        let revenue = Money::checked_sum(members.iter().map(|c| c.monetary))
            .ok_or_else(|| overflow("revenue"))?;
        let recency_sum = members
            .iter()
            .try_fold(0i64, |acc, c| acc.checked_add(c.recency))
            .ok_or_else(|| overflow("sum of recencies"))?;
        let frequency_sum = members
            .iter()
            .try_fold(0u64, |acc, c| acc.checked_add(c.frequency))
            .ok_or_else(|| overflow("sum of frequencies"))?;
        rows.push(SegmentRow {
            segment: seg,
            customers: count as u64,
            revenue,
            recency_sum,
            frequency_sum,
            customers_share: money::div_round(count, total_customers, 6),
            revenue_text: revenue.to_fixed(2),
            revenue_share: if total_revenue == Money::ZERO {
                String::new()
            } else {
                money::div_round(revenue.0, total_revenue.0, 6)
            },
            avg_recency: money::div_round(recency_sum as i128, count, 2),
            avg_frequency: money::div_round(frequency_sum as i128, count, 2),
            avg_monetary: money::div_round(revenue.0, count * money::ONE, 2),
        });
    }
    rows.sort_by(|a, b| a.segment.name().cmp(b.segment.name()));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntile_matches_sql() {
        // 7 rows in 5 buckets: 2,2,1,1,1.
        let b: Vec<u8> = (0..7).map(|p| ntile(p, 7, 5)).collect();
        assert_eq!(b, vec![1, 1, 2, 2, 3, 4, 5]);
        // Fewer rows than buckets: only the first buckets are used.
        let b: Vec<u8> = (0..2).map(|p| ntile(p, 2, 5)).collect();
        assert_eq!(b, vec![1, 2]);
        let b: Vec<u8> = (0..10).map(|p| ntile(p, 10, 5)).collect();
        assert_eq!(b, vec![1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    }
}
