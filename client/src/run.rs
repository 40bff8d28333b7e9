//! `rfm run`: the whole job in this process, then the result files and summary.
//! SIGINT/SIGTERM record the run `failed` ("interrupted") like any failure.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use rfm_core::engine::{self, InputFile};
use rfm_core::report::{self, RunReport};
use rfm_core::{output, RunOptions};

use crate::cli::RunArgs;
use crate::{db, interrupt, options, summary};

/// A report with the run's identity, inputs and options, before any figures.
pub fn new_report(run_id: &str, files: &[InputFile], opts: &RunOptions) -> RunReport {
    RunReport::begin(run_id, files, opts)
}

/// Records a failed run: `failed` in the database when publishing, and its
/// report as run.json without result files.
pub fn record_failure(
    out_dir: &Path,
    report: &RunReport,
    db: Option<&db::RunRecord>,
) -> Result<()> {
    if let Some(record) = db {
        record.fail(report);
    }
    output::write_report(out_dir, report)?;
    for stale in [output::CUSTOMERS_FILE, output::SEGMENTS_FILE] {
        let _ = std::fs::remove_file(out_dir.join(stale));
    }
    Ok(())
}

/// Whoever owns runs recorded by this process, on the terms of the flags.
fn lease(args: &RunArgs) -> Result<rfm_store::Lease> {
    rfm_store::Lease::new("rfm run", args.run_lease, args.run_heartbeat).map_err(|e| {
        crate::exit::UsageError(format!("invalid options --run-lease/--run-heartbeat: {e}")).into()
    })
}

pub fn run(args: RunArgs) -> Result<()> {
    interrupt::listen()?;
    let started = Instant::now();
    let opts = options::run_options(&args.input)?;
    let lease = lease(&args)?;
    let run_id = report::new_run_id();
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| args.results_root.join(&run_id));
    let files = engine::open_inputs(&args.input.input, &opts.parse)?;
    output::prepare_dir(&out_dir)?;
    let begun = new_report(&run_id, &files, &opts);
    let publisher = db::Publisher::start(args.database_url.as_deref(), &begun, lease)?;
    {
        let (out_dir, db) = (out_dir.clone(), publisher.as_ref().map(|p| p.record()));
        interrupt::on_signal(move |_| {
            let mut report = begun;
            report.status = "failed".into();
            report.error = Some(interrupt::INTERRUPTED.into());
            report.finished_at = report::utc_now();
            report.seconds = started.elapsed().as_secs_f64();
            if let Err(e) = record_failure(&out_dir, &report, db.as_ref()) {
                eprintln!("error: {e:#}");
            }
        });
    }

    let threads = match args.threads {
        Some(0) => {
            return Err(crate::exit::UsageError(
                "invalid option --threads: must be at least 1".into(),
            )
            .into())
        }
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    // The embedded cluster: a coordinator and a worker in this process,
    // through the same gRPC and Flight services as a real cluster.
    let (ledger, result) = crate::cluster::run_embedded(
        &args.input.input,
        &opts,
        &run_id,
        threads,
        !(args.quiet || args.json),
    )?;
    let _finishing = interrupt::finishing();

    let mut report = new_report(&run_id, &files, &opts);
    report.set_ledger(&ledger);
    report.finished_at = report::utc_now();
    report.seconds = started.elapsed().as_secs_f64();
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            report.status = "failed".into();
            report.error = Some(e.to_string());
            if let Some(p) = publisher {
                p.fail(&report);
            }
            record_failure(&out_dir, &report, None)?;
            if !args.quiet {
                eprint!("{}", summary::ledger(&report));
                eprintln!("report: {}", out_dir.join(output::REPORT_FILE).display());
            }
            return Err(e);
        }
    };
    report.set_result(&result);
    output::write_results(&out_dir, &result, &report)?;
    if let Some(p) = publisher {
        p.publish(&report, &result).with_context(|| {
            format!("results written to {} but not published", out_dir.display())
        })?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if !args.quiet {
        print!("{}", summary::full(&report, &result));
        println!();
        println!("results: {}  ({:.2} s)", out_dir.display(), report.seconds);
    }
    Ok(())
}
