//! `rfm watch DIR`: watched and scheduled runs on one machine. The folder is
//! polled and debounced by [`rfm_core::watch`]; each due run is an `rfm run
//! DIR` (see [`crate::run::run_once`]: embedded cluster, results under the
//! results root, the database when set), one at a time; a scheduled run with
//! nothing new is recorded `skipped`. One log line per event on standard
//! error, terminal-escaped. SIGINT/SIGTERM between runs stop watching (exit
//! 0); during a run, the run is recorded failed ("interrupted") as `rfm run`
//! does (exit 130/143).

use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use rfm_core::output::{OutDir, REPORT_FILE};
use rfm_core::report::{self, RunReport};
use rfm_core::text::escape_for_terminal;
use rfm_core::watch::{Event, Schedule, WatchOptions};
use rfm_core::RunStatus;

use crate::cli::{RunArgs, WatchArgs};
use crate::exit::UsageError;
use crate::{interrupt, options};

/// One line on standard error, with the UTC time, escaped for a terminal.
fn log(line: &str) {
    eprintln!(
        "{} {}",
        report::utc_now(),
        escape_for_terminal(&format!("watch: {line}"))
    );
}

fn describe(schedule: &Schedule) -> String {
    match schedule {
        Schedule::OnChange => "on each change".into(),
        Schedule::Every(d) => format!("every {d:?}"),
        Schedule::Cron(c) => format!("at cron '{c}' (UTC)"),
    }
}

/// Between runs, a signal stops watching cleanly.
fn arm_idle() {
    interrupt::on_signal_quietly(|signal| {
        log(&format!("{}: stopped watching", signal.name()));
        std::process::exit(0);
    });
}

pub fn watch(args: WatchArgs) -> Result<()> {
    interrupt::listen()?;
    let dir = Path::new(&args.input.input).to_path_buf();
    if !dir.is_dir() {
        return Err(UsageError(format!(
            "rfm watch: {} is not a folder: give the folder whose files to watch",
            dir.display()
        ))
        .into());
    }
    // Options that do not parse stop the command before any run.
    options::run_options(&args.input)?;
    let schedule = Schedule::of(args.watch.every, args.watch.cron.clone())
        .map_err(|e| UsageError(format!("invalid options: {e}")))?;
    let run_args = RunArgs {
        input: args.input.clone(),
        out: None,
        results_root: args.results_root.clone(),
        threads: args.threads,
        quiet: true,
        json: false,
        database_url: args.database_url.clone(),
        run_lease: args.run_lease,
        run_heartbeat: args.run_heartbeat,
        cache: args.cache.clone(),
        no_cache: args.no_cache,
    };
    let options = WatchOptions {
        dir: dir.clone(),
        poll: args.watch.poll_interval,
        debounce: args.watch.debounce,
        schedule,
    };
    log(&format!(
        "watching {} ({}; poll {:?}, debounce {:?}); runs under {}",
        dir.display(),
        describe(&options.schedule),
        options.poll,
        options.debounce,
        args.results_root.display()
    ));
    arm_idle();
    let stop = AtomicBool::new(false);
    rfm_core::watch::watch(&options, &stop, |event| match event {
        Event::Changed(what) => {
            log(&format!("change seen in {}: {what}", dir.display()));
            true
        }
        Event::Run(what) => {
            let ok = run(&run_args, what);
            arm_idle();
            ok
        }
        Event::Skip(reason) => {
            skip(&run_args, reason);
            true
        }
    })
    .with_context(|| format!("cannot read the folder {}", dir.display()))
}

/// Runs once; logs the outcome; true when it succeeded.
fn run(args: &RunArgs, why: &str) -> bool {
    let run_id = report::new_run_id();
    log(&format!("run {run_id} started ({why})"));
    let outcome = crate::run::run_once(args, &run_id);
    let dir = args.results_root.join(&run_id);
    let written = std::fs::read(dir.join(REPORT_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<RunReport>(&b).ok());
    match (outcome, written) {
        (Ok(()), Some(r)) => {
            let place = if args.database_url.as_deref().is_some_and(|u| !u.is_empty()) {
                "published to the database and written to"
            } else {
                "written to"
            };
            log(&format!(
                "run {run_id} succeeded: {} customers, {} lines read; {place} {}",
                r.customers,
                r.lines_read,
                dir.display()
            ));
            true
        }
        (Ok(()), None) => {
            log(&format!("run {run_id} succeeded ({})", dir.display()));
            true
        }
        (Err(e), report) => {
            let stage = report
                .as_ref()
                .and_then(|r| r.stage)
                .map(|s| format!(" at {s}"))
                .unwrap_or_default();
            log(&format!("run {run_id} failed{stage}: {e:#}"));
            false
        }
    }
}

/// Records a skipped scheduled run under the results root (and in the
/// database when set).
fn skip(args: &RunArgs, reason: &str) {
    let run_id = report::new_run_id();
    let recorded = record_skip(args, &run_id, reason);
    match recorded {
        Ok(()) => log(&format!("run {run_id} skipped: {reason}")),
        Err(e) => log(&format!(
            "run {run_id} skipped ({reason}), but not recorded: {e:#}"
        )),
    }
}

fn record_skip(args: &RunArgs, run_id: &str, reason: &str) -> Result<()> {
    let opts = options::run_options(&args.input)?;
    let mut report = RunReport::before_input(run_id, &args.input.input, &opts);
    report.skip(reason);
    debug_assert_eq!(report.status, RunStatus::Skipped);
    let out = OutDir::prepare(&args.results_root.join(run_id))?;
    out.write_report(&report)?;
    if let Some(url) = args
        .database_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
    {
        let lease = rfm_store::Lease::new("rfm watch", args.run_lease, args.run_heartbeat)
            .map_err(|e| anyhow::anyhow!("invalid options --run-lease/--run-heartbeat: {e}"))?;
        let recorder = rfm_store::Recorder::connect(url, lease, |w| log(&format!("warning: {w}")))?;
        recorder.skipped(&report)?;
    }
    Ok(())
}
