//! Reading a finished run back — from PostgreSQL when a database URL is set,
//! else from the run directories under the results root (`rfm-out/<run id>/`
//! with `run.json`, `customers.csv` and `segments.csv`) — for `rfm segments`,
//! `customers`, `customer` and `export`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rfm_core::output::{CUSTOMERS_FILE, REPORT_FILE, SEGMENTS_FILE};
use rfm_core::report::RunReport;
use rfm_store::{CustomerQuery, CustomerRecord, SegmentFigures, Store};

use crate::cli::ResultsArgs;
use crate::cluster::JobError;
use crate::exit;

/// A run's results.
pub struct RunData {
    pub run_id: String,
    /// Where they were read (a directory or a database).
    pub place: String,
    pub segments: Vec<SegmentFigures>,
    /// In customer id order.
    pub customers: Vec<CustomerRecord>,
}

fn not_found(message: String) -> anyhow::Error {
    JobError {
        code: exit::INPUT,
        message,
    }
    .into()
}

/// Reads the run `args` names (or the latest one).
pub fn load(args: &ResultsArgs) -> Result<RunData> {
    match args
        .database_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
    {
        Some(url) => from_database(url, args.run.as_deref()),
        None => from_directory(&args.results_root, args.run.as_deref()),
    }
}

fn from_database(url: &str, run: Option<&str>) -> Result<RunData> {
    let mut store = Store::connect(url)?;
    let info = match run {
        Some(id) => store.run(id)?,
        None => store.latest_run()?.ok_or_else(|| {
            not_found(format!(
                "no published run in the database at {}; publish one with `rfm run FILE --database-url URL`",
                store.target()
            ))
        })?,
    };
    if info.status != rfm_store::RunStatus::Published {
        return Err(not_found(format!(
            "run {} is {} in the database at {}: it has no results",
            info.run_id,
            info.status,
            store.target()
        )));
    }
    let customers = store.customers(&CustomerQuery {
        run: Some(info.id),
        ..Default::default()
    })?;
    let segments = store.segments(info.id)?;
    Ok(RunData {
        run_id: info.run_id,
        place: format!("the database at {}", store.target()),
        segments,
        customers,
    })
}

/// A run folder under the results root.
pub struct LocalRun {
    pub report: RunReport,
    pub dir: PathBuf,
    /// Succeeded, with its customers.csv: its results can be read.
    pub usable: bool,
}

/// Every run folder under `root` (a folder with a readable `run.json`),
/// oldest first: by start time, then by when `run.json` was written (runs
/// started in the same second), then by run id.
pub fn scan_runs(root: &Path) -> Result<Vec<LocalRun>> {
    let entries = std::fs::read_dir(root).map_err(|e| {
        not_found(format!(
            "cannot read the results root {}: {e}; run `rfm run FILE` first, or pass --results-root DIR or --database-url URL",
            root.display()
        ))
    })?;
    let mut runs = Vec::new();
    for entry in entries.flatten() {
        // Hidden names are rfm's temporary folders (a run being written, or
        // one a crash left behind), never runs.
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let dir = entry.path();
        let report_path = dir.join(REPORT_FILE);
        let Ok(text) = std::fs::read_to_string(&report_path) else {
            continue;
        };
        let Ok(report) = serde_json::from_str::<RunReport>(&text) else {
            continue;
        };
        let written = std::fs::metadata(&report_path)
            .and_then(|m| m.modified())
            .ok();
        let usable = report.status == "succeeded" && dir.join(CUSTOMERS_FILE).is_file();
        runs.push((
            written,
            LocalRun {
                report,
                dir,
                usable,
            },
        ));
    }
    runs.sort_by(|(wa, a), (wb, b)| {
        (&a.report.started_at, wa, &a.report.run_id).cmp(&(
            &b.report.started_at,
            wb,
            &b.report.run_id,
        ))
    });
    Ok(runs.into_iter().map(|(_, r)| r).collect())
}

/// The run directories under `root` with a succeeded `run.json`, oldest first.
pub fn local_runs(root: &Path) -> Result<Vec<(RunReport, PathBuf)>> {
    Ok(scan_runs(root)?
        .into_iter()
        .filter(|r| r.usable)
        .map(|r| (r.report, r.dir))
        .collect())
}

fn from_directory(root: &Path, run: Option<&str>) -> Result<RunData> {
    let runs = local_runs(root)?;
    let (report, dir) = match run {
        Some(id) => runs
            .into_iter()
            .find(|(r, d)| r.run_id == id || d.file_name().is_some_and(|n| n == id))
            .ok_or_else(|| {
                not_found(format!(
                    "no succeeded run {id:?} under {}; `rfm runs --results-root DIR` lists the runs",
                    root.display()
                ))
            })?,
        None => runs.into_iter().last().ok_or_else(|| {
            not_found(format!(
                "no succeeded run under {}; run `rfm run FILE` first, or pass --results-root DIR or --database-url URL",
                root.display()
            ))
        })?,
    };
    Ok(RunData {
        run_id: report.run_id,
        place: dir.display().to_string(),
        segments: read_segments(&dir.join(SEGMENTS_FILE))?,
        customers: read_customers(&dir.join(CUSTOMERS_FILE))?,
    })
}

fn bad_file(path: &Path, line: u64, what: &str) -> anyhow::Error {
    not_found(format!("{}:{line}: {what}", path.display()))
}

fn reader(path: &Path) -> Result<csv::Reader<std::fs::File>> {
    csv::Reader::from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))
        .map_err(|e| not_found(format!("{e:#}")))
}

fn read_customers(path: &Path) -> Result<Vec<CustomerRecord>> {
    let mut out = Vec::new();
    for (i, row) in reader(path)?.records().enumerate() {
        let line = i as u64 + 2;
        let row = row.map_err(|e| bad_file(path, line, &e.to_string()))?;
        let field = |k: usize| row.get(k).unwrap_or_default().to_string();
        let number = |k: usize| -> Result<i64> {
            field(k)
                .parse()
                .map_err(|_| bad_file(path, line, &format!("column {} is not a number", k + 1)))
        };
        if row.len() != rfm_core::output::CUSTOMERS_HEADER.len() {
            return Err(bad_file(path, line, "not a customers.csv row"));
        }
        out.push(CustomerRecord {
            customer_id: field(0),
            recency: number(1)? as i32,
            frequency: number(2)?,
            monetary: field(3),
            monetary_exact: field(3),
            first_purchase: field(4),
            last_purchase: field(5),
            country: field(6),
            r: number(7)? as i16,
            f: number(8)? as i16,
            m: number(9)? as i16,
            rfm_score: field(10),
            segment: field(11),
        });
    }
    Ok(out)
}

fn read_segments(path: &Path) -> Result<Vec<SegmentFigures>> {
    let mut out = Vec::new();
    for (i, row) in reader(path)?.records().enumerate() {
        let line = i as u64 + 2;
        let row = row.map_err(|e| bad_file(path, line, &e.to_string()))?;
        let field = |k: usize| row.get(k).unwrap_or_default().to_string();
        out.push(SegmentFigures {
            segment: field(0),
            customers: field(1)
                .parse()
                .map_err(|_| bad_file(path, line, "customers is not a number"))?,
            customers_share: field(2),
            revenue: field(3),
            revenue_share: field(4),
            avg_recency: field(5),
            avg_frequency: field(6),
            avg_monetary: field(7),
        });
    }
    Ok(out)
}

/// A decimal text as a number for ordering (money is published with 2 decimals).
pub fn amount(text: &str) -> f64 {
    text.parse().unwrap_or(0.0)
}
