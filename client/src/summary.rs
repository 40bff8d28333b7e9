//! The summary `rfm run` prints: the line ledger, malformed samples and the
//! segment table. Samples are data: their control characters are escaped and
//! they are cut short; the whole text is escaped again where it is printed.

use std::fmt::Write as _;
use std::path::Path;

use rfm_core::date;
use rfm_core::figures;
use rfm_core::input::shorten;
use rfm_core::report::RunReport;
use rfm_core::text::{escape_controls, escape_for_terminal};
use rfm_core::RfmResult;

fn thousands(n: u64) -> String {
    figures::count(n)
}

/// The ledger part of the summary (also printed for failed runs).
pub fn ledger(report: &RunReport) -> String {
    let mut s = String::new();
    let e = &report.excluded;
    let _ = writeln!(s, "lines read        {:>12}", thousands(report.lines_read));
    let _ = writeln!(
        s,
        "purchase lines    {:>12}",
        thousands(report.purchase_lines)
    );
    let _ = writeln!(s, "excluded");
    let _ = writeln!(
        s,
        "  missing customer {:>11}",
        thousands(e.missing_customer)
    );
    let _ = writeln!(s, "  cancellation     {:>11}", thousands(e.cancellation));
    let _ = writeln!(s, "  quantity <= 0    {:>11}", thousands(e.quantity_le_0));
    let _ = writeln!(s, "  price <= 0       {:>11}", thousands(e.price_le_0));
    if e.after_until > 0 || report.options.until.is_some() {
        let _ = writeln!(s, "  after --until    {:>11}", thousands(e.after_until));
    }
    let _ = writeln!(s, "malformed         {:>12}", thousands(report.malformed));
    for m in &report.malformed_samples {
        let _ = writeln!(
            s,
            "  {}:{}: {} | {}",
            escape_controls(&m.file),
            m.line.map(|l| l.to_string()).unwrap_or_else(|| "?".into()),
            escape_controls(&m.problem),
            escape_controls(&shorten(&m.text, 80))
        );
    }
    s
}

/// Each file's date form (one line when there is one file) and the
/// warnings about how the input was read.
pub fn dates(report: &RunReport) -> String {
    let mut s = String::new();
    let forms: Vec<_> = report
        .files
        .iter()
        .filter_map(|f| f.date_form.as_ref().map(|d| (&f.file, d)))
        .collect();
    if let [(_, form)] = forms.as_slice() {
        let _ = writeln!(s, "dates             {form}");
    } else if !forms.is_empty() {
        let _ = writeln!(s, "dates");
        for (file, form) in forms {
            let _ = writeln!(s, "  {}: {form}", escape_controls(file));
        }
    }
    for w in &report.warnings {
        let _ = writeln!(s, "warning: {}", escape_controls(w));
    }
    s
}

/// The full summary of a finished run.
pub fn full(report: &RunReport, result: &RfmResult) -> String {
    let mut s = ledger(report);
    let _ = writeln!(s, "customers         {:>12}", thousands(report.customers));
    if let Some(span) = report.purchase_span() {
        let _ = writeln!(s, "purchases         {span}");
    }
    if let Some(until) = &report.options.until {
        let _ = writeln!(s, "until             {until:>12}");
    }
    let _ = writeln!(
        s,
        "as-of             {:>12}",
        date::format_date(result.as_of)
    );
    s.push_str(&dates(report));
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<20} {:>9} {:>8} {:>14} {:>8} {:>8} {:>7} {:>10}",
        "SEGMENT", "CUSTOMERS", "SHARE", "REVENUE", "SHARE", "AVG R", "AVG F", "AVG M"
    );
    // Value order (Champions first), as `rfm segments` and the dashboard.
    let mut segments: Vec<_> = result.segments.iter().collect();
    segments.sort_by_key(|r| figures::segment_rank(r.segment));
    for r in segments {
        let _ = writeln!(
            s,
            "{:<20} {:>9} {:>8} {:>14} {:>8} {:>8} {:>7} {:>10}",
            r.segment.name(),
            thousands(r.customers),
            figures::percent(&r.customers_share),
            figures::group(&r.revenue_text),
            figures::percent(&r.revenue_share),
            figures::group(&r.avg_recency),
            figures::group(&r.avg_frequency),
            figures::group(&r.avg_monetary)
        );
    }
    s
}

/// Tells the user a run succeeded, the same way for `rfm run` and `rfm
/// submit`: the report as JSON with `json`, else (unless `quiet`) the summary,
/// where the files are and where the run was published.
pub fn show_success(
    report: &RunReport,
    result: &RfmResult,
    out: &Path,
    published_to: Option<&str>,
    json: bool,
    quiet: bool,
) -> serde_json::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else if !quiet {
        print!("{}", escape_for_terminal(&full(report, result)));
        println!();
        let mut tail = format!("results: {}  ({:.2} s)", out.display(), report.seconds);
        if let Some(upload) = &report.upload {
            let _ = write!(tail, "\nuploaded: {}", upload.file);
        }
        if let Some(cache) = &report.cache {
            let _ = write!(
                tail,
                "\ncache: {} {} from the cache, {} computed",
                cache.hits,
                if cache.hits == 1 { "file" } else { "files" },
                cache.computed
            );
        }
        if let Some(target) = published_to {
            let _ = write!(tail, "\npublished: run {} to {target}", report.run_id);
        }
        println!("{}", escape_for_terminal(&tail));
    }
    Ok(())
}
