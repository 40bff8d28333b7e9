//! `rfm submit`: runs a job on a running cluster, shows its progress, then
//! writes the same files and prints the same summary as `rfm run`, the same
//! way (see [`crate::finish`]); a failed job leaves the same failed
//! `run.json` (see [`crate::failure`]).
//! SIGINT/SIGTERM cancel the job on the coordinator and record the run
//! `failed` ("interrupted") in run.json. With `--upload`, the input file is
//! first sent to the coordinator (see [`crate::upload`]) and the job runs on
//! its copy there; run.json names both.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use rfm_core::output::OutDir;
use rfm_core::report::{self, RunReport, Stage};
use rfm_core::text::escape_for_terminal;

use crate::cli::SubmitArgs;
use crate::failure::{At as _, Failed};
use crate::{cluster, finish, interrupt, options, upload};

/// How long an interrupted `rfm submit` waits for the coordinator to take the cancel.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

pub fn submit(args: SubmitArgs) -> Result<()> {
    interrupt::listen()?;
    let started = Instant::now();
    // Usage errors stop the command before a run exists: nothing is written.
    let opts = options::run_options(&args.input)?;
    let run_id = report::new_run_id();
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| args.results_root.join(&run_id));
    let out = OutDir::prepare(&out_dir)?;
    // The coordinator resolves the input in its own working directory: send
    // an absolute path (workers and coordinator share the filesystem).
    // A remote input (`s3://`, `http(s)://`) is sent as it is.
    let input = if args.upload {
        crate::upload::local_file(&args.input.input)?
            .display()
            .to_string()
    } else if rfm_core::remote::is_remote(std::path::Path::new(&args.input.input)) {
        args.input.input.clone()
    } else {
        std::path::absolute(&args.input.input)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| args.input.input.clone())
    };
    let mut report = RunReport::before_input(&run_id, &input, &opts);
    let job_sent = Arc::new(AtomicBool::new(false));
    arm_interrupt(&args, &out, &report, started, Arc::clone(&job_sent));
    finish::run_to_end(
        &out,
        &mut report,
        started,
        args.quiet,
        |report, finishing| attempt(&args, &opts, &input, &out, report, finishing, &job_sent),
    )
}

/// Arms the interrupt: the first SIGINT/SIGTERM cancels the job on the
/// coordinator (its run is recorded `interrupted` there) and leaves the
/// failed report in `out`. Before the job is sent (during an upload) there
/// is nothing to cancel: the upload stops and the coordinator drops its
/// partial copy.
fn arm_interrupt(
    args: &SubmitArgs,
    out: &OutDir,
    report: &RunReport,
    started: Instant,
    job_sent: Arc<AtomicBool>,
) {
    // A TLS setting that cannot be loaded fails the submission itself.
    let tls = args.tls.load().ok().flatten();
    let (url, token, out, mut report) = (
        args.coordinator.clone(),
        args.auth.token().unwrap_or_default(),
        out.clone(),
        report.clone(),
    );
    let uploading = args.upload;
    interrupt::on_signal(move |_| {
        if !job_sent.load(Ordering::SeqCst) {
            match uploading {
                true => eprintln!("upload stopped; no job was started"),
                false => eprintln!("stopped; no job was started"),
            }
        } else {
            eprintln!("cancelling job {}", report.run_id);
            let cancelled = cluster::cancel_blocking(
                &url,
                token,
                tls.clone(),
                &report.run_id,
                interrupt::INTERRUPTED,
                false,
                CANCEL_TIMEOUT,
            );
            if let Err(e) = cancelled {
                eprintln!(
                    "{}",
                    escape_for_terminal(&format!(
                        "warning: job {} may still run: {e:#}",
                        report.run_id
                    ))
                );
            }
        }
        report.fail(Stage::Interrupted, interrupt::INTERRUPTED);
        report.finished_at = report::utc_now();
        report.seconds = started.elapsed().as_secs_f64();
        if let Err(e) = out.write_report(&report) {
            eprintln!("{}", escape_for_terminal(&format!("error: {e:#}")));
        }
    });
}

/// Runs the job on the cluster and writes its results; `report` holds what
/// is known when it fails (the coordinator's report, once it sent one).
/// Once the job has ended, `finishing` holds off a signal until the outcome
/// is recorded.
fn attempt(
    args: &SubmitArgs,
    opts: &rfm_core::RunOptions,
    input: &str,
    out: &OutDir,
    report: &mut RunReport,
    finishing: &mut Option<interrupt::Finishing>,
    job_sent: &AtomicBool,
) -> Result<(), Failed> {
    let runtime = cluster::runtime()?;
    let finished = runtime.block_on(async {
        let token = args.auth.token().at(Stage::Planning)?;
        let mut conn = cluster::connect(
            &args.coordinator,
            token,
            args.keepalive.keepalive(),
            cluster::client_tls(&args.tls).at(Stage::Planning)?,
        )
        .await
        .at(Stage::Planning)?;
        conn.max_result_bytes = args.max_result_size;
        let input = match args.upload {
            true => {
                let uploaded = upload::upload(&mut conn, Path::new(input), !args.quiet)
                    .await
                    .at(Stage::Input)?;
                report.upload = Some(uploaded.record);
                uploaded.input
            }
            false => input.to_string(),
        };
        job_sent.store(true, Ordering::SeqCst);
        let job = cluster::Submission {
            input: &input,
            opts,
            job_id: &report.run_id,
            no_cache: args.no_cache,
            upload: report.upload.as_ref(),
        };
        cluster::submit_and_wait(&mut conn, job, !args.quiet, Some(out)).await
    });
    *finishing = Some(interrupt::finishing());
    let written = finish::write(finished?, out, report, args.json, args.quiet);
    tracing::debug!("rfm: results written");
    // Its threads end with the process; nothing waits for them.
    runtime.shutdown_background();
    written
}
