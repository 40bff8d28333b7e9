//! The read side's types, the same for every source: a run as listed
//! ([`RunEntry`]), a loaded run ([`Run`]), one customer ([`Customer`]) and one
//! segment ([`SegmentSummary`]).

use rfm_core::date::{self, Timestamp};
use rfm_core::money::Money;
use rfm_core::report::RunReport;
use rfm_core::score::CutPoints;
use rfm_core::Segment;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

/// A run's status, as its report or the database says it (one type for
/// both: [`rfm_core::RunStatus`]).
pub use rfm_core::RunStatus as Status;

/// A run as listed: enough to show it and to load it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunEntry {
    /// What the source needs to load the run (a folder, or the run id).
    pub key: String,
    /// Short label: the folder name, or the run id.
    pub label: String,
    pub status: Status,
    /// The run's report (`run.json`); its `started_at` and `finished_at`
    /// (UTC, `YYYY-MM-DDTHH:MM:SSZ`) are the run's times.
    pub report: RunReport,
    /// The run readers show when none is named ([`crate::latest`]).
    pub latest: bool,
}

impl RunEntry {
    pub fn run_id(&self) -> &str {
        &self.report.run_id
    }

    pub fn started_at(&self) -> &str {
        &self.report.started_at
    }

    /// `None` while the run is in progress.
    pub fn finished_at(&self) -> Option<&str> {
        Some(self.report.finished_at.as_str()).filter(|t| !t.is_empty())
    }
}

/// The runs of a source, and the problems met while listing them (a run
/// folder whose run.json cannot be read does not hide the others).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Listing {
    /// Newest first.
    pub runs: Vec<RunEntry>,
    pub skipped: Vec<String>,
}

/// One customer of a run, as published (`customers.csv`,
/// `rfm_latest_customers`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    pub customer_id: String,
    /// Days from the last purchase to the as-of date.
    pub recency: i64,
    pub frequency: u64,
    /// Σ quantity × price rounded to 2 decimals, as published.
    pub monetary: Money,
    pub first_purchase: Timestamp,
    pub last_purchase: Timestamp,
    pub country: String,
    /// Scores, each 1–5.
    pub r: u8,
    pub f: u8,
    pub m: u8,
    pub segment: Segment,
}

impl Customer {
    /// The three scores as text, e.g. `545`.
    pub fn rfm_score(&self) -> String {
        format!("{}{}{}", self.r, self.f, self.m)
    }

    /// The monetary value with 2 decimals, as published.
    pub fn monetary_text(&self) -> String {
        self.monetary.to_fixed(2)
    }

    /// The monetary value as a float, for binning only (never for display or sums).
    pub fn monetary_f64(&self) -> f64 {
        self.monetary.0 as f64 / rfm_core::money::ONE as f64
    }
}

impl Serialize for Customer {
    /// The columns of `customers.csv`, numbers as numbers, monetary as its
    /// 2-decimal text.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Customer", 12)?;
        st.serialize_field("customer_id", &self.customer_id)?;
        st.serialize_field("recency", &self.recency)?;
        st.serialize_field("frequency", &self.frequency)?;
        st.serialize_field("monetary", &self.monetary_text())?;
        st.serialize_field(
            "first_purchase",
            &date::format_timestamp(self.first_purchase),
        )?;
        st.serialize_field("last_purchase", &date::format_timestamp(self.last_purchase))?;
        st.serialize_field("country", &self.country)?;
        st.serialize_field("r", &self.r)?;
        st.serialize_field("f", &self.f)?;
        st.serialize_field("m", &self.m)?;
        st.serialize_field("rfm_score", &self.rfm_score())?;
        st.serialize_field("segment", self.segment.name())?;
        st.end()
    }
}

/// One segment of a run, as in `segments.csv`: figures as published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentSummary {
    pub segment: Segment,
    pub customers: u64,
    /// A fraction with 6 decimals.
    pub customers_share: String,
    /// Rounded to 2 decimals, as published.
    pub revenue: Money,
    /// A fraction with 6 decimals; empty when the run's revenue is zero.
    pub revenue_share: String,
    pub avg_recency: String,
    pub avg_frequency: String,
    pub avg_monetary: String,
}

impl Serialize for SegmentSummary {
    /// The columns of `segments.csv`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("SegmentSummary", 8)?;
        st.serialize_field("segment", self.segment.name())?;
        st.serialize_field("customers", &self.customers)?;
        st.serialize_field("customers_share", &self.customers_share)?;
        st.serialize_field("revenue", &self.revenue.to_fixed(2))?;
        st.serialize_field("revenue_share", &self.revenue_share)?;
        st.serialize_field("avg_recency", &self.avg_recency)?;
        st.serialize_field("avg_frequency", &self.avg_frequency)?;
        st.serialize_field("avg_monetary", &self.avg_monetary)?;
        st.end()
    }
}

/// A loaded run.
#[derive(Clone, Debug)]
pub struct Run {
    pub entry: RunEntry,
    /// Where the results were read (a folder, or the database).
    pub place: String,
    /// By customer id (byte order).
    pub customers: Vec<Customer>,
    /// Non-empty segments, by name.
    pub segments: Vec<SegmentSummary>,
    /// As saved with the run, or computed from its customers for a run
    /// saved without them.
    pub cut_points: CutPoints,
}

impl Run {
    pub fn run_id(&self) -> &str {
        self.entry.run_id()
    }

    /// A run without results (failed, running).
    pub(crate) fn empty(entry: RunEntry, place: String) -> Run {
        Run {
            entry,
            place,
            customers: Vec::new(),
            segments: Vec::new(),
            cut_points: CutPoints::default(),
        }
    }
}
