//! Readers of a run folder's files: `run.json`, `customers.csv` and
//! `segments.csv` into the read side's typed rows. Every value is checked
//! (scores 1–5, counts not negative, exact decimals, known segments); a bad
//! one is refused with the file, the line and the column.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use rfm_core::money::{self, Money};
use rfm_core::output::{CUSTOMERS_HEADER, SEGMENTS_HEADER};
use rfm_core::report::RunReport;
use rfm_core::Segment;

use crate::error::{Error, Result};
use crate::model::{Customer, SegmentSummary};

/// Reads a `run.json`.
pub fn read_report(path: &Path) -> Result<RunReport> {
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_reader(BufReader::new(file)).map_err(|source| Error::Report {
        path: path.to_path_buf(),
        source,
    })
}

/// One CSV line being read: the file and line number for errors.
struct Line<'a> {
    path: &'a Path,
    line: u64,
    record: csv::StringRecord,
}

impl Line<'_> {
    fn text(&self, k: usize) -> &str {
        self.record.get(k).unwrap_or_default()
    }

    fn bad(&self, k: usize, column: &'static str, expected: &'static str) -> Error {
        Error::Field {
            path: self.path.to_path_buf(),
            line: self.line,
            column,
            value: self.text(k).to_string(),
            expected,
        }
    }

    fn parse<T: std::str::FromStr>(
        &self,
        k: usize,
        column: &'static str,
        expected: &'static str,
    ) -> Result<T> {
        self.text(k)
            .parse()
            .map_err(|_| self.bad(k, column, expected))
    }

    fn money(&self, k: usize, column: &'static str) -> Result<Money> {
        money::parse_price(self.text(k).as_bytes(), b'.')
            .ok_or_else(|| self.bad(k, column, "a decimal number"))
    }

    fn score(&self, k: usize, column: &'static str) -> Result<u8> {
        self.text(k)
            .parse::<u8>()
            .ok()
            .filter(|s| (1..=5).contains(s))
            .ok_or_else(|| self.bad(k, column, "a score from 1 to 5"))
    }

    fn segment(&self, k: usize) -> Result<Segment> {
        Segment::from_name(self.text(k))
            .ok_or_else(|| self.bad(k, "segment", "one of the ten segment names"))
    }

    fn timestamp(&self, k: usize, column: &'static str) -> Result<i64> {
        rfm_core::date::parse_auto(self.text(k).as_bytes())
            .ok_or_else(|| self.bad(k, column, "a time as YYYY-MM-DD HH:MM:SS"))
    }
}

/// Reads the lines of a CSV file with `header`, each through `row`.
fn read_csv<T>(path: &Path, header: &[&str], row: impl Fn(&Line) -> Result<T>) -> Result<Vec<T>> {
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(BufReader::new(file));
    let csv_err = |line: u64, e: csv::Error| Error::Csv {
        path: path.to_path_buf(),
        line,
        detail: e.to_string(),
    };
    let found = reader.headers().map_err(|e| csv_err(1, e))?;
    if found.iter().ne(header.iter().copied()) {
        return Err(Error::Csv {
            path: path.to_path_buf(),
            line: 1,
            detail: format!(
                "the header is not {}; is this a file written by `rfm run --out`?",
                header.join(",")
            ),
        });
    }
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i as u64 + 2;
        let record = record.map_err(|e| csv_err(line, e))?;
        if record.len() != header.len() {
            return Err(Error::Csv {
                path: path.to_path_buf(),
                line,
                detail: format!("{} fields, expected {}", record.len(), header.len()),
            });
        }
        out.push(row(&Line { path, line, record })?);
    }
    Ok(out)
}

/// Reads a `customers.csv`.
pub fn read_customers(path: &Path) -> Result<Vec<Customer>> {
    read_csv(path, &CUSTOMERS_HEADER, |l| {
        let c = Customer {
            customer_id: l.text(0).to_string(),
            recency: l.parse(1, "recency", "a whole number of days")?,
            frequency: l.parse(2, "frequency", "a count (a whole number, 0 or more)")?,
            monetary: l.money(3, "monetary")?,
            first_purchase: l.timestamp(4, "first_purchase")?,
            last_purchase: l.timestamp(5, "last_purchase")?,
            country: l.text(6).to_string(),
            r: l.score(7, "r")?,
            f: l.score(8, "f")?,
            m: l.score(9, "m")?,
            segment: l.segment(11)?,
        };
        if l.text(10) != c.rfm_score() {
            return Err(l.bad(10, "rfm_score", "the scores r, f and m together"));
        }
        Ok(c)
    })
}

/// Reads a `segments.csv`.
pub fn read_segments(path: &Path) -> Result<Vec<SegmentSummary>> {
    read_csv(path, &SEGMENTS_HEADER, |l| {
        Ok(SegmentSummary {
            segment: l.segment(0)?,
            customers: l.parse(1, "customers", "a count (a whole number, 0 or more)")?,
            customers_share: l.text(2).to_string(),
            revenue: l.money(3, "revenue")?,
            revenue_share: l.text(4).to_string(),
            avg_recency: l.text(5).to_string(),
            avg_frequency: l.text(6).to_string(),
            avg_monetary: l.text(7).to_string(),
        })
    })
}
