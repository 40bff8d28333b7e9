//! `rfm segments`, `customers`, `customer` and `export`: a finished run's
//! results as tables, JSON or a file; `customer` explains a customer's
//! scores with the cut points of the run and the segment rule.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Result;
use rfm_core::text::{escape_controls, escape_for_terminal};
use rfm_core::Segment;
use rfm_runs::{Customer, Run};
use serde_json::json;

use crate::cli::{CustomerArgs, CustomersArgs, SegmentsArgs, SortColumn};
use crate::exit::UsageError;
use crate::results;

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
    let run = results::load(&args.from)?;
    if args.json {
        return emit(serde_json::to_string_pretty(&run.segments)? + "\n");
    }
    let mut out = format!("run {} ({})\n", run.run_id(), run.place);
    writeln!(
        out,
        "{:<20} {:>9} {:>8} {:>14} {:>8} {:>8} {:>7} {:>10}",
        "segment", "customers", "share", "revenue", "share", "avg R", "avg F", "avg M"
    )?;
    let pct = |x: &str| {
        x.parse::<f64>()
            .map(|v| format!("{:.1}%", v * 100.0))
            .unwrap_or_default()
    };
    for s in &run.segments {
        writeln!(
            out,
            "{:<20} {:>9} {:>8} {:>14} {:>8} {:>8} {:>7} {:>10}",
            s.segment.name(),
            s.customers,
            pct(&s.customers_share),
            s.revenue.to_fixed(2),
            pct(&s.revenue_share),
            s.avg_recency,
            s.avg_frequency,
            s.avg_monetary
        )?;
    }
    emit_text(out)
}

fn segment_filter(name: &str) -> Result<Segment> {
    Segment::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Segment::ALL.iter().map(|s| s.name()).collect();
        UsageError(format!(
            "invalid option --segment: {name:?} is not a segment; choose one of {}",
            names.join(", ")
        ))
        .into()
    })
}

/// The customers `args` asks for, in order.
fn select(run: &Run, args: &CustomersArgs) -> Result<Vec<Customer>> {
    let segment = args.segment.as_deref().map(segment_filter).transpose()?;
    let search = args.search.as_ref().map(|s| s.to_lowercase());
    let mut rows: Vec<Customer> = run
        .customers
        .iter()
        .filter(|c| segment.is_none_or(|s| c.segment == s))
        .filter(|c| {
            search.as_ref().is_none_or(|t| {
                c.customer_id.to_lowercase().contains(t) || c.country.to_lowercase().contains(t)
            })
        })
        .cloned()
        .collect();
    // Stable sorts keep customer id order among ties.
    match args.sort {
        SortColumn::CustomerId => {}
        SortColumn::Recency => rows.sort_by_key(|c| c.recency),
        SortColumn::Frequency => rows.sort_by_key(|c| c.frequency),
        SortColumn::Monetary => rows.sort_by_key(|c| c.monetary),
        SortColumn::Score => rows.sort_by_key(|c| (c.r, c.f, c.m)),
        SortColumn::Segment => rows.sort_by(|a, b| a.segment.name().cmp(b.segment.name())),
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
    if args.json {
        return emit(serde_json::to_string_pretty(&rows)? + "\n");
    }
    let mut out = String::new();
    writeln!(
        out,
        "{:<12} {:>7} {:>9} {:>12} {:>5} {:<20} COUNTRY",
        "CUSTOMER", "RECENCY", "FREQUENCY", "MONETARY", "RFM", "SEGMENT"
    )?;
    for c in &rows {
        writeln!(
            out,
            "{:<12} {:>7} {:>9} {:>12} {:>5} {:<20} {}",
            escape_controls(&c.customer_id),
            c.recency,
            c.frequency,
            c.monetary_text(),
            c.rfm_score(),
            c.segment.name(),
            escape_controls(&c.country)
        )?;
    }
    if rows.is_empty() {
        let message = format!(
            "no customer matches in run {} ({})",
            run.run_id(),
            run.place
        );
        eprintln!("{}", escape_for_terminal(&message));
    }
    emit_text(out)
}

/// Cut points as JSON: `{"score": k, "min": lo, "max": hi}` per score.
fn points<T: serde::Serialize>(v: &[(u8, T, T)]) -> Vec<serde_json::Value> {
    v.iter()
        .map(|(k, lo, hi)| json!({"score": k, "min": lo, "max": hi}))
        .collect()
}

/// Cut points with their bounds as text.
fn texts<T: ToString>(v: &[(u8, T, T)]) -> Vec<(u8, String, String)> {
    v.iter()
        .map(|(k, lo, hi)| (*k, lo.to_string(), hi.to_string()))
        .collect()
}

pub fn customer(args: CustomerArgs) -> Result<()> {
    let run = results::load(&args.from)?;
    let c = run
        .customers
        .iter()
        .find(|c| c.customer_id == args.id.trim())
        .ok_or_else(|| crate::cluster::JobError {
            code: crate::exit::INPUT,
            message: format!(
                "customer {:?} is not in run {} ({}); `rfm customers --search TEXT` finds ids",
                args.id,
                run.run_id(),
                run.place
            ),
        })?;
    // The run's cut points, as scoring saved them.
    let cp = &run.cut_points;
    let rule = c.segment.rule();
    if args.json {
        let v = json!({
            "run_id": run.run_id(),
            "customer": c,
            "cut_points": {
                "recency": points(&cp.recency),
                "frequency": points(&cp.frequency),
                "monetary": points(&cp.monetary),
            },
            "segment_rule": rule,
        });
        return emit(serde_json::to_string_pretty(&v)? + "\n");
    }
    let recency = texts(&cp.recency);
    let frequency = texts(&cp.frequency);
    let monetary = texts(&cp.monetary);
    let range = |v: &[(u8, String, String)], k: u8| {
        v.iter()
            .find(|p| p.0 == k)
            .map_or(String::new(), |(_, lo, hi)| format!("{lo} – {hi}"))
    };
    let mut out = String::new();
    writeln!(
        out,
        "customer {} ({}), run {}",
        escape_controls(&c.customer_id),
        escape_controls(&c.country),
        run.run_id()
    )?;
    writeln!(
        out,
        "  recency    {:>12} days      R {}   (R {} = {} days)",
        c.recency,
        c.r,
        c.r,
        range(&recency, c.r)
    )?;
    writeln!(
        out,
        "  frequency  {:>12} invoices  F {}   (F {} = {} invoices)",
        c.frequency,
        c.f,
        c.f,
        range(&frequency, c.f)
    )?;
    writeln!(
        out,
        "  monetary   {:>12}           M {}   (M {} = {})",
        c.monetary_text(),
        c.m,
        c.m,
        range(&monetary, c.m)
    )?;
    writeln!(
        out,
        "  purchases  first {}, last {}",
        rfm_core::date::format_timestamp(c.first_purchase),
        rfm_core::date::format_timestamp(c.last_purchase)
    )?;
    writeln!(out, "  RFM score  {}", c.rfm_score())?;
    writeln!(out, "  segment    {}: {rule}", c.segment.name())?;
    writeln!(out, "\ncut points of run {} (smallest – largest value per score; recency scores run from the longest to the shortest):", run.run_id())?;
    writeln!(
        out,
        "  {:<5} {:>16} {:>16} {:>24}",
        "score", "recency (days)", "frequency", "monetary"
    )?;
    for k in 1..=5 {
        writeln!(
            out,
            "  {:<5} {:>16} {:>16} {:>24}",
            k,
            range(&recency, k),
            range(&frequency, k),
            range(&monetary, k)
        )?;
    }
    emit_text(out)
}
