//! The dashboard's data model: a run as the read side ([`rfm_runs`]) gives
//! it — typed customers with exact [`Money`], segments, cut points saved
//! with the run — and the figures the views derive from it (the R × F grid,
//! each customer's ranks, the total revenue).

use std::path::PathBuf;

use rfm_core::money::Money;
use rfm_core::Segment;
pub use rfm_runs::{Customer, RunEntry, SegmentSummary};

use crate::analysis::{self, CutPoints, Grid, Ranks};

/// Why runs cannot be listed or loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Reading the runs failed (the error names the file and line, or the
    /// database and run).
    #[error("{0}")]
    Runs(#[from] rfm_runs::Error),
    #[error("{path}: no run found (expected run.json, as written by `rfm run --out DIR`, or subfolders holding one)")]
    NoRun { path: PathBuf },
    #[error("the database at {target} holds no published run yet (publish one with `rfm run --database-url URL`)")]
    NoDatabaseRun { target: String },
    /// No run could be read; the first problem met.
    #[error("{0}")]
    Skipped(String),
}

impl DataError {
    /// True when the source lost its connection: the same request may succeed
    /// later, so it is worth retrying.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            DataError::Runs(e) => e.is_connection_lost(),
            _ => false,
        }
    }
}

/// A loaded run with the figures derived from its customers.
#[derive(Clone, Debug)]
pub struct RunData {
    pub entry: RunEntry,
    /// Sorted by the engine's order (customer id).
    pub customers: Vec<Customer>,
    /// In [`Segment::ALL`] order.
    pub segments: Vec<SegmentSummary>,
    pub total_revenue: Money,
    pub grid: Grid,
    pub cut_points: CutPoints,
    /// Each customer's rank on each metric (same order as `customers`).
    pub ranks: Ranks,
}

impl RunData {
    /// Builds a run from what the read side loaded and derives the grid and
    /// ranks; the cut points are the run's own.
    pub fn new(run: rfm_runs::Run) -> RunData {
        let rfm_runs::Run {
            entry,
            customers,
            mut segments,
            cut_points,
            ..
        } = run;
        segments.sort_by_key(|s| Segment::ALL.iter().position(|x| *x == s.segment));
        let total_revenue =
            Money::checked_sum(customers.iter().map(|c| c.monetary)).unwrap_or(Money::MAX);
        let grid = analysis::grid(&customers);
        let cut_points = CutPoints::of(&cut_points);
        let ranks = analysis::ranks(&customers);
        RunData {
            entry,
            customers,
            segments,
            total_revenue,
            grid,
            cut_points,
            ranks,
        }
    }

    pub fn run_id(&self) -> &str {
        self.entry.run_id()
    }

    pub fn segment(&self, segment: Segment) -> Option<&SegmentSummary> {
        self.segments.iter().find(|s| s.segment == segment)
    }
}
