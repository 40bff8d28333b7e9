//! `rfm run`: the whole job in this process, on an embedded cluster (a
//! coordinator and a worker over loopback; the coordinator scores and, with
//! `--database-url`, records and publishes the run like any coordinator),
//! then the result files and summary (see [`crate::finish`]). A run that
//! fails at any stage after its options leaves a failed `run.json`;
//! SIGINT/SIGTERM record it `failed` ("interrupted") the same way, and in
//! the database through the embedded coordinator (see [`crate::interrupt`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use rfm_core::engine;
use rfm_core::output::OutDir;
use rfm_core::report::{self, RunReport, Stage};
use rfm_core::text::escape_for_terminal;
use rfm_core::RunOptions;
use rfm_store::Recorder;

use crate::cli::RunArgs;
use crate::cluster::{self, EmbeddedAccess};
use crate::failure::{At as _, Failed};
use crate::{finish, interrupt, options};

/// How long an interrupted `rfm run` waits for its coordinator to record
/// the run failed.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

/// The embedded coordinator's lease on its runs, on the terms of the flags.
fn lease(args: &RunArgs) -> Result<rfm_store::Lease> {
    rfm_store::Lease::new("rfm-coordinator", args.run_lease, args.run_heartbeat).map_err(|e| {
        crate::exit::UsageError(format!("invalid options --run-lease/--run-heartbeat: {e}")).into()
    })
}

/// Arms the interrupt: the first SIGINT/SIGTERM leaves `report` failed in
/// `out`, after cancelling the job on the embedded coordinator when it
/// records the run in a database (it records it `failed` there).
fn arm_interrupt(
    out: &OutDir,
    report: &RunReport,
    started: Instant,
    recorded_by: Option<EmbeddedAccess>,
) {
    let (out, mut report) = (out.clone(), report.clone());
    interrupt::on_signal(move |_| {
        if let Some(access) = recorded_by {
            if let Err(e) = cluster::cancel_blocking(
                &access.url,
                access.token,
                None,
                &report.run_id,
                interrupt::INTERRUPTED,
                true,
                CANCEL_TIMEOUT,
            ) {
                eprintln!(
                    "{}",
                    escape_for_terminal(&format!(
                        "warning: run {} may not be recorded failed in the database: {e:#}",
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

pub fn run(args: RunArgs) -> Result<()> {
    interrupt::listen()?;
    run_once(&args, &report::new_run_id())
}

/// One run with the id `run_id` (signals already caught, see
/// [`interrupt::listen`]); `rfm watch` makes one per change.
pub fn run_once(args: &RunArgs, run_id: &str) -> Result<()> {
    let started = Instant::now();
    // Usage errors stop the command before a run exists: nothing is written.
    let mut opts = options::run_options(&args.input)?;
    if opts.chunk_size == engine::AUTO_CHUNK_SIZE {
        // One worker whose slots share one rayon pool: a chunk already uses
        // every core (sub-ranges), and more tasks only add transfers and merges.
        opts.chunk_size = engine::DEFAULT_CHUNK_SIZE;
    }
    let lease = lease(args)?;
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
    if let Some(url) = args
        .database_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
    {
        // A URL that does not parse is a usage error: no run folder for it.
        // (Its TLS settings are checked when connecting, a database failure.)
        if let Err(e @ rfm_store::Error::Url { .. }) = rfm_store::check_url(url) {
            return Err(crate::exit::UsageError(format!(
                "invalid option --database-url (setting database_url, env DATABASE_URL): {e}"
            ))
            .into());
        }
    }
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| args.results_root.join(run_id));
    let out = OutDir::prepare(&out_dir)?;
    let mut report = RunReport::before_input(run_id, &args.input.input, &opts);
    arm_interrupt(&out, &report, started, None);
    finish::run_to_end(
        &out,
        &mut report,
        started,
        args.quiet,
        |report, finishing| {
            attempt(
                args, &opts, threads, lease, &out, started, report, finishing,
            )
        },
    )
}

/// The state cache of a run: under the results root for a run kept there,
/// else only where --cache-dir says (a one-off `--out DIR` run leaves no
/// cache behind); none with --no-cache.
fn cache(args: &RunArgs) -> Option<rfm_core::cache::Cache> {
    if args.no_cache || (args.out.is_some() && args.cache.cache_dir.is_none()) {
        return None;
    }
    Some(args.cache.cache(&args.results_root))
}

/// Opens the inputs, connects the run database, runs the job on the
/// embedded cluster and writes its results.
#[allow(clippy::too_many_arguments)]
fn attempt(
    args: &RunArgs,
    opts: &RunOptions,
    threads: usize,
    lease: rfm_store::Lease,
    out: &OutDir,
    started: Instant,
    report: &mut RunReport,
    finishing: &mut Option<interrupt::Finishing>,
) -> Result<(), Failed> {
    let files = engine::open_inputs(&args.input.input, &opts.parse)?;
    tracing::debug!(
        "rfm: {} input files opened at {:.1} ms",
        files.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    *report = RunReport::begin(&report.run_id, &files, opts);
    arm_interrupt(out, report, started, None);
    // Connected before any work: an unusable database fails the run at once.
    let recorder = match args
        .database_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
    {
        Some(url) => Some(Arc::new(
            Recorder::connect(url, lease, |w| eprintln!("warning: {w}")).at(Stage::Database)?,
        )),
        None => None,
    };
    let recorded = recorder.is_some();
    let (finished, teardown) = cluster::run_embedded(
        &args.input.input,
        files,
        opts,
        &report.run_id,
        threads,
        !(args.quiet || args.json),
        recorder.clone(),
        cache(args).map(Arc::new),
        |access| {
            if recorded {
                arm_interrupt(out, report, started, Some(access));
            }
        },
    );
    *finishing = Some(interrupt::finishing());
    tracing::debug!(
        "rfm: job ended at {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    // The results are written while the cluster shuts down.
    let written = finished.and_then(|f| finish::write(f, out, report, args.json, args.quiet));
    tracing::debug!(
        "rfm: results written at {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    drop(teardown);
    // The database's connection closes here, off the cluster's runtime
    // (which is gone: this is its last user).
    drop(recorder);
    written
}
