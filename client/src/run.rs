//! `rfm run`: the whole job in this process, then the result files and summary.

use std::time::Instant;

use anyhow::{Context, Result};
use rfm_core::engine::{self, InputFile};
use rfm_core::report::{self, RunReport};
use rfm_core::{output, RunOptions};

use crate::cli::RunArgs;
use crate::{db, options, summary};

/// A report with the run's identity, inputs and options, before any figures.
pub fn new_report(run_id: &str, files: &[InputFile], opts: &RunOptions) -> RunReport {
    RunReport::begin(run_id, files, opts)
}

pub fn run(args: RunArgs) -> Result<()> {
    let started = Instant::now();
    let opts = options::run_options(&args.input)?;
    let run_id = report::new_run_id();
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| args.results_root.join(&run_id));
    let files = engine::open_inputs(&args.input.input, &opts.parse)?;
    output::prepare_dir(&out_dir)?;
    let publisher = db::Publisher::start(
        args.database_url.as_deref(),
        &new_report(&run_id, &files, &opts),
    )?;

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
            output::write_report(&out_dir, &report)?;
            for stale in [output::CUSTOMERS_FILE, output::SEGMENTS_FILE] {
                let _ = std::fs::remove_file(out_dir.join(stale));
            }
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
