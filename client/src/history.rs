//! `rfm runs` and `rfm diff`: the run history and the segment movement
//! between two runs, from PostgreSQL when a database URL is set, else from
//! the run folders under the results root.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use rfm_core::text::escape_controls;
use rfm_store::{Movement, RunInfo, Store};
use serde::Serialize;

use crate::cli::{DiffArgs, HistoryArgs, ResultsArgs, RunsArgs};
use crate::inspect::{emit, emit_text};
use crate::results::{self, LocalRun};

/// One line of `rfm runs`, from either source.
#[derive(Debug, Serialize)]
struct RunRow {
    run_id: String,
    /// `published`, `running`, `failed` or `abandoned` in PostgreSQL;
    /// `succeeded` or `failed` in a results folder.
    status: String,
    started_at: String,
    finished_at: Option<String>,
    input: Vec<String>,
    as_of: Option<String>,
    lines_read: i64,
    purchase_lines: i64,
    malformed: i64,
    customers: i64,
    revenue: Option<String>,
    error: Option<String>,
    /// The run `rfm segments` shows by default.
    latest: bool,
}

impl From<RunInfo> for RunRow {
    fn from(r: RunInfo) -> RunRow {
        RunRow {
            run_id: r.run_id,
            status: r.status.to_string(),
            started_at: r.started_at,
            finished_at: r.finished_at,
            input: r.input,
            as_of: r.as_of,
            lines_read: r.lines_read,
            purchase_lines: r.purchase_lines,
            malformed: r.malformed,
            customers: r.customers,
            revenue: r.revenue,
            error: r.error,
            latest: r.latest,
        }
    }
}

fn database_url(from: &HistoryArgs) -> Option<&str> {
    from.database_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
}

/// `rfm runs`: every run, newest first; `*` marks the latest published
/// (or, in a results folder, succeeded) one.
pub fn runs(args: RunsArgs) -> Result<()> {
    let (place, runs) = match database_url(&args.from) {
        Some(url) => {
            let mut store = Store::connect(url)?;
            let runs = store.runs()?.into_iter().map(RunRow::from).collect();
            (store.target().to_string(), runs)
        }
        None => (
            args.from.results_root.display().to_string(),
            local_runs(&args.from.results_root)?,
        ),
    };
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
            r.customers,
            r.revenue.as_deref().unwrap_or("-"),
            escape_controls(&r.input.join(" ")),
        )?;
        if let Some(e) = &r.error {
            writeln!(out, "    error: {}", escape_controls(e))?;
        }
    }
    emit_text(out)
}

/// Every run folder under `root`, newest first.
fn local_runs(root: &Path) -> Result<Vec<RunRow>> {
    let mut found = results::scan_runs(root)?;
    found.reverse();
    let latest = found.iter().position(|r| r.usable);
    Ok(found
        .into_iter()
        .enumerate()
        .map(|(i, LocalRun { report: r, .. })| RunRow {
            latest: Some(i) == latest,
            run_id: r.run_id,
            status: r.status,
            started_at: r.started_at,
            finished_at: Some(r.finished_at),
            input: r.input,
            as_of: r.as_of,
            lines_read: r.lines_read as i64,
            purchase_lines: r.purchase_lines as i64,
            malformed: r.malformed as i64,
            customers: r.customers as i64,
            revenue: r.revenue,
            error: r.error,
        })
        .collect())
}

/// `rfm diff RUN_A RUN_B`: customers and revenue moving between segments.
pub fn diff(args: DiffArgs) -> Result<()> {
    let (a, b, moves) = match database_url(&args.from) {
        Some(url) => {
            let mut store = Store::connect(url)?;
            let a = store.run(&args.run_a)?;
            let b = store.run(&args.run_b)?;
            let moves = store
                .diff(a.id, b.id)
                .with_context(|| format!("cannot compare runs {} and {}", a.run_id, b.run_id))?;
            (a.run_id, b.run_id, moves)
        }
        None => {
            let load = |id: &str| {
                results::load(&ResultsArgs {
                    run: Some(id.to_string()),
                    database_url: None,
                    results_root: args.from.results_root.clone(),
                })
            };
            let a = load(&args.run_a)?;
            let b = load(&args.run_b)?;
            let moves = movement(&a.customers, &b.customers)?;
            (a.run_id, b.run_id, moves)
        }
    };
    if args.json {
        return emit(serde_json::to_string_pretty(&moves)? + "\n");
    }
    let mut out = String::new();
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
            m.from.as_deref().unwrap_or("(new)"),
            m.to.as_deref().unwrap_or("(gone)"),
            m.customers,
            m.revenue_from,
            m.revenue_to,
        )?;
    }
    emit_text(out)
}

/// The movement between two runs' customers, joined on customer id, in the
/// order and form of the database's (`from` then `to`, absent first, byte
/// order; revenue with 2 decimals).
fn movement(
    a: &[rfm_store::CustomerRecord],
    b: &[rfm_store::CustomerRecord],
) -> Result<Vec<Movement>> {
    type Key = (Option<String>, Option<String>);
    let cents = |c: &rfm_store::CustomerRecord| {
        crate::export::cents_of(&c.monetary).with_context(|| {
            format!(
                "customer {}: unreadable monetary {:?}",
                c.customer_id, c.monetary
            )
        })
    };
    let in_b: HashMap<&str, &rfm_store::CustomerRecord> =
        b.iter().map(|c| (c.customer_id.as_str(), c)).collect();
    let mut groups: HashMap<Key, (i64, i128, i128)> = HashMap::new();
    let mut add = |key: Key, from: i128, to: i128| {
        let g = groups.entry(key).or_default();
        g.0 += 1;
        g.1 += from;
        g.2 += to;
    };
    for c in a {
        match in_b.get(c.customer_id.as_str()) {
            Some(d) => add(
                (Some(c.segment.clone()), Some(d.segment.clone())),
                cents(c)?,
                cents(d)?,
            ),
            None => add((Some(c.segment.clone()), None), cents(c)?, 0),
        }
    }
    let in_a: std::collections::HashSet<&str> = a.iter().map(|c| c.customer_id.as_str()).collect();
    for d in b.iter().filter(|d| !in_a.contains(d.customer_id.as_str())) {
        add((None, Some(d.segment.clone())), 0, cents(d)?);
    }
    let mut moves: Vec<(Key, (i64, i128, i128))> = groups.into_iter().collect();
    // Option orders None first and String compares bytes, as the SQL does.
    moves.sort_by(|x, y| x.0.cmp(&y.0));
    Ok(moves
        .into_iter()
        .map(|((from, to), (customers, ra, rb))| Movement {
            from,
            to,
            customers,
            revenue_from: format_cents(ra),
            revenue_to: format_cents(rb),
        })
        .collect())
}

/// `-1250` → `-12.50`.
fn format_cents(c: i128) -> String {
    let sign = if c < 0 { "-" } else { "" };
    let c = c.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_print_with_two_decimals() {
        assert_eq!(format_cents(0), "0.00");
        assert_eq!(format_cents(5), "0.05");
        assert_eq!(format_cents(-1250), "-12.50");
        assert_eq!(format_cents(11_709_234), "117092.34");
    }
}
