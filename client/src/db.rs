//! The database side of `rfm`: publishing a run to PostgreSQL (`rfm run
//! --database-url`), listing runs (`rfm runs`) and segment movement between
//! two runs (`rfm diff`). The SQL lives in rfm-store.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::{Context, Result};
use rfm_core::report::RunReport;
use rfm_core::RfmResult;
use rfm_store::{RunId, Store};

use crate::cli::{DiffArgs, RunsArgs};

/// A run being recorded in the database: connected before any work, marked
/// `failed` unless it is published (also when dropped early).
pub struct Publisher {
    store: Store,
    run: RunId,
    started: RunReport,
    done: bool,
}

impl Publisher {
    /// Connects (running migrations) and records the run as `running`, or
    /// does nothing without a URL.
    pub fn start(url: Option<&str>, report: &RunReport) -> Result<Option<Publisher>> {
        let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let mut store = Store::connect(url)?;
        let run = store.begin_run(report)?;
        Ok(Some(Publisher {
            store,
            run,
            started: report.clone(),
            done: false,
        }))
    }

    /// Loads the result and publishes the run; on failure records it `failed`.
    pub fn publish(mut self, report: &RunReport, result: &RfmResult) -> Result<()> {
        self.done = true;
        let outcome = self.store.publish(self.run, report, result);
        if let Err(e) = &outcome {
            let mut failed = report.clone();
            failed.status = "failed".into();
            failed.error = Some(format!("publishing failed: {e}"));
            self.record_failure(&failed);
        }
        Ok(outcome?)
    }

    /// Records the run as `failed` with its report (best effort: a warning if
    /// the database cannot be reached).
    pub fn fail(mut self, report: &RunReport) {
        self.done = true;
        let mut failed = report.clone();
        failed.status = "failed".into();
        self.record_failure(&failed);
    }

    fn record_failure(&mut self, report: &RunReport) {
        if let Err(e) = self.store.fail(self.run, report) {
            eprintln!(
                "warning: run {} could not be marked failed in the database: {e}",
                report.run_id
            );
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if !self.done {
            let mut failed = self.started.clone();
            failed.status = "failed".into();
            failed.finished_at = rfm_core::report::utc_now();
            failed.error = Some("the run stopped before its result was ready".into());
            self.record_failure(&failed);
        }
    }
}

/// `rfm runs`: every run, newest first; `*` marks the latest published one.
pub fn runs(args: RunsArgs) -> Result<()> {
    let mut store = Store::connect(&args.database_url)?;
    let runs = store.runs()?;
    let mut out = String::new();
    if args.json {
        return emit(serde_json::to_string_pretty(&runs)? + "\n");
    }
    if runs.is_empty() {
        return emit(format!("no runs in {}\n", store.target()));
    }
    writeln!(
        out,
        "  {:<28} {:<9} {:<20} {:<10} {:>9} {:>14}  INPUT",
        "RUN", "STATUS", "STARTED", "AS-OF", "CUSTOMERS", "REVENUE"
    )?;
    for r in &runs {
        writeln!(
            out,
            "{} {:<28} {:<9} {:<20} {:<10} {:>9} {:>14}  {}",
            if r.latest { '*' } else { ' ' },
            r.run_id,
            r.status,
            r.started_at,
            r.as_of.as_deref().unwrap_or("-"),
            r.customers,
            r.revenue.as_deref().unwrap_or("-"),
            r.input.join(" "),
        )?;
        if let Some(e) = &r.error {
            writeln!(out, "    error: {e}")?;
        }
    }
    emit(out)
}

/// `rfm diff RUN_A RUN_B`: customers and revenue moving between segments.
pub fn diff(args: DiffArgs) -> Result<()> {
    let mut store = Store::connect(&args.database_url)?;
    let a = store.run(&args.run_a)?;
    let b = store.run(&args.run_b)?;
    let moves = store
        .diff(a.id, b.id)
        .with_context(|| format!("cannot compare runs {} and {}", a.run_id, b.run_id))?;
    if args.json {
        return emit(serde_json::to_string_pretty(&moves)? + "\n");
    }
    let mut out = String::new();
    writeln!(out, "segment movement from {} to {}", a.run_id, b.run_id)?;
    writeln!(
        out,
        "{:<20} {:<20} {:>9} {:>14} {:>14}",
        "FROM", "TO", "CUSTOMERS", "REVENUE A", "REVENUE B"
    )?;
    for m in &moves {
        writeln!(
            out,
            "{:<20} {:<20} {:>9} {:>14} {:>14}",
            m.from.as_deref().unwrap_or("(new)"),
            m.to.as_deref().unwrap_or("(gone)"),
            m.customers,
            m.revenue_from,
            m.revenue_to,
        )?;
    }
    emit(out)
}

/// Writes to standard output; a closed pipe (`| head`) is not an error.
fn emit(text: String) -> Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write to standard output"))
        }
        _ => Ok(()),
    }
}
