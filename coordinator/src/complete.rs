//! The end of a job, after its tasks: the one place that scores (the merged
//! state never leaves the coordinator), completes the run report, publishes
//! the run or records it failed, and finishes the job with a typed
//! [`JobOutcome`]. Every way a job ends — tasks failed or cancelled, input
//! errors found while scoring, scoring itself failing, success — goes
//! through [`complete`].

use std::sync::Arc;

use rfm_core::engine::{finish_run, number_sample_lines_in};
use rfm_core::ledger::LineLedger;
use rfm_core::report::{RunReport, Stage};
use rfm_core::{DataRoot, ErrorKind, InputFile, PartialState, RfmResult, RunOptions};
use rfm_proto::v1::{ErrorClass, JobState};
use rfm_store::{Recorder, RunId};

use crate::job::{Job, JobOutcome, Publication};
use crate::{publish, report};

/// Why a job failed: the class clients map to an exit code, and the message.
pub type Failure = (ErrorClass, String);

/// What the completion step needs of a job whose tasks have ended.
pub struct Completion {
    pub job: Arc<Job>,
    pub files: Vec<InputFile>,
    pub options: RunOptions,
    /// The report begun at submission.
    pub report: RunReport,
    /// Where the run is recorded, when the coordinator has a run database.
    pub run: Option<(Arc<Recorder>, RunId)>,
    pub data_root: Option<Arc<DataRoot>>,
    /// The computed files' cache entries being written: waited for after
    /// scoring, their warnings added to the report then.
    pub cache_writes: Vec<tokio::task::JoinHandle<Option<String>>>,
}

/// A job that failed, with its completed report.
struct Failed {
    class: ErrorClass,
    error: String,
    report: Box<RunReport>,
}

impl Failed {
    /// The failure `error` of class `class` at `stage`, completing `report`
    /// with `ledger` (what was read) and the run's time.
    fn at(
        stage: Stage,
        class: ErrorClass,
        error: String,
        mut report: RunReport,
        ledger: &LineLedger,
        seconds: f64,
    ) -> Failed {
        report::complete(&mut report, ledger, Err((stage, error.clone())), seconds);
        Failed {
            class,
            error,
            report: Box::new(report),
        }
    }
}

impl Completion {
    fn log(&self, message: &str) {
        tracing::info!(
            "rfm-coordinator: job {}: {}",
            self.job.id,
            rfm_core::text::escape_controls(message)
        );
    }
}

/// Ends a job whose tasks gave `tasks` (the merged state, or why they failed).
pub async fn complete(mut c: Completion, tasks: Result<PartialState, Failure>) {
    let seconds = c.job.seconds();
    let cache_writes = std::mem::take(&mut c.cache_writes);
    let mut scored = match tasks {
        Err((class, error)) => Err(Failed::at(
            Stage::Tasks,
            class,
            error,
            c.report.clone(),
            &LineLedger::default(),
            seconds,
        )),
        Ok(state) => {
            c.job
                .set_state(JobState::Merging, "all tasks done; scoring");
            let (files, root, options, report) = (
                c.files.clone(),
                c.data_root.clone(),
                c.options.clone(),
                c.report.clone(),
            );
            let job_id = c.job.id.clone();
            // Freed pages are handed back only when they are many: a job of
            // fewer customers would pay for the handing back, then fault
            // the same amount of fresh pages in again, for no peak worth it.
            let release = crate::freed_memory::releases(state.customer_count());
            tokio::task::spawn_blocking(move || {
                // The chunk states are merged and gone: their pages go
                // back before scoring allocates its tables.
                if release {
                    crate::freed_memory::release();
                }
                let scoring = std::time::Instant::now();
                // On a thread of the pool: scoring's parallel steps start
                // there at once, not each handed to the pool and waited for.
                let scored = rayon::scope(|_| {
                    score(state, &files, root.as_deref(), &options, report, seconds)
                });
                // The merged state is gone: its pages go back before the
                // result tables are written.
                if release {
                    crate::freed_memory::release();
                }
                tracing::debug!(
                    "rfm-coordinator: job {job_id}: scored in {:.1} ms",
                    scoring.elapsed().as_secs_f64() * 1e3
                );
                scored
            })
            .await
            .unwrap_or_else(|e| {
                Err(Failed::at(
                    Stage::Scoring,
                    ErrorClass::Internal,
                    format!("scoring failed: {e}"),
                    c.report.clone(),
                    &LineLedger::default(),
                    seconds,
                ))
            })
        }
    };
    let writing = std::time::Instant::now();
    for write in cache_writes {
        if let Ok(Some(w)) = write.await {
            c.log(&w);
            let report = match &mut scored {
                Ok((report, _)) => report,
                Err(failed) => &mut *failed.report,
            };
            if let Some(usage) = report.cache.as_mut() {
                usage.warnings.push(w);
            }
        }
    }
    tracing::debug!(
        "rfm-coordinator: job {}: waited {:.1} ms for the cache entries' writes",
        c.job.id,
        writing.elapsed().as_secs_f64() * 1e3
    );
    let outcome = match scored {
        Ok((report, result)) => {
            let result = Arc::new(result);
            let publication = publish(&c, &report, &result).await;
            c.log("succeeded");
            JobOutcome::Succeeded {
                report,
                result,
                publication,
            }
        }
        Err(failed) => {
            c.log(&failed.error);
            if let Some((recorder, run)) = &c.run {
                publish::fail(recorder, *run, (*failed.report).clone()).await;
            }
            JobOutcome::Failed {
                class: failed.class,
                error: failed.error,
                report: Some(*failed.report),
            }
        }
    };
    c.job.finish(outcome);
}

/// Publishes a scored run, when the coordinator has a run database.
async fn publish(c: &Completion, report: &RunReport, result: &Arc<RfmResult>) -> Publication {
    let Some((recorder, run)) = &c.run else {
        return Publication::default();
    };
    match publish::publish(recorder, *run, report.clone(), result.clone()).await {
        Ok(()) => {
            c.log(&format!("published to {}", recorder.target));
            Publication {
                published_to: recorder.target.clone(),
                publish_error: String::new(),
            }
        }
        Err(e) => {
            c.log(&format!("not published: {e}"));
            Publication {
                published_to: String::new(),
                publish_error: e,
            }
        }
    }
}

/// Numbers the malformed samples, applies the limits and scores (blocking):
/// the completed report and the result, or why the job failed.
fn score(
    mut state: PartialState,
    files: &[InputFile],
    root: Option<&DataRoot>,
    options: &RunOptions,
    mut report: RunReport,
    seconds: f64,
) -> Result<(RunReport, RfmResult), Failed> {
    if let Err(e) = number_sample_lines_in(&mut state, files, root) {
        return Err(Failed::at(
            e.stage(),
            ErrorClass::Input,
            e.to_string(),
            report,
            &state.ledger,
            seconds,
        ));
    }
    let (ledger, result) = finish_run(state, files, options);
    match result {
        Ok(result) => {
            report::complete(&mut report, &ledger, Ok(&result), seconds);
            Ok((report, result))
        }
        Err(e) => {
            let class = match e.kind() {
                ErrorKind::Usage => ErrorClass::Usage,
                ErrorKind::Input => ErrorClass::Input,
                ErrorKind::Output => ErrorClass::Internal,
            };
            Err(Failed::at(
                e.stage(),
                class,
                e.to_string(),
                report,
                &ledger,
                seconds,
            ))
        }
    }
}
