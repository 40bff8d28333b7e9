//! `rfm submit`: runs a job on a running cluster, shows its progress, then
//! writes the same files and prints the same summary as `rfm run`.

use anyhow::{Context, Result};
use rfm_core::{output, report};
use rfm_proto::auth::Token;

use crate::cli::SubmitArgs;
use crate::{cluster, options, summary};

pub fn submit(args: SubmitArgs) -> Result<()> {
    let opts = options::run_options(&args.input)?;
    let run_id = report::new_run_id();
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| args.results_root.join(&run_id));
    // The coordinator resolves the input in its own working directory: send
    // an absolute path (workers and coordinator share the filesystem).
    let input = std::path::absolute(&args.input.input)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| args.input.input.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut finished = runtime.block_on(async {
        let mut conn = cluster::connect(
            &args.coordinator,
            Token::new(args.token.clone()),
            args.keepalive.keepalive(),
        )
        .await?;
        cluster::submit_and_wait(&mut conn, &input, &opts, &run_id, !args.quiet, true).await
    })?;

    if let Some(err) = finished.error() {
        if let Some(report) = &finished.report {
            output::prepare_dir(&out_dir)?;
            output::write_report(&out_dir, report)?;
            for stale in [output::CUSTOMERS_FILE, output::SEGMENTS_FILE] {
                let _ = std::fs::remove_file(out_dir.join(stale));
            }
            if !args.quiet {
                if finished.state.is_some() {
                    eprint!("{}", summary::ledger(report));
                }
                eprintln!("report: {}", out_dir.join(output::REPORT_FILE).display());
            }
        }
        return Err(err.into());
    }
    let result = cluster::score(&mut finished, &opts)?;
    let report = finished
        .report
        .take()
        .context("the coordinator sent no report for a finished job")?;
    output::prepare_dir(&out_dir)?;
    output::write_results(&out_dir, &result, &report)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if !args.quiet {
        print!("{}", summary::full(&report, &result));
        println!();
        println!("results: {}  ({:.2} s)", out_dir.display(), report.seconds);
        if let Some(target) = &finished.published_to {
            println!("published: run {} to {target}", report.run_id);
        }
    }
    if let Some(error) = finished.publish_error.take() {
        return Err(cluster::JobError {
            code: crate::exit::DATABASE,
            message: format!(
                "results written to {} but run {} not published: {error}",
                out_dir.display(),
                report.run_id
            ),
        }
        .into());
    }
    Ok(())
}
