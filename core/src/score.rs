//! From a merged [`PartialState`] to the run's result (spec §3–5): as-of date,
//! recency, NTILE(5) scores, segments and per-segment figures. Every sum is
//! checked: a total beyond the exact range fails the run with
//! [`Error::Overflow`] instead of publishing a wrapped figure.

use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::date::{self, Date, Timestamp};
use crate::error::{Error, Result};
use crate::ledger::LineLedger;
use crate::money::{self, Money};
use crate::partial::{PartialState, Sealed};
use crate::rank;
use crate::segment::Segment;

/// One scored customer: a row of `customers.csv`. Its one heap string is the
/// id; the country's name is shared by the rows of that country (made by
/// one task of scoring).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerRow {
    /// The normalised id's text (its UTF-8 bytes are the ordering key).
    pub customer_id: String,
    pub recency: i64,
    pub frequency: u64,
    pub monetary: Money,
    pub first_purchase: Timestamp,
    pub last_purchase: Timestamp,
    pub country: Arc<str>,
    pub r: u8,
    pub f: u8,
    pub m: u8,
    pub segment: Segment,
}

impl CustomerRow {
    /// The id's UTF-8 bytes: rows are ordered by them.
    pub fn id_bytes(&self) -> &[u8] {
        self.customer_id.as_bytes()
    }

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

impl SegmentRow {
    /// The rounded figures as published, in `segments.csv`'s order (after
    /// the segment and its customer count).
    pub fn figure_texts(&self) -> [&String; 6] {
        [
            &self.customers_share,
            &self.revenue_text,
            &self.revenue_share,
            &self.avg_recency,
            &self.avg_frequency,
            &self.avg_monetary,
        ]
    }
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

/// Bytes one heap block of `len` bytes takes, about: the allocator rounds
/// a small block up to a multiple of 16 bytes.
fn block_bytes(len: usize) -> u64 {
    if len == 0 {
        return 0;
    }
    len.next_multiple_of(16) as u64
}

impl RfmResult {
    /// The memory the result holds, about: its rows and the text each owns
    /// (a country's name is shared by its rows and left out). What a
    /// coordinator counts against the memory kept for finished jobs.
    pub fn heap_bytes(&self) -> u64 {
        let rows = block_bytes(self.customers.capacity() * std::mem::size_of::<CustomerRow>());
        let ids: u64 = self
            .customers
            .iter()
            .map(|c| block_bytes(c.customer_id.capacity()))
            .sum();
        let segments = block_bytes(self.segments.capacity() * std::mem::size_of::<SegmentRow>())
            + self
                .segments
                .iter()
                .flat_map(|s| s.figure_texts())
                .map(|t| block_bytes(t.capacity()))
                .sum::<u64>();
        rows + ids + segments
    }
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

/// The fewest customers' rows one task makes (scoring makes them on every core).
const ROWS_PER_TASK: usize = 8192;

/// Drops `value` on a thread of its own: freeing every customer's invoice
/// sets, or every scored row's id, takes a while, and nothing waits for it
/// (a process that exits meanwhile does not free them at all). When no
/// thread starts, the refused closure drops it here.
pub fn drop_aside<T: Send + 'static>(value: T) {
    let _ = std::thread::Builder::new()
        .name("rfm-drop".into())
        .spawn(move || drop(value));
}

/// Scores the state. `as_of` overrides the default (the day after the latest
/// purchase). The stages, each on every core where it can be: the state
/// sealed and its customers put in id order; the as-of date; the three
/// metrics in id order; their NTILE scores; the rows; the cut points and the
/// segments' figures.
pub fn finish(mut state: PartialState, as_of: Option<Date>) -> Result<RfmResult> {
    // Sealed, with each customer's country found, on every core; the
    // customers put in id order meanwhile.
    let (
        Sealed {
            countries,
            frequencies,
        },
        by_id,
    ) = state.seal_for_scoring();
    // The last read of a mapped cache entry's rows is behind: whether one
    // was cut short meanwhile is known now.
    if let Some(path) = state.cut_entry() {
        return Err(Error::CacheEntryCut {
            path: path.to_path_buf(),
        });
    }
    let ledger = state.ledger.clone();
    if state.customer_count() == 0 {
        return Err(Error::NoPurchases {
            input: "the input".into(),
            ledger: ledger.describe(),
        });
    }
    let (latest, as_of) = as_of_date(&state, as_of)?;
    let metrics = Metrics::in_id_order(&state, &by_id, &frequencies, as_of);
    drop(frequencies);
    let scores = Scores::of(&metrics);
    // The figures are tallied from the metrics' columns, a few bytes per
    // customer, not from the rows once they are made (a pass over all their
    // bytes); the money column is then freed before the rows are made.
    let tally = Tally::of_columns(&metrics, &scores);
    let Metrics {
        recency,
        frequency,
        monetary,
    } = metrics;
    drop(monetary);
    let customers = customer_rows(&state, &by_id, &countries, (&recency, &frequency), &scores);
    drop_aside(state);
    let (cut_points, revenue, segments) = summarise(tally, customers.len())?;
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

/// The latest purchase's date and the as-of date: `as_of` when given
/// (after the latest purchase, else an error), else the day after it.
fn as_of_date(state: &PartialState, as_of: Option<Date>) -> Result<(Date, Date)> {
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
    Ok((latest, as_of))
}

/// The three metrics of every customer, in id order: ranking them with ties
/// in position order ranks them by (metric, id).
struct Metrics {
    recency: Vec<i64>,
    frequency: Vec<u64>,
    monetary: Vec<Money>,
}

impl Metrics {
    /// The metrics of the customers `by_id` lists, each customer read once,
    /// on every core; `frequencies` are by slot.
    fn in_id_order(
        state: &PartialState,
        by_id: &[u32],
        frequencies: &[u64],
        as_of: Date,
    ) -> Metrics {
        let n = by_id.len();
        let accs = state.customers();
        let mut metrics = Metrics {
            recency: vec![0i64; n],
            frequency: vec![0u64; n],
            monetary: vec![Money::ZERO; n],
        };
        (
            by_id,
            &mut metrics.recency[..],
            &mut metrics.frequency[..],
            &mut metrics.monetary[..],
        )
            .into_par_iter()
            .with_min_len(ROWS_PER_TASK)
            .for_each(|(&i, recency, frequency, monetary)| {
                let c = &accs[i as usize];
                *recency = (as_of - date::date_of(c.last_ts)) as i64;
                *frequency = frequencies[i as usize];
                *monetary = c.monetary;
            });
        metrics
    }
}

/// The NTILE(5) scores of the customers in id order.
struct Scores {
    r: Vec<u8>,
    f: Vec<u8>,
    m: Vec<u8>,
}

impl Scores {
    /// The three metrics ranked side by side.
    fn of(metrics: &Metrics) -> Scores {
        let ((r, f), m) = rayon::join(
            || {
                rayon::join(
                    || rank::ntiles_by_i64_desc(&metrics.recency),
                    || rank::ntiles_by_u64(&metrics.frequency),
                )
            },
            || rank::ntiles_by_money(&metrics.monetary),
        );
        Scores { r, f, m }
    }
}

/// The rows of `customers.csv`, in id order, made on every core and written
/// in place into one vector of exactly as many rows (an indexed collect: no
/// per-block vectors copied into it afterwards, which at millions of
/// customers held the rows twice); each task shares its countries' names
/// among its rows (one name per country slot, made when the task first
/// meets it). `countries` are by slot; the recency and frequency `metrics`
/// and the `scores` in id order.
fn customer_rows(
    state: &PartialState,
    by_id: &[u32],
    countries: &[u32],
    (recency, frequency): (&[i64], &[u64]),
    scores: &Scores,
) -> Vec<CustomerRow> {
    let accs = state.customers();
    let no_country: Arc<str> = Arc::from("");
    // Written through: huge pages spare a fault per 4 KiB.
    let mut customers: Vec<CustomerRow> = crate::huge_pages::with_capacity(by_id.len());
    by_id
        .par_iter()
        .with_min_len(ROWS_PER_TASK)
        .enumerate()
        .map_init(
            || vec![None::<Arc<str>>; state.country_count()],
            |country_names, (pos, &i)| {
                let c = &accs[i as usize];
                let slot = countries[i as usize];
                let country = match country_names.get_mut(slot as usize) {
                    Some(name) => name
                        .get_or_insert_with(|| text_of(state.country_name(slot)).into())
                        .clone(),
                    None => no_country.clone(),
                };
                let (r, f) = (scores.r[pos], scores.f[pos]);
                CustomerRow {
                    customer_id: text_of(state.id(i as usize)),
                    recency: recency[pos],
                    frequency: frequency[pos],
                    monetary: c.monetary,
                    first_purchase: c.first_ts,
                    last_purchase: c.last_ts,
                    country,
                    r,
                    f,
                    m: scores.m[pos],
                    segment: Segment::of(r, f),
                }
            },
        )
        .collect_into_vec(&mut customers);
    customers
}

/// The cut points, the total revenue and the segments' figures of the
/// `customers` customers a tally covers.
fn summarise(tally: Tally, customers: usize) -> Result<(CutPoints, Money, Vec<SegmentRow>)> {
    let revenue = tally.revenue.ok_or_else(|| Error::Overflow {
        what: format!("the total revenue of the {customers} customers"),
    })?;
    let segments = tally.segment_rows(revenue)?;
    Ok((tally.cut_points(), revenue, segments))
}

/// Smallest and largest value per score 1–5 (index 0 unused).
#[derive(Clone, Copy)]
struct Bounds<T>([Option<(T, T)>; 6]);

impl<T: Ord + Copy> Bounds<T> {
    #[inline]
    fn add(&mut self, k: u8, v: T) {
        if let Some(slot) = self.0.get_mut(k as usize) {
            *slot = Some(match *slot {
                Some((lo, hi)) => (lo.min(v), hi.max(v)),
                None => (v, v),
            });
        }
    }

    fn combine(mut self, other: Self) -> Self {
        for (k, slot) in other.0.iter().enumerate() {
            if let Some((lo, hi)) = *slot {
                self.add(k as u8, lo);
                self.add(k as u8, hi);
            }
        }
        self
    }

    fn list<U>(&self, f: impl Fn(T) -> U) -> Vec<(u8, U, U)> {
        (1..=5u8)
            .filter_map(|k| self.0[k as usize].map(|(lo, hi)| (k, f(lo), f(hi))))
            .collect()
    }
}

impl<T: Copy> Default for Bounds<T> {
    fn default() -> Self {
        Bounds([None; 6])
    }
}

/// One segment's sums; `None` once a sum left its range.
#[derive(Clone, Copy)]
struct Sums {
    count: u64,
    revenue: Option<Money>,
    recency: Option<i64>,
    frequency: Option<u64>,
}

impl Default for Sums {
    fn default() -> Self {
        Sums {
            count: 0,
            revenue: Some(Money::ZERO),
            recency: Some(0),
            frequency: Some(0),
        }
    }
}

impl Sums {
    fn combine(self, other: Sums) -> Sums {
        Sums {
            count: self.count + other.count,
            revenue: self
                .revenue
                .zip(other.revenue)
                .and_then(|(a, b)| a.checked_add(b)),
            recency: self
                .recency
                .zip(other.recency)
                .and_then(|(a, b)| a.checked_add(b)),
            frequency: self
                .frequency
                .zip(other.frequency)
                .and_then(|(a, b)| a.checked_add(b)),
        }
    }
}

/// What one pass over scored rows gathers: each score's bounds (the cut
/// points), each segment's sums and the total revenue. Tallies of
/// consecutive blocks of rows combine into the tally of them all. Every
/// term is positive (recency, frequency and monetary of a customer are at
/// least a day, an invoice and a cent), so a sum leaves its range in some
/// order of adding exactly when it does in id order.
#[derive(Clone)]
struct Tally {
    r: Bounds<i64>,
    f: Bounds<u64>,
    m: Bounds<Money>,
    sums: [Sums; Segment::ALL.len()],
    /// `None` once the sum left its range.
    revenue: Option<Money>,
    rows: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            r: Bounds::default(),
            f: Bounds::default(),
            m: Bounds::default(),
            sums: [Sums::default(); Segment::ALL.len()],
            revenue: Some(Money::ZERO),
            rows: 0,
        }
    }
}

impl Tally {
    fn of(customers: &[CustomerRow]) -> Tally {
        let mut t = Tally::default();
        for c in customers {
            t.add(
                (c.recency, c.frequency, c.monetary),
                (c.r, c.f, c.m),
                c.segment,
            );
        }
        t
    }

    /// The tally of the rows that [`customer_rows`] makes of these metrics
    /// and scores (in id order, as both are), on every core.
    fn of_columns(metrics: &Metrics, scores: &Scores) -> Tally {
        let Metrics {
            recency,
            frequency,
            monetary,
        } = metrics;
        // A block of rows per task, tallied in place (a fold over single
        // rows would move the tally, about a kilobyte, at every row).
        let n = recency.len();
        (0..n.div_ceil(ROWS_PER_TASK))
            .into_par_iter()
            .map(|block| {
                let mut t = Tally::default();
                for i in block * ROWS_PER_TASK..n.min((block + 1) * ROWS_PER_TASK) {
                    let (r, f) = (scores.r[i], scores.f[i]);
                    t.add(
                        (recency[i], frequency[i], monetary[i]),
                        (r, f, scores.m[i]),
                        Segment::of(r, f),
                    );
                }
                t
            })
            .reduce(Tally::default, Tally::combine)
    }

    /// Adds one customer's metrics, scores and segment.
    #[inline]
    fn add(
        &mut self,
        (recency, frequency, monetary): (i64, u64, Money),
        (r, f, m): (u8, u8, u8),
        segment: Segment,
    ) {
        self.r.add(r, recency);
        self.f.add(f, frequency);
        self.m.add(m, monetary);
        let s = &mut self.sums[segment.index()];
        s.count += 1;
        s.revenue = s.revenue.and_then(|v| v.checked_add(monetary));
        s.recency = s.recency.and_then(|v| v.checked_add(recency));
        s.frequency = s.frequency.and_then(|v| v.checked_add(frequency));
        self.revenue = self.revenue.and_then(|v| v.checked_add(monetary));
        self.rows += 1;
    }

    fn combine(self, other: Tally) -> Tally {
        let revenue = self
            .revenue
            .zip(other.revenue)
            .and_then(|(a, b)| a.checked_add(b));
        let mut sums = self.sums;
        for (s, o) in sums.iter_mut().zip(other.sums) {
            *s = s.combine(o);
        }
        Tally {
            r: self.r.combine(other.r),
            f: self.f.combine(other.f),
            m: self.m.combine(other.m),
            sums,
            revenue,
            rows: self.rows + other.rows,
        }
    }

    fn cut_points(&self) -> CutPoints {
        CutPoints {
            recency: self.r.list(|v| v),
            frequency: self.f.list(|v| v),
            monetary: self.m.list(|v: Money| v.to_fixed(2)),
        }
    }

    /// Per-segment figures; `total_revenue` is the checked Σ monetary of
    /// all customers.
    fn segment_rows(&self, total_revenue: Money) -> Result<Vec<SegmentRow>> {
        let total_customers = self.rows as i128;
        let mut rows: Vec<SegmentRow> = Vec::new();
        for (seg, s) in Segment::ALL.into_iter().zip(self.sums) {
            if s.count == 0 {
                continue;
            }
            let overflow = |figure: &str| Error::Overflow {
                what: format!("the {figure} of segment {seg}"),
            };
            let count = s.count as i128;
            let revenue = s.revenue.ok_or_else(|| overflow("revenue"))?;
            let recency_sum = s.recency.ok_or_else(|| overflow("sum of recencies"))?;
            let frequency_sum = s.frequency.ok_or_else(|| overflow("sum of frequencies"))?;
            rows.push(SegmentRow {
                segment: seg,
                customers: s.count,
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
}

/// The cut points of scored customers: per score, the smallest and largest
/// recency, frequency and monetary among the customers that got it.
pub fn cut_points(customers: &[CustomerRow]) -> CutPoints {
    Tally::of(customers).cut_points()
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

    fn result_of_ids(ids: &[&str]) -> RfmResult {
        let country: Arc<str> = "France".into();
        RfmResult {
            as_of: 1,
            latest_purchase: 0,
            customers: ids
                .iter()
                .map(|id| CustomerRow {
                    customer_id: id.to_string(),
                    recency: 1,
                    frequency: 1,
                    monetary: Money::ZERO,
                    first_purchase: 0,
                    last_purchase: 0,
                    country: country.clone(),
                    r: 1,
                    f: 1,
                    m: 1,
                    segment: Segment::Champions,
                })
                .collect(),
            segments: Vec::new(),
            revenue: Money::ZERO,
            ledger: Default::default(),
            cut_points: Default::default(),
        }
    }

    /// Rows of varied scores, segments and figures (`n` of them).
    fn varied_rows(n: i64) -> Vec<CustomerRow> {
        let country: Arc<str> = "France".into();
        (0..n)
            .map(|i| CustomerRow {
                customer_id: format!("{i:06}"),
                recency: 1 + (i * 37) % 400,
                frequency: 1 + (i as u64 * 13) % 90,
                monetary: Money(((i * 7_919) % 100_000 + 1) as i128 * money::ONE / 100),
                first_purchase: 0,
                last_purchase: 0,
                country: country.clone(),
                r: (i % 5 + 1) as u8,
                f: ((i / 5) % 5 + 1) as u8,
                m: ((i / 25) % 5 + 1) as u8,
                segment: Segment::ALL[(i % 10) as usize],
            })
            .collect()
    }

    /// Asserts that two tallies count the same rows and give the same
    /// revenue, cut points and segments' figures.
    fn assert_same_figures(t: &Tally, expected: &Tally, revenue: Money) {
        assert_eq!(t.rows, expected.rows);
        assert_eq!(t.revenue, expected.revenue);
        assert_eq!(t.cut_points(), expected.cut_points());
        assert_eq!(
            t.segment_rows(revenue).unwrap(),
            expected.segment_rows(revenue).unwrap()
        );
    }

    #[test]
    fn tallies_of_blocks_combine_into_the_tally_of_all_rows() {
        let rows = varied_rows(3 * ROWS_PER_TASK as i64 + 77);
        let whole = Tally::of(&rows);
        assert_eq!(whole.rows, rows.len() as u64);
        // By hand: the revenue, a segment's sums and a score's bounds.
        let revenue = Money::checked_sum(rows.iter().map(|c| c.monetary)).unwrap();
        assert_eq!(whole.revenue, Some(revenue));
        let champions: Vec<&CustomerRow> = rows
            .iter()
            .filter(|c| c.segment == Segment::Champions)
            .collect();
        let sums = whole.sums[Segment::Champions.index()];
        assert_eq!(sums.count, champions.len() as u64);
        assert_eq!(
            sums.recency,
            Some(champions.iter().map(|c| c.recency).sum())
        );
        let r5: Vec<i64> = rows
            .iter()
            .filter(|c| c.r == 5)
            .map(|c| c.recency)
            .collect();
        let (lo, hi) = (*r5.iter().min().unwrap(), *r5.iter().max().unwrap());
        assert!(whole.cut_points().recency.contains(&(5, lo, hi)));
        // Blocks of any cut, combined in order or not, give the same.
        for size in [1, 7, ROWS_PER_TASK, rows.len()] {
            let blocks: Vec<Tally> = rows.chunks(size).map(Tally::of).collect();
            let combined = blocks
                .iter()
                .cloned()
                .fold(Tally::default(), Tally::combine);
            let reversed = blocks
                .into_iter()
                .rev()
                .fold(Tally::default(), Tally::combine);
            for t in [combined, reversed] {
                assert_same_figures(&t, &whole, revenue);
            }
        }
        // The tally of the metrics' and scores' columns is the rows' tally
        // (rows whose segment is their scores', as scoring makes them).
        let rows: Vec<CustomerRow> = rows
            .into_iter()
            .map(|c| CustomerRow {
                segment: Segment::of(c.r, c.f),
                ..c
            })
            .collect();
        let whole = Tally::of(&rows);
        let metrics = Metrics {
            recency: rows.iter().map(|c| c.recency).collect(),
            frequency: rows.iter().map(|c| c.frequency).collect(),
            monetary: rows.iter().map(|c| c.monetary).collect(),
        };
        let scores = Scores {
            r: rows.iter().map(|c| c.r).collect(),
            f: rows.iter().map(|c| c.f).collect(),
            m: rows.iter().map(|c| c.m).collect(),
        };
        assert_same_figures(&Tally::of_columns(&metrics, &scores), &whole, revenue);
        // A sum out of range is an error naming the segment, not a figure.
        let mut huge = varied_rows(20);
        for c in &mut huge {
            c.monetary = Money(Money::MAX.0 / 3);
            c.segment = Segment::Champions;
        }
        let t = huge
            .chunks(3)
            .map(Tally::of)
            .fold(Tally::default(), Tally::combine);
        assert_eq!(t.revenue, None);
        let err = t.segment_rows(Money::ZERO).unwrap_err();
        assert!(
            err.to_string().contains("revenue of segment Champions"),
            "{err}"
        );
    }

    #[test]
    fn a_results_size_counts_its_rows_and_each_ids_text() {
        let row = std::mem::size_of::<CustomerRow>() as u64;
        assert_eq!(result_of_ids(&[]).heap_bytes(), 0);
        // Two rows of short ids: the rows, and a 16-byte block for each id.
        assert_eq!(
            result_of_ids(&["12345", "12346"]).heap_bytes(),
            (2 * row).next_multiple_of(16) + 2 * 16
        );
        // A long id takes its own length, rounded up.
        let long = "x".repeat(100);
        assert_eq!(
            result_of_ids(&[&long]).heap_bytes(),
            row.next_multiple_of(16) + 112
        );
    }
}
