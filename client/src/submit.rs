//! `rfm submit`: runs a job on a running cluster, shows its progress, then
//! writes the same files and prints the same summary as `rfm run`.
//! SIGINT/SIGTERM cancel the job on the coordinator and record the run
//! `failed` ("interrupted") in run.json.

use std::time::Duration;

use anyhow::{Context, Result};
use rfm_core::report::RunReport;
use rfm_core::{output, report};
use rfm_proto::auth::Token;

use crate::cli::SubmitArgs;
use crate::{cluster, interrupt, options, summary};

/// How long an interrupted `rfm submit` waits for the coordinator to take the cancel.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

pub fn submit(args: SubmitArgs) -> Result<()> {
    interrupt::listen()?;
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
    {
        let (url, token, out_dir) = (
            args.coordinator.clone(),
            args.token.clone(),
            out_dir.clone(),
        );
        let mut report = RunReport::begin(&run_id, &[], &opts);
        report.input = vec![input.clone()];
        interrupt::on_signal(move |_| {
            eprintln!("cancelling job {}", report.run_id);
            if let Err(e) = cluster::cancel_blocking(
                &url,
                Token::new(token),
                &report.run_id,
                interrupt::INTERRUPTED,
                CANCEL_TIMEOUT,
            ) {
                eprintln!("warning: job {} may still run: {e:#}", report.run_id);
            }
            report.status = "failed".into();
            report.error = Some(interrupt::INTERRUPTED.into());
            report.finished_at = report::utc_now();
            let written = output::prepare_dir(&out_dir)
                .map_err(anyhow::Error::from)
                .and_then(|()| crate::run::record_failure(&out_dir, &report, None));
            if let Err(e) = written {
                eprintln!("error: {e:#}");
            }
        });
    }
    let mut finished = runtime.block_on(async {
        let mut conn = cluster::connect(&args.coordinator, Token::new(args.token.clone())).await?;
        cluster::submit_and_wait(&mut conn, &input, &opts, &run_id, !args.quiet).await
    })?;
    let _finishing = interrupt::finishing();

    if let Some(err) = finished.error() {
        if let Some(report) = &finished.report {
            output::prepare_dir(&out_dir)?;
            crate::run::record_failure(&out_dir, report, None)?;
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
