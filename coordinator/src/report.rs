//! Builds the run report (`run.json`) of a job: identity, inputs and options
//! first, then the ledger and the result's headline figures.

use rfm_core::engine::InputFile;
use rfm_core::ledger::LineLedger;
use rfm_core::report::{self, FileColumns, ReportOptions, RunReport};
use rfm_core::{RfmResult, RunOptions};

/// A report with the run's identity, inputs and options, before any figures.
pub fn new_report(run_id: &str, files: &[InputFile], opts: &RunOptions) -> RunReport {
    RunReport {
        run_id: run_id.to_string(),
        status: "running".into(),
        input: files.iter().map(|f| f.path.display().to_string()).collect(),
        files: files
            .iter()
            .map(|f| FileColumns {
                file: f.path.display().to_string(),
                bytes: f.layout.len,
                columns: f.layout.columns.names.clone(),
            })
            .collect(),
        options: ReportOptions {
            delimiter: (opts.parse.delimiter as char).to_string(),
            decimal_comma: opts.parse.decimal_comma,
            date_format: opts
                .parse
                .date_format
                .as_ref()
                .map(|f| f.as_str().to_string()),
            as_of: opts.as_of.map(rfm_core::date::format_date),
            max_malformed_share: opts.max_malformed_share,
            chunk_size: opts.chunk_size,
        },
        lines_read: 0,
        purchase_lines: 0,
        excluded: Default::default(),
        malformed: 0,
        malformed_samples: Vec::new(),
        customers: 0,
        as_of: None,
        latest_purchase: None,
        revenue: None,
        started_at: report::utc_now(),
        finished_at: String::new(),
        seconds: 0.0,
        error: None,
    }
}

/// Fills in the end of a run: ledger, status, and the result's figures or the error.
pub fn complete(
    report: &mut RunReport,
    ledger: &LineLedger,
    result: Result<&RfmResult, String>,
    seconds: f64,
) {
    report.set_ledger(ledger);
    report.finished_at = report::utc_now();
    report.seconds = seconds;
    match result {
        Ok(result) => {
            report.status = "succeeded".into();
            report.customers = result.customers.len() as u64;
            report.as_of = Some(rfm_core::date::format_date(result.as_of));
            report.latest_purchase = Some(rfm_core::date::format_date(result.latest_purchase));
            let revenue: i128 = result.segments.iter().map(|s| s.revenue.0).sum();
            report.revenue = Some(rfm_core::money::Money(revenue).to_fixed(2));
        }
        Err(e) => {
            report.status = "failed".into();
            report.error = Some(e);
        }
    }
}
