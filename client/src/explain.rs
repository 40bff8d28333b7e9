//! `rfm customer`: one customer's metrics, scores and segment, explained
//! with the run's cut points, the segment rule, and — when a value is shared
//! by customers on both sides of a cut point — the NTILE tie-break that
//! split them (docs/SEGMENTS.md). The id is read as the engine reads the
//! input's (`12347.0` is `12347`, spec §1).

use std::fmt::Write as _;

use anyhow::Result;
use rfm_core::figures::{count, counted, group, money};
use rfm_core::parse::{customer_id, CustomerId};
use rfm_core::text::escape_controls;
use rfm_runs::{Customer, Run};
use serde_json::json;

use crate::cli::CustomerArgs;
use crate::cluster::JobError;
use crate::exit::UsageError;
use crate::inspect::{emit, emit_text};
use crate::results;

/// The id as the input's CustomerID field would give it: trimmed, `NNN.0`
/// as `NNN`; a missing-value token or a control character is a usage error.
fn decoded_id(written: &str) -> Result<String> {
    let mut scratch = Vec::new();
    match customer_id(written.trim().as_bytes(), &mut scratch) {
        CustomerId::Text(id) => Ok(String::from_utf8_lossy(id).into_owned()),
        CustomerId::Missing => Err(UsageError(format!(
            "{written:?} is not a customer id (empty, NA, NaN and null mean a missing customer)"
        ))
        .into()),
        CustomerId::Control(b) => Err(UsageError(format!(
            "{:?} is not a customer id: it holds the control character U+{b:04X}",
            written
        ))
        .into()),
    }
}

/// Customers with the same value as `c`, split across scores: the scores
/// and how many customers with that value have each (empty when one score
/// holds them all).
fn tie<V: PartialEq>(
    run: &Run,
    c: &Customer,
    value: impl Fn(&Customer) -> V,
    score: impl Fn(&Customer) -> u8,
) -> Vec<(u8, u64)> {
    let v = value(c);
    let mut by_score = [0u64; 6];
    for other in run.customers.iter().filter(|o| value(o) == v) {
        by_score[usize::from(score(other)).min(5)] += 1;
    }
    let split: Vec<(u8, u64)> = (1..=5u8)
        .map(|k| (k, by_score[usize::from(k)]))
        .filter(|(_, n)| *n > 0)
        .collect();
    if split.len() > 1 {
        split
    } else {
        Vec::new()
    }
}

/// The line saying a score sits on a tie, or nothing.
fn tie_note(letter: char, what: &str, split: &[(u8, u64)]) -> Option<String> {
    if split.is_empty() {
        return None;
    }
    let total: u64 = split.iter().map(|(_, n)| n).sum();
    let parts: Vec<String> = split
        .iter()
        .map(|(k, n)| format!("{letter} {k} ({})", count(*n)))
        .collect();
    Some(format!(
        "             tie: the {} customers with {what} are split {} by customer id (NTILE's tie-break, docs/SEGMENTS.md)",
        count(total),
        parts.join(" / ")
    ))
}

pub fn customer(args: CustomerArgs) -> Result<()> {
    let id = decoded_id(&args.id)?;
    let run = results::load(&args.from)?;
    let c = run
        .customers
        .iter()
        .find(|c| c.customer_id == id)
        .ok_or_else(|| JobError {
            code: crate::exit::INPUT,
            message: format!(
                "customer {:?} is not in run {} ({}); `rfm customers --where TEXT` finds ids",
                id,
                run.run_id(),
                run.place
            ),
        })?;
    // The run's cut points, as scoring saved them.
    let cp = &run.cut_points;
    let rule = c.segment.rule();
    let r_tie = tie(&run, c, |o| o.recency, |o| o.r);
    let f_tie = tie(&run, c, |o| o.frequency, |o| o.f);
    let m_tie = tie(&run, c, |o| o.monetary, |o| o.m);
    if args.json {
        let ties = |split: &[(u8, u64)]| -> Vec<serde_json::Value> {
            split
                .iter()
                .map(|(k, n)| json!({"score": k, "customers": n}))
                .collect()
        };
        let v = json!({
            "run_id": run.run_id(),
            "customer": c,
            "cut_points": {
                "recency": points(&cp.recency),
                "frequency": points(&cp.frequency),
                "monetary": points(&cp.monetary),
            },
            "ties": {
                "recency": ties(&r_tie),
                "frequency": ties(&f_tie),
                "monetary": ties(&m_tie),
            },
            "segment_rule": rule,
        });
        return emit(serde_json::to_string_pretty(&v)? + "\n");
    }
    let whole = |v: &[(u8, i64, i64)]| -> Vec<(u8, String, String)> {
        v.iter()
            .map(|(k, lo, hi)| (*k, count(*lo), count(*hi)))
            .collect()
    };
    let recency = whole(&cp.recency);
    let frequency: Vec<(u8, String, String)> = cp
        .frequency
        .iter()
        .map(|(k, lo, hi)| (*k, count(*lo), count(*hi)))
        .collect();
    let monetary: Vec<(u8, String, String)> = cp
        .monetary
        .iter()
        .map(|(k, lo, hi)| (*k, group(lo), group(hi)))
        .collect();
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
        "  recency    {:>12} {:<9} R {}   (R {} = {} days)",
        count(c.recency),
        if c.recency == 1 { "day" } else { "days" },
        c.r,
        c.r,
        range(&recency, c.r)
    )?;
    let days = counted(c.recency, "day", "days");
    if let Some(note) = tie_note('R', &format!("a recency of {days}"), &r_tie) {
        writeln!(out, "{note}")?;
    }
    writeln!(
        out,
        "  frequency  {:>12} {:<9} F {}   (F {} = {} invoices)",
        count(c.frequency),
        if c.frequency == 1 {
            "invoice"
        } else {
            "invoices"
        },
        c.f,
        c.f,
        range(&frequency, c.f)
    )?;
    let invoices = counted(c.frequency, "invoice", "invoices");
    if let Some(note) = tie_note('F', &invoices, &f_tie) {
        writeln!(out, "{note}")?;
    }
    writeln!(
        out,
        "  monetary   {:>12}           M {}   (M {} = {})",
        money(c.monetary),
        c.m,
        c.m,
        range(&monetary, c.m)
    )?;
    let spent = format!("a monetary of {}", money(c.monetary));
    if let Some(note) = tie_note('M', &spent, &m_tie) {
        writeln!(out, "{note}")?;
    }
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
        "SCORE", "RECENCY (DAYS)", "FREQUENCY", "MONETARY"
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

/// Cut points as JSON: `{"score": k, "min": lo, "max": hi}` per score.
fn points<T: serde::Serialize>(v: &[(u8, T, T)]) -> Vec<serde_json::Value> {
    v.iter()
        .map(|(k, lo, hi)| json!({"score": k, "min": lo, "max": hi}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_as_the_input_writes_them() {
        assert_eq!(decoded_id("12347.0").unwrap(), "12347");
        assert_eq!(decoded_id(" 12347 ").unwrap(), "12347");
        // Only the `.0` of pandas goes: leading zeros and other decimals stay.
        assert_eq!(decoded_id("012347").unwrap(), "012347");
        assert_eq!(decoded_id("12347.5").unwrap(), "12347.5");
        assert!(decoded_id("NA").is_err());
        assert!(decoded_id("").is_err());
        assert!(decoded_id("12\u{1}347").is_err());
    }
}
