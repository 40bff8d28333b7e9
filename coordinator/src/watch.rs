//! `rfm-coordinator --watch DIR [--every D | --cron EXPR]`: scheduled and
//! watched runs of the folder's files on this coordinator's workers. The
//! folder is polled and debounced by [`rfm_core::watch`] on a thread of its
//! own; each due run is submitted in-process, exactly like `rfm submit DIR`
//! (the same planning, limits, data root, recording and publishing), and
//! awaited before the next (never two runs of the folder at once). The run
//! history is the run database (`--database-url`) and, with
//! `--results-root DIR`, one folder per run under DIR as `rfm run` writes
//! them (`customers.csv`, `segments.csv`, `run.json`; `run.json` alone for a
//! failed or skipped run), so `rfm segments` and the dashboards read them:
//! published, failed (also a folder whose files cannot be opened, e.g. a
//! header missing a column, which `rfm submit` would refuse before any job)
//! and skipped runs. Runs read their files with the parse options of the
//! command line (`--delimiter`, `--decimal-comma`, `--date-format`, …: the
//! flags of `rfm run`). One log line per event. On SIGINT/SIGTERM watching stops; the drain lets a run in
//! progress finish or fails it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rfm_core::engine::{open_inputs_in, RunOptions};
use rfm_core::output::OutDir;
use rfm_core::report::{self, RunReport, Stage};
use rfm_core::text::escape_controls;
use rfm_core::watch::{Event, Schedule, WatchOptions};
use rfm_core::{Cancel, DataRoot};
use rfm_proto::v1::coordinator_server::Coordinator as _;
use rfm_proto::v1::{JobState, SubmitJobRequest};
use rfm_proto::{is_terminal, PROTOCOL_VERSION, WATCH_BEAT};
use rfm_store::Recorder;
use tonic::Request;

use crate::retention::JobTable;
use crate::service::CoordinatorService;

/// Submits jobs to this coordinator in-process (as the open identity, like
/// the embedded coordinator's own client) and records what a job cannot.
#[derive(Clone)]
pub struct Submitter {
    pub(crate) service: Arc<CoordinatorService>,
    pub(crate) jobs: Arc<JobTable>,
    pub(crate) recorder: Option<Arc<Recorder>>,
    pub(crate) data_root: Option<Arc<DataRoot>>,
}

fn log(line: &str) {
    tracing::info!("rfm-coordinator: watch: {}", escape_controls(line));
}

impl Submitter {
    /// Runs the job of `input` to its end; true when it succeeded (and, with
    /// a database, was published).
    /// With `results`, the run's folder is written under it.
    pub async fn run(
        &self,
        input: &str,
        options: &RunOptions,
        results: Option<&Path>,
        why: &str,
    ) -> bool {
        let started = Instant::now();
        // Inputs that cannot be opened are refused before a job exists: the
        // run is recorded failed here, with the engine's stage and reason.
        let opened = {
            let (input, root, parse) = (
                input.to_string(),
                self.data_root.clone(),
                options.parse.clone(),
            );
            tokio::task::spawn_blocking(move || {
                open_inputs_in(&input, root.as_deref(), &parse, &Cancel::default())
            })
            .await
        };
        let run_id = report::new_run_id();
        match opened {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                let failed = Failed {
                    stage: e.stage(),
                    error: &e.to_string(),
                    started,
                };
                self.record_failed(&run_id, input, options, results, failed)
                    .await;
                return false;
            }
            Err(e) => {
                log(&format!("cannot check the folder: {e}"));
                return false;
            }
        }
        let request = Request::new(SubmitJobRequest {
            protocol_version: PROTOCOL_VERSION,
            input: input.to_string(),
            options: Some(rfm_proto::options::to_proto(&RunOptions {
                chunk_size: 0, // the coordinator's automatic split
                ..options.clone()
            })),
            job_id: run_id.clone(),
            upload: None,
        });
        if let Err(status) = self.service.submit_job(request).await {
            let message = status.message().to_string();
            let failed = Failed {
                stage: Stage::Planning,
                error: &message,
                started,
            };
            self.record_failed(&run_id, input, options, results, failed)
                .await;
            return false;
        }
        log(&format!("run {run_id} started ({why})"));
        let Ok(job) = self.jobs.get(&run_id) else {
            log(&format!("run {run_id}: the job is gone"));
            return false;
        };
        let mut events = job.subscribe();
        while !is_terminal(job.status().state) {
            let _ = tokio::time::timeout(WATCH_BEAT, events.recv()).await;
        }
        let status = job.status();
        let result = job.result();
        if let Some(root) = results {
            let report = result
                .as_ref()
                .and_then(|r| r.report.as_ref())
                .and_then(|r| rfm_proto::report::from_proto(r).ok())
                .unwrap_or_else(|| {
                    let mut report = RunReport::before_input(&run_id, input, options);
                    report.fail(Stage::Tasks, &status.error);
                    report
                });
            write_folder(root, &report, job.tables()).await;
        }
        let publish_error = result
            .as_ref()
            .map(|r| r.publish_error.clone())
            .unwrap_or_default();
        if status.state == JobState::Succeeded as i32 && publish_error.is_empty() {
            let customers = result
                .as_ref()
                .and_then(|r| r.report.as_ref())
                .map(|r| r.customers)
                .unwrap_or_default();
            let published = result.map(|r| r.published_to).unwrap_or_default();
            let place = if published.is_empty() {
                String::new()
            } else {
                format!("; published to {published}")
            };
            log(&format!(
                "run {run_id} succeeded: {customers} customers{place}"
            ));
            true
        } else {
            let error = if publish_error.is_empty() {
                status.error
            } else {
                format!("not published: {publish_error}")
            };
            log(&format!("run {run_id} failed: {error}"));
            false
        }
    }

    /// Records a run that failed before its job existed (a log line without
    /// a database or a results root).
    async fn record_failed(
        &self,
        run_id: &str,
        input: &str,
        options: &RunOptions,
        results: Option<&Path>,
        failed: Failed<'_>,
    ) {
        let Failed {
            stage,
            error,
            started,
        } = failed;
        log(&format!("run {run_id} failed at {stage}: {error}"));
        let mut report = RunReport::before_input(run_id, input, options);
        report.fail(stage, error);
        report.finished_at = report::utc_now();
        report.seconds = started.elapsed().as_secs_f64();
        if let Some(root) = results {
            write_folder(root, &report, None).await;
        }
        let Some(recorder) = &self.recorder else {
            return;
        };
        match crate::publish::begin(recorder, report.clone()).await {
            Ok(run) => crate::publish::fail(recorder, run, report).await,
            Err(e) => log(&format!("run {run_id} could not be recorded: {e}")),
        }
    }

    /// Records a skipped scheduled run.
    fn record_skipped(
        &self,
        input: &str,
        options: &RunOptions,
        results: Option<&Path>,
        reason: &str,
    ) {
        let run_id = report::new_run_id();
        let mut report = RunReport::before_input(&run_id, input, options);
        report.skip(reason);
        if let Some(root) = results {
            write_folder_now(root, &report, None);
        }
        match &self.recorder {
            Some(recorder) => match recorder.skipped(&report) {
                Ok(()) => log(&format!("run {run_id} skipped: {reason}")),
                Err(e) => log(&format!(
                    "run {run_id} skipped ({reason}), but not recorded: {e}"
                )),
            },
            None => log(&format!("run {run_id} skipped: {reason}")),
        }
    }
}

/// Why a run failed before its job existed.
struct Failed<'a> {
    stage: Stage,
    error: &'a str,
    started: Instant,
}

/// Writes a run's folder under `root` (blocking): its result files when it
/// has `result`, and its `run.json`; a log line when it cannot be written.
fn write_folder_now(root: &Path, report: &RunReport, result: Option<&rfm_core::RfmResult>) {
    let dir = root.join(&report.run_id);
    let written = OutDir::prepare(&dir).and_then(|out| match result {
        Some(result) => out.write_results(result, report),
        None => out.write_report(report),
    });
    if let Err(e) = written {
        log(&format!(
            "run {}: cannot write its folder {}: {e}",
            report.run_id,
            dir.display()
        ));
    }
}

/// [`write_folder_now`] off the runtime's threads.
async fn write_folder(root: &Path, report: &RunReport, result: Option<Arc<rfm_core::RfmResult>>) {
    let (root, report) = (root.to_path_buf(), report.clone());
    let _ = tokio::task::spawn_blocking(move || {
        write_folder_now(&root, &report, result.as_deref());
    })
    .await;
}

/// What `--watch` asks.
#[derive(Clone, Debug)]
pub struct Watch {
    pub options: WatchOptions,
    pub run: RunOptions,
    /// `--results-root`: where each run's folder is written (none: the run
    /// database only).
    pub results_root: Option<PathBuf>,
}

impl Watch {
    fn describe(&self) -> String {
        let schedule = match &self.options.schedule {
            Schedule::OnChange => "on each change".to_string(),
            Schedule::Every(d) => format!("every {d:?}"),
            Schedule::Cron(c) => format!("at cron '{c}' (UTC)"),
        };
        let folders = match &self.results_root {
            Some(root) => format!("; run folders under {}", root.display()),
            None => String::new(),
        };
        format!(
            "watching {} ({schedule}; poll {:?}, debounce {:?}){folders}",
            self.options.dir.display(),
            self.options.poll,
            self.options.debounce
        )
    }
}

/// Watches on a thread of its own until `stop` is set; runs are submitted
/// through `runtime` (the coordinator's).
pub fn spawn(
    watch: Watch,
    submitter: Submitter,
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("rfm-watch".into())
        .spawn(move || {
            log(&watch.describe());
            let input = watch.options.dir.display().to_string();
            let outcome = rfm_core::watch::watch(&watch.options, &stop, |event| {
                if stop.load(Ordering::SeqCst) {
                    return false;
                }
                match event {
                    Event::Changed(what) => {
                        log(&format!("change seen in {input}: {what}"));
                        true
                    }
                    Event::Run(why) => runtime.block_on(submitter.run(
                        &input,
                        &watch.run,
                        watch.results_root.as_deref(),
                        why,
                    )),
                    Event::Skip(reason) => {
                        submitter.record_skipped(
                            &input,
                            &watch.run,
                            watch.results_root.as_deref(),
                            reason,
                        );
                        true
                    }
                }
            });
            match outcome {
                Ok(()) => log("stopped watching"),
                Err(e) => tracing::error!(
                    "rfm-coordinator: watch: cannot read the folder {input}: {}; stopped watching",
                    escape_controls(&e.to_string())
                ),
            }
        })
}
