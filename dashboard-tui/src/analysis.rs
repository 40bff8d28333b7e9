//! Figures derived from a run's customers: the R × F grid, the value range of
//! each score bucket (cut points), histograms, and the movement of customers
//! between two runs. Pure functions, no terminal.

use rfm_core::money::{self, Money};
use rfm_core::Segment;

use crate::data::{Customer, RunData};

/// Customers and revenue per (R, F) cell; index `[r - 1][f - 1]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grid {
    pub customers: [[u64; 5]; 5],
    pub revenue: [[Money; 5]; 5],
}

pub fn grid(customers: &[Customer]) -> Grid {
    let mut g = Grid::default();
    for c in customers {
        let (r, f) = (c.r as usize - 1, c.f as usize - 1);
        g.customers[r][f] += 1;
        g.revenue[r][f] = g.revenue[r][f]
            .checked_add(c.monetary)
            .unwrap_or(Money::MAX);
    }
    g
}

/// For each score 1–5 (index 0–4), the smallest and largest metric among the
/// customers that got it; `None` when no customer got that score.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CutPoints {
    pub recency: [Option<(i64, i64)>; 5],
    pub frequency: [Option<(u64, u64)>; 5],
    pub monetary: [Option<(Money, Money)>; 5],
}

impl CutPoints {
    /// The run's cut points (as scoring saved them) by score index.
    pub fn of(saved: &rfm_core::score::CutPoints) -> CutPoints {
        fn place<T: Copy>(slots: &mut [Option<(T, T)>; 5], k: u8, lo: T, hi: T) {
            if let Some(slot) = (k as usize).checked_sub(1).and_then(|i| slots.get_mut(i)) {
                *slot = Some((lo, hi));
            }
        }
        let mut cp = CutPoints::default();
        for &(k, lo, hi) in &saved.recency {
            place(&mut cp.recency, k, lo, hi);
        }
        for &(k, lo, hi) in &saved.frequency {
            place(&mut cp.frequency, k, lo, hi);
        }
        for (k, lo, hi) in &saved.monetary {
            let amount = |t: &str| money::parse_price(t.as_bytes(), b'.');
            if let (Some(lo), Some(hi)) = (amount(lo), amount(hi)) {
                place(&mut cp.monetary, *k, lo, hi);
            }
        }
        cp
    }
}

/// Each customer's 1-based rank on each metric, in the order the engine
/// scores them (recency descending, frequency and monetary ascending; ties in
/// file order, which is the engine's customer-id order). Score k goes to the
/// k-th fifth of the ranks (SQL `NTILE(5)`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ranks {
    pub recency: Vec<u32>,
    pub frequency: Vec<u32>,
    pub monetary: Vec<u32>,
}

pub fn ranks(customers: &[Customer]) -> Ranks {
    let n = customers.len();
    let rank_of = |order: Vec<usize>| {
        let mut ranks = vec![0u32; n];
        for (pos, i) in order.into_iter().enumerate() {
            ranks[i] = pos as u32 + 1;
        }
        ranks
    };
    // Stable sorts keep file order among equal values.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(customers[i].recency));
    let recency = rank_of(order);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| customers[i].frequency);
    let frequency = rank_of(order);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| customers[i].monetary);
    let monetary = rank_of(order);
    Ranks {
        recency,
        frequency,
        monetary,
    }
}

/// The ranks (1-based, inclusive) that get score `k` (1–5) among `n`
/// customers; `None` when that score is empty.
pub fn bucket_ranks(n: usize, k: u8) -> Option<(usize, usize)> {
    let (q, r) = (n / 5, n % 5);
    let i = (k as usize).checked_sub(1)?;
    let (start, size) = if i < r {
        (i * (q + 1), q + 1)
    } else {
        (r * (q + 1) + (i - r) * q, q)
    };
    (size > 0).then_some((start + 1, start + size))
}

/// The three RFM metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Recency,
    Frequency,
    Monetary,
}

impl Metric {
    pub const ALL: [Metric; 3] = [Metric::Recency, Metric::Frequency, Metric::Monetary];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Recency => "Recency (days since last purchase)",
            Metric::Frequency => "Frequency (orders)",
            Metric::Monetary => "Monetary (revenue)",
        }
    }

    /// Whether a logarithmic scale suits the metric by default (long tails).
    pub fn log_by_default(self) -> bool {
        !matches!(self, Metric::Recency)
    }

    pub fn value(self, c: &Customer) -> f64 {
        match self {
            Metric::Recency => c.recency as f64,
            Metric::Frequency => c.frequency as f64,
            Metric::Monetary => c.monetary_f64(),
        }
    }

    fn integer(self) -> bool {
        !matches!(self, Metric::Monetary)
    }
}

/// One histogram bin: values in `[lo, hi)` (the last bin includes its `hi`).
#[derive(Clone, Debug, PartialEq)]
pub struct Bin {
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
}

/// Histogram of `values` in at most `bins` bins, with equal-width or
/// logarithmic bins. Integer metrics get integer edges.
pub fn histogram(values: &[f64], bins: usize, log: bool, integer: bool) -> Vec<Bin> {
    let bins = bins.max(1);
    let Some(min) = values.iter().copied().reduce(f64::min) else {
        return Vec::new();
    };
    let max = values.iter().copied().fold(min, f64::max);
    let top = if integer { max + 1.0 } else { max };
    let log = log && min > 0.0 && top > min;
    let mut edges: Vec<f64> = (0..=bins)
        .map(|i| {
            let t = i as f64 / bins as f64;
            if log {
                min * (top / min).powf(t)
            } else {
                min + (top - min) * t
            }
        })
        .collect();
    if integer {
        for e in edges.iter_mut() {
            *e = e.ceil();
        }
        edges.dedup();
        if edges.len() < 2 {
            edges = vec![min, top];
        }
    }
    if edges.len() < 2 || edges[edges.len() - 1] <= edges[0] {
        return vec![Bin {
            lo: min,
            hi: max,
            count: values.len() as u64,
        }];
    }
    let n = edges.len() - 1;
    let mut out: Vec<Bin> = edges
        .windows(2)
        .map(|w| Bin {
            lo: w[0],
            hi: w[1],
            count: 0,
        })
        .collect();
    for &v in values {
        let i = edges
            .partition_point(|e| *e <= v)
            .saturating_sub(1)
            .min(n - 1);
        out[i].count += 1;
    }
    out
}

/// Histogram of one metric over the customers of `segment` (all when `None`).
pub fn metric_histogram(
    run: &RunData,
    metric: Metric,
    segment: Option<Segment>,
    bins: usize,
    log: bool,
) -> Vec<Bin> {
    let values: Vec<f64> = run
        .customers
        .iter()
        .filter(|c| segment.is_none_or(|s| c.segment == s))
        .map(|c| metric.value(c))
        .collect();
    histogram(&values, bins, log, metric.integer())
}

/// Index of "not in that run" in a movement matrix.
pub const ABSENT: usize = 10;
/// Rows and columns of a movement matrix: the ten segments, then absent.
pub const SLOTS: usize = 11;

pub fn segment_index(s: Segment) -> usize {
    Segment::ALL.iter().position(|x| *x == s).unwrap_or(ABSENT)
}

/// Segments a customer is "asleep" in, and the active ones they can wake up to.
pub const DORMANT: [Segment; 4] = [
    Segment::AboutToSleep,
    Segment::AtRisk,
    Segment::CantLoseThem,
    Segment::Hibernating,
];
pub const ACTIVE: [Segment; 5] = [
    Segment::Champions,
    Segment::LoyalCustomers,
    Segment::PotentialLoyalists,
    Segment::NewCustomers,
    Segment::Promising,
];

/// Customers moving between segments from one run to another, joined on
/// customer id. Revenue at stake is each customer's monetary in the earlier
/// ("from") run, or in the later run for customers new in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Movement {
    pub from_run: String,
    pub to_run: String,
    pub customers: [[u64; SLOTS]; SLOTS],
    pub revenue: [[Money; SLOTS]; SLOTS],
}

/// One from → to flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    pub from: usize,
    pub to: usize,
    pub customers: u64,
    pub revenue: Money,
}

/// A summed group of flows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Total {
    pub customers: u64,
    pub revenue: Money,
}

/// The movement from one run to another, from the read side's one
/// computation ([`rfm_runs::movement()`]); `None` when a revenue sum leaves
/// the exact range.
pub fn movement(from: &RunData, to: &RunData) -> Option<Movement> {
    let mut m = Movement {
        from_run: from.run_id().to_string(),
        to_run: to.run_id().to_string(),
        customers: [[0; SLOTS]; SLOTS],
        revenue: [[Money::ZERO; SLOTS]; SLOTS],
    };
    let slot = |s: Option<Segment>| s.map_or(ABSENT, segment_index);
    for mv in rfm_runs::movement(&from.customers, &to.customers).ok()? {
        let (i, j) = (slot(mv.from), slot(mv.to));
        m.customers[i][j] = mv.customers;
        // Customers new in the later run are at stake with their revenue there.
        m.revenue[i][j] = match mv.from {
            Some(_) => mv.revenue_from,
            None => mv.revenue_to,
        };
    }
    Some(m)
}

impl Movement {
    /// Flows between different slots, largest first (by revenue or customers).
    pub fn flows(&self, by_revenue: bool) -> Vec<Flow> {
        let mut out = Vec::new();
        for i in 0..SLOTS {
            for j in 0..SLOTS {
                if i != j && self.customers[i][j] > 0 {
                    out.push(Flow {
                        from: i,
                        to: j,
                        customers: self.customers[i][j],
                        revenue: self.revenue[i][j],
                    });
                }
            }
        }
        if by_revenue {
            out.sort_by(|a, b| {
                b.revenue
                    .cmp(&a.revenue)
                    .then(b.customers.cmp(&a.customers))
            });
        } else {
            out.sort_by(|a, b| {
                b.customers
                    .cmp(&a.customers)
                    .then(b.revenue.cmp(&a.revenue))
            });
        }
        out
    }

    fn total(&self, rows: &[usize], cols: &[usize]) -> Total {
        let mut t = Total::default();
        for &i in rows {
            for &j in cols {
                if i != j {
                    t.customers += self.customers[i][j];
                    t.revenue = t
                        .revenue
                        .checked_add(self.revenue[i][j])
                        .unwrap_or(Money::MAX);
                }
            }
        }
        t
    }

    /// Customers who were Champions and are not any more (including gone).
    pub fn left_champions(&self) -> Total {
        let all: Vec<usize> = (0..SLOTS).collect();
        self.total(&[segment_index(Segment::Champions)], &all)
    }

    /// Customers who moved from a dormant segment to an active one.
    pub fn woke_up(&self) -> Total {
        let rows: Vec<usize> = DORMANT.iter().map(|s| segment_index(*s)).collect();
        let cols: Vec<usize> = ACTIVE.iter().map(|s| segment_index(*s)).collect();
        self.total(&rows, &cols)
    }

    /// Customers who moved from an active segment to a dormant one.
    pub fn fell_asleep(&self) -> Total {
        let rows: Vec<usize> = ACTIVE.iter().map(|s| segment_index(*s)).collect();
        let cols: Vec<usize> = DORMANT.iter().map(|s| segment_index(*s)).collect();
        self.total(&rows, &cols)
    }

    /// Customers in the same segment in both runs.
    pub fn stayed(&self) -> u64 {
        (0..ABSENT).map(|i| self.customers[i][i]).sum()
    }
}

/// Name of a movement slot.
pub fn slot_name(i: usize) -> &'static str {
    Segment::ALL
        .get(i)
        .map(|s| s.name())
        .unwrap_or("(not in run)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_histogram_counts_every_value() {
        let values: Vec<f64> = (1..=100).map(|v| v as f64).collect();
        let h = histogram(&values, 10, false, true);
        assert_eq!(h.len(), 10);
        assert!(h.iter().all(|b| b.count == 10), "{h:?}");
        let h = histogram(&values, 5, true, true);
        assert_eq!(h.iter().map(|b| b.count).sum::<u64>(), 100);
        assert_eq!(h[0].lo, 1.0);
    }

    #[test]
    fn bucket_ranks_follow_ntile() {
        // 7 customers: groups of 2, 2, 1, 1, 1.
        let b: Vec<_> = (1..=5).map(|k| bucket_ranks(7, k)).collect();
        assert_eq!(
            b,
            vec![
                Some((1, 2)),
                Some((3, 4)),
                Some((5, 5)),
                Some((6, 6)),
                Some((7, 7))
            ]
        );
        assert_eq!(bucket_ranks(2, 3), None);
        for n in 1..40 {
            for pos in 0..n {
                let k = rfm_core::score::ntile(pos, n, 5);
                let (lo, hi) = bucket_ranks(n, k).unwrap();
                assert!((lo..=hi).contains(&(pos + 1)), "n={n} pos={pos}");
            }
        }
    }

    #[test]
    fn single_value_histogram() {
        let h = histogram(&[3.0, 3.0], 8, true, true);
        assert_eq!(h.iter().map(|b| b.count).sum::<u64>(), 2);
        assert!(histogram(&[], 8, true, true).is_empty());
    }
}
