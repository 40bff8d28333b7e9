//! The dashboard's data model — one run's result as read from its files
//! (`customers.csv`, `segments.csv`, `run.json`) — and the readers that build
//! it. Monetary values keep their exact text and an exact [`Money`] for sums
//! and sorting.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use rfm_core::money::{self, Money};
use rfm_core::output::{CUSTOMERS_FILE, REPORT_FILE, SEGMENTS_FILE};
use rfm_core::report::RunReport;
use rfm_core::Segment;
use serde::Deserialize;

use crate::analysis::{self, CutPoints, Grid, Ranks};

/// Why a run's files cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Csv { path: PathBuf, source: csv::Error },
    #[error("{path} is not a valid run report (run.json): {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}, line {line}: column {column} has {value:?}, which is not {expected}")]
    Field {
        path: PathBuf,
        line: u64,
        column: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{path}: no run found (expected run.json, as written by `rfm run --out DIR`, or subfolders holding one)")]
    NoRun { path: PathBuf },
    /// Reading from the PostgreSQL store failed (the error names the server).
    #[error("{0}")]
    Database(#[from] rfm_store::Error),
    #[error(
        "run {run_id} in the database at {target}: {column} is {value:?}, which is not {expected}"
    )]
    DatabaseValue {
        target: String,
        run_id: String,
        column: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("the database at {target} holds no published run yet (publish one with `rfm run --database-url URL`)")]
    NoDatabaseRun { target: String },
}

impl DataError {
    /// True when the source lost its connection: the same request may succeed
    /// later, so it is worth retrying.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            DataError::Database(e) => e.is_connection_lost(),
            _ => false,
        }
    }
}

/// One row of `customers.csv`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct CustomerRecord {
    pub customer_id: String,
    pub recency: i64,
    pub frequency: u64,
    /// Exact text as written (two decimals).
    #[serde(rename = "monetary")]
    pub monetary_text: String,
    #[serde(skip)]
    pub monetary: Money,
    pub first_purchase: String,
    pub last_purchase: String,
    pub country: String,
    pub r: u8,
    pub f: u8,
    pub m: u8,
    #[serde(rename = "segment")]
    pub segment_name: String,
    #[serde(skip, default = "default_segment")]
    pub segment: Segment,
}

fn default_segment() -> Segment {
    Segment::Hibernating
}

impl CustomerRecord {
    /// The three scores as text, e.g. `545`.
    pub fn rfm_score(&self) -> String {
        format!("{}{}{}", self.r, self.f, self.m)
    }

    /// The monetary value as a float, for binning only (never for display).
    pub fn monetary_f64(&self) -> f64 {
        self.monetary.0 as f64 / money::ONE as f64
    }
}

/// One row of `segments.csv`; figures stay as published text.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct SegmentRecord {
    #[serde(rename = "segment")]
    pub name: String,
    #[serde(skip, default = "default_segment")]
    pub segment: Segment,
    pub customers: u64,
    pub customers_share: String,
    pub revenue: String,
    pub revenue_share: String,
    pub avg_recency: String,
    pub avg_frequency: String,
    pub avg_monetary: String,
}

/// A run as listed in the history: enough to show and to load it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunEntry {
    /// What the source needs to load the run (a folder for result files).
    pub key: String,
    /// Short label (the folder name).
    pub label: String,
    pub report: RunReport,
}

/// A loaded run with the figures derived from its customers.
#[derive(Clone, Debug)]
pub struct RunData {
    pub entry: RunEntry,
    /// Sorted by the engine's order (customer id).
    pub customers: Vec<CustomerRecord>,
    /// In [`Segment::ALL`] order.
    pub segments: Vec<SegmentRecord>,
    pub total_revenue: Money,
    pub grid: Grid,
    pub cut_points: CutPoints,
    /// Each customer's rank on each metric (same order as `customers`).
    pub ranks: Ranks,
}

impl RunData {
    /// Builds a run from its parts and derives the grid and cut points.
    pub fn new(
        entry: RunEntry,
        customers: Vec<CustomerRecord>,
        mut segments: Vec<SegmentRecord>,
    ) -> RunData {
        segments.sort_by_key(|s| Segment::ALL.iter().position(|x| *x == s.segment));
        let total_revenue = Money(customers.iter().map(|c| c.monetary.0).sum());
        let grid = analysis::grid(&customers);
        let cut_points = analysis::cut_points(&customers);
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
        &self.entry.report.run_id
    }

    pub fn segment(&self, segment: Segment) -> Option<&SegmentRecord> {
        self.segments.iter().find(|s| s.segment == segment)
    }
}

/// Reads `run.json` of a run folder.
pub fn read_report(dir: &Path) -> Result<RunReport, DataError> {
    let path = dir.join(REPORT_FILE);
    let file = File::open(&path).map_err(|source| DataError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_reader(BufReader::new(file)).map_err(|source| DataError::Json { path, source })
}

fn csv_reader(path: &Path) -> Result<csv::Reader<File>, DataError> {
    let file = File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(csv::ReaderBuilder::new().from_reader(file))
}

fn segment_of(path: &Path, line: u64, name: &str) -> Result<Segment, DataError> {
    Segment::from_name(name).ok_or_else(|| DataError::Field {
        path: path.to_path_buf(),
        line,
        column: "segment",
        value: name.to_string(),
        expected: "one of the ten segment names",
    })
}

/// Reads `customers.csv`; monetary text is parsed exactly.
pub fn read_customers(dir: &Path) -> Result<Vec<CustomerRecord>, DataError> {
    let path = dir.join(CUSTOMERS_FILE);
    let mut reader = csv_reader(&path)?;
    let mut out = Vec::new();
    for (i, row) in reader.deserialize::<CustomerRecord>().enumerate() {
        let line = i as u64 + 2;
        let mut c = row.map_err(|source| DataError::Csv {
            path: path.clone(),
            source,
        })?;
        c.monetary = money::parse_price(c.monetary_text.as_bytes(), b'.').ok_or_else(|| {
            DataError::Field {
                path: path.clone(),
                line,
                column: "monetary",
                value: c.monetary_text.clone(),
                expected: "a decimal number",
            }
        })?;
        c.segment = segment_of(&path, line, &c.segment_name)?;
        for (column, score) in [("r", c.r), ("f", c.f), ("m", c.m)] {
            if !(1..=5).contains(&score) {
                return Err(DataError::Field {
                    path: path.clone(),
                    line,
                    column,
                    value: score.to_string(),
                    expected: "a score from 1 to 5",
                });
            }
        }
        out.push(c);
    }
    Ok(out)
}

/// Reads `segments.csv`.
pub fn read_segments(dir: &Path) -> Result<Vec<SegmentRecord>, DataError> {
    let path = dir.join(SEGMENTS_FILE);
    let mut reader = csv_reader(&path)?;
    let mut out = Vec::new();
    for (i, row) in reader.deserialize::<SegmentRecord>().enumerate() {
        let mut s = row.map_err(|source| DataError::Csv {
            path: path.clone(),
            source,
        })?;
        s.segment = segment_of(&path, i as u64 + 2, &s.name)?;
        out.push(s);
    }
    Ok(out)
}
