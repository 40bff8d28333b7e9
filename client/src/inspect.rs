//! `rfm segments` and `rfm customers`: a finished run's segments and
//! customers as tables (figures grouped in thousands, segments in value
//! order), CSV or JSON (plain numbers). `rfm customer` is in
//! [`crate::explain`].

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Result;
use rfm_core::figures::{count, group, money, percent, segment_rank};
use rfm_core::text::{escape_controls, escape_for_terminal};
use rfm_runs::{Customer, Run};

use crate::cli::{CustomersArgs, ListFormat, SegmentsArgs, SortColumn};
use crate::results;
use crate::select::Selection;

/// Writes a table or text for people to standard output, control characters
/// from the data escaped (see [`rfm_core::text`]).
pub(crate) fn emit_text(text: String) -> Result<()> {
    emit(escape_for_terminal(&text).into_owned())
}

/// Writes to standard output; a closed pipe (`| head`) is not an error.
pub(crate) fn emit(text: String) -> Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write to standard output"))
        }
        _ => Ok(()),
    }
}

pub fn segments(args: SegmentsArgs) -> Result<()> {
    let mut run = results::load(&args.from)?;
    if args.json {
        return emit(serde_json::to_string_pretty(&run.segments)? + "\n");
    }
    // Value order, as the dashboard and the run summary list them.
    run.segments.sort_by_key(|s| segment_rank(s.segment));
    let mut out = format!("run {} ({})\n", run.run_id(), run.place);
    writeln!(
        out,
        "{:<20} {:>9} {:>7} {:>14} {:>7} {:>8} {:>7} {:>10}",
        "SEGMENT", "CUSTOMERS", "SHARE", "REVENUE", "SHARE", "AVG R", "AVG F", "AVG M"
    )?;
    for s in &run.segments {
        writeln!(
            out,
            "{:<20} {:>9} {:>7} {:>14} {:>7} {:>8} {:>7} {:>10}",
            s.segment.name(),
            count(s.customers),
            percent(&s.customers_share),
            money(s.revenue),
            percent(&s.revenue_share),
            group(&s.avg_recency),
            group(&s.avg_frequency),
            group(&s.avg_monetary)
        )?;
    }
    emit_text(out)
}

/// The customers `args` asks for, in order.
fn select(run: &Run, args: &CustomersArgs) -> Result<Vec<Customer>> {
    let selection = Selection::of(&args.select)?;
    let mut rows: Vec<Customer> = run
        .customers
        .iter()
        .filter(|c| selection.matches(c))
        .cloned()
        .collect();
    // Stable sorts keep customer id order among ties.
    match args.sort {
        SortColumn::CustomerId => {}
        SortColumn::Recency => rows.sort_by_key(|c| c.recency),
        SortColumn::Frequency => rows.sort_by_key(|c| c.frequency),
        SortColumn::Monetary => rows.sort_by_key(|c| c.monetary),
        SortColumn::Score => rows.sort_by_key(|c| (c.r, c.f, c.m)),
        SortColumn::Segment => rows.sort_by_key(|c| segment_rank(c.segment)),
        SortColumn::Country => rows.sort_by(|a, b| a.country.cmp(&b.country)),
    }
    if args.desc {
        rows.reverse();
    }
    if let Some(n) = args.limit {
        rows.truncate(n);
    }
    Ok(rows)
}

pub fn customers(args: CustomersArgs) -> Result<()> {
    let run = results::load(&args.from)?;
    let rows = select(&run, &args)?;
    let format = if args.json {
        ListFormat::Json
    } else {
        args.format
    };
    if rows.is_empty() {
        let message = format!(
            "no customer matches in run {} ({})",
            run.run_id(),
            run.place
        );
        eprintln!("{}", escape_for_terminal(&message));
    }
    match format {
        ListFormat::Json => emit(serde_json::to_string_pretty(&rows)? + "\n"),
        ListFormat::Csv => {
            let mut out = Vec::new();
            crate::export::write_csv(&mut out, &rows)?;
            emit(String::from_utf8(out)?)
        }
        ListFormat::Table => emit_text(table(&rows)?),
    }
}

/// The customers as an aligned table, figures grouped in thousands.
fn table(rows: &[Customer]) -> Result<String> {
    let mut out = String::new();
    writeln!(
        out,
        "{:<12} {:>7} {:>9} {:>12} {:>5} {:<20} COUNTRY",
        "CUSTOMER", "RECENCY", "FREQUENCY", "MONETARY", "RFM", "SEGMENT"
    )?;
    for c in rows {
        writeln!(
            out,
            "{:<12} {:>7} {:>9} {:>12} {:>5} {:<20} {}",
            escape_controls(&c.customer_id),
            count(c.recency),
            count(c.frequency),
            money(c.monetary),
            c.rfm_score(),
            c.segment.name(),
            escape_controls(&c.country)
        )?;
    }
    Ok(out)
}
