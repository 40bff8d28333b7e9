//! `rfm runs` and `rfm diff`: the run history and the segment movement
//! between two runs, from PostgreSQL when a database URL is set, else from
//! the run folders under the results root.

use std::fmt::Write as _;

use anyhow::Result;
use rfm_core::money::Money;
use rfm_core::text::escape_controls;
use rfm_core::Segment;
use rfm_runs::{RunEntry, Status};
use serde::Serialize;

use crate::cli::{DiffArgs, RunsArgs};
use crate::inspect::{emit, emit_text};
use crate::results::Source;

/// One line of `rfm runs`, from either source.
#[derive(Debug, Serialize)]
struct RunRow {
    run_id: String,
    /// `published`, `running`, `failed`, `abandoned` or `skipped` in
    /// PostgreSQL; `succeeded`, `failed` or `skipped` in a results folder.
    status: Status,
    started_at: String,
    finished_at: Option<String>,
    input: Vec<String>,
    as_of: Option<String>,
    lines_read: u64,
    purchase_lines: u64,
    malformed: u64,
    customers: u64,
    revenue: Option<String>,
    error: Option<String>,
    /// The run `rfm segments` shows by default.
    latest: bool,
}

impl From<RunEntry> for RunRow {
    fn from(e: RunEntry) -> RunRow {
        let finished_at = e.finished_at().map(str::to_string);
        let r = e.report;
        RunRow {
            run_id: r.run_id,
            status: e.status,
            started_at: r.started_at,
            finished_at,
            input: r.input,
            as_of: r.as_of,
            lines_read: r.lines_read,
            purchase_lines: r.purchase_lines,
            malformed: r.malformed,
            customers: r.customers,
            revenue: r.revenue,
            error: r.error,
            latest: e.latest,
        }
    }
}

/// `rfm runs`: every run, newest first; `*` marks the latest published
/// (or, in a results folder, succeeded) one.
pub fn runs(args: RunsArgs) -> Result<()> {
    let source = Source::open(args.from.database_url.as_deref(), &args.from.results_root)?;
    let listing = source.runs.list().map_err(|e| source.fail(e))?;
    for problem in &listing.skipped {
        eprintln!(
            "{}",
            rfm_core::text::escape_for_terminal(&format!("skipped: {problem}"))
        );
    }
    let place = source.runs.describe();
    let runs: Vec<RunRow> = listing.runs.into_iter().map(RunRow::from).collect();
    if args.json {
        return emit(serde_json::to_string_pretty(&runs)? + "\n");
    }
    if runs.is_empty() {
        return emit_text(format!("no runs in {place}\n"));
    }
    let mut out = String::new();
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
            rfm_core::figures::count(r.customers),
            r.revenue
                .as_deref()
                .map_or("-".into(), rfm_core::figures::group),
            escape_controls(&r.input.join(" ")),
        )?;
        if let Some(e) = &r.error {
            // A skipped run's `error` is why it did not run.
            let label = if r.status == Status::Skipped {
                "reason"
            } else {
                "error"
            };
            writeln!(out, "    {label}: {}", escape_controls(e))?;
        }
    }
    emit_text(out)
}

/// `rfm diff [RUN_A [RUN_B]]`: customers and revenue moving between
/// segments; without ids, between the two latest runs with results.
pub fn diff(args: DiffArgs) -> Result<()> {
    let source = Source::open(args.from.database_url.as_deref(), &args.from.results_root)?;
    let (run_a, run_b) = match (&args.run_a, &args.run_b) {
        (Some(a), Some(b)) => (a.clone(), b.clone()),
        (a, _) => {
            // The latest runs with results: a failed run has none to compare.
            let listing = source.runs.list().map_err(|e| source.fail(e))?;
            let ids: Vec<String> = listing
                .runs
                .iter()
                .filter(|r| r.status.has_results())
                .map(|r| r.run_id().to_string())
                .collect();
            let place = source.runs.describe();
            let needed = if a.is_some() { 1 } else { 2 };
            if ids.len() < needed {
                return Err(crate::cluster::JobError {
                    code: crate::exit::INPUT,
                    message: format!(
                        "rfm diff needs {needed} run(s) with results in {place}, found {}; \
                         give the run ids (see `rfm runs`)",
                        ids.len()
                    ),
                }
                .into());
            }
            match a {
                Some(a) => (a.clone(), ids[0].clone()),
                None => (ids[1].clone(), ids[0].clone()),
            }
        }
    };
    let a = source.results(Some(&run_a))?;
    let b = source.results(Some(&run_b))?;
    let mut moves = rfm_runs::movement(&a.customers, &b.customers).map_err(|e| source.fail(e))?;
    let (a, b) = (a.run_id(), b.run_id());
    let summary = summarise(&moves);
    if args.changed_only {
        moves.retain(|m| m.from != m.to);
    }
    if args.json {
        return emit(serde_json::to_string_pretty(&moves)? + "\n");
    }
    let mut out = String::new();
    writeln!(out, "{summary}")?;
    writeln!(out, "segment movement from {a} to {b}")?;
    writeln!(
        out,
        "{:<20} {:<20} {:>9} {:>14} {:>14}",
        "FROM", "TO", "CUSTOMERS", "REVENUE A", "REVENUE B"
    )?;
    for m in &moves {
        writeln!(
            out,
            "{:<20} {:<20} {:>9} {:>14} {:>14}",
            m.from.map_or("(new)", Segment::name),
            m.to.map_or("(gone)", Segment::name),
            rfm_core::figures::count(m.customers),
            rfm_core::figures::money(m.revenue_from),
            rfm_core::figures::money(m.revenue_to),
        )?;
    }
    emit_text(out)
}

/// The line `rfm diff` opens with: `N of M customers changed segment;
/// revenue that moved: X (Y in the earlier run)`. M counts the customers of
/// either run; new and gone customers changed segment; the revenue is that
/// of the customers who changed, in the later run (and in the earlier).
fn summarise(moves: &[rfm_runs::Move]) -> String {
    let mut total = 0u64;
    let mut changed = 0u64;
    let (mut later, mut earlier) = (Money::ZERO, Money::ZERO);
    for m in moves {
        total += m.customers;
        if m.from != m.to {
            changed += m.customers;
            later = later.checked_add(m.revenue_to).unwrap_or(later);
            earlier = earlier.checked_add(m.revenue_from).unwrap_or(earlier);
        }
    }
    format!(
        "{changed} of {total} customers changed segment; revenue that moved: {} ({} in the earlier run)",
        later.to_fixed(2),
        earlier.to_fixed(2)
    )
}
