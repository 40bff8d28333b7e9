//! A job's shared state: its status (what `GetJob` answers), the stream of
//! events watchers receive, the cancel signal and, once finished, its result.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use rfm_proto::v1::{ErrorClass, JobEvent, JobResult, JobState, JobStatus};
use tokio::sync::{broadcast, watch};

/// Where a finished job's run went in the database.
#[derive(Clone, Debug, Default)]
pub struct Publication {
    /// The database target, when the run was published.
    pub published_to: String,
    /// Why publishing failed, when it did.
    pub publish_error: String,
}

/// One submitted job.
pub struct Job {
    pub id: String,
    started: Instant,
    status: Mutex<JobStatus>,
    events: broadcast::Sender<JobEvent>,
    result: Mutex<Option<JobResult>>,
    finished_at: Mutex<Option<Instant>>,
    /// Why the job is cancelled, once it is.
    cancel: watch::Sender<Option<String>>,
}

/// Whether a state is final.
pub fn is_terminal(state: i32) -> bool {
    [JobState::Succeeded, JobState::Failed, JobState::Cancelled]
        .iter()
        .any(|s| *s as i32 == state)
}

fn stage_name(state: JobState) -> &'static str {
    match state {
        JobState::Unspecified => "unknown",
        JobState::Running => "running",
        JobState::Merging => "merging",
        JobState::Succeeded => "succeeded",
        JobState::Failed => "failed",
        JobState::Cancelled => "cancelled",
    }
}

impl Job {
    pub fn new(id: String, tasks: u32, bytes: u64) -> Job {
        let status = JobStatus {
            job_id: id.clone(),
            state: JobState::Running as i32,
            stage: stage_name(JobState::Running).into(),
            tasks_total: tasks,
            bytes_total: bytes,
            ..Default::default()
        };
        crate::metrics::METRICS.job_submitted();
        Job {
            id,
            started: Instant::now(),
            status: Mutex::new(status),
            events: broadcast::channel(1024).0,
            result: Mutex::new(None),
            finished_at: Mutex::new(None),
            cancel: watch::channel(None).0,
        }
    }

    fn lock_status(&self) -> MutexGuard<'_, JobStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current status.
    pub fn status(&self) -> JobStatus {
        let mut s = self.lock_status().clone();
        if !is_terminal(s.state) {
            s.elapsed_seconds = self.started.elapsed().as_secs_f64();
        }
        s
    }

    pub fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Changes the status and tells the watchers (with an optional message).
    pub fn update(&self, message: &str, change: impl FnOnce(&mut JobStatus)) {
        let mut s = self.lock_status();
        if is_terminal(s.state) {
            return;
        }
        let before = s.clone();
        change(&mut s);
        crate::metrics::METRICS.progress(&before, &s);
        s.elapsed_seconds = self.started.elapsed().as_secs_f64();
        let event = JobEvent {
            status: Some(s.clone()),
            message: message.to_string(),
        };
        drop(s);
        let _ = self.events.send(event);
    }

    pub fn set_state(&self, state: JobState, message: &str) {
        self.update(message, |s| {
            s.state = state as i32;
            s.stage = stage_name(state).into();
        });
    }

    /// Ends the job: stores its result, then sends the final event (so a
    /// watcher that sees the end can fetch the result at once).
    pub fn finish(
        &self,
        state: JobState,
        class: ErrorClass,
        error: String,
        report_json: String,
        state_ipc: Vec<u8>,
    ) {
        self.finish_published(
            state,
            class,
            error,
            report_json,
            state_ipc,
            Publication::default(),
        );
    }

    /// [`Job::finish`], saying also where the run was published (or why not).
    pub fn finish_published(
        &self,
        state: JobState,
        class: ErrorClass,
        error: String,
        report_json: String,
        state_ipc: Vec<u8>,
        publication: Publication,
    ) {
        let message = if error.is_empty() {
            stage_name(state).to_string()
        } else {
            format!("{}: {error}", stage_name(state))
        };
        let mut s = self.lock_status();
        if is_terminal(s.state) {
            return;
        }
        s.state = state as i32;
        s.stage = stage_name(state).into();
        s.error = error;
        s.error_class = class as i32;
        s.tasks_running = 0;
        s.elapsed_seconds = self.started.elapsed().as_secs_f64();
        let status = s.clone();
        drop(s);
        crate::metrics::METRICS.job_ended(state, status.elapsed_seconds);
        *self.finished_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        *self.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(JobResult {
            status: Some(status.clone()),
            report_json,
            state_ipc,
            published_to: publication.published_to,
            publish_error: publication.publish_error,
        });
        let _ = self.events.send(JobEvent {
            status: Some(status),
            message,
        });
    }

    /// How long ago the job ended, if it has.
    pub fn ended_ago(&self) -> Option<std::time::Duration> {
        self.finished_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|t| t.elapsed())
    }

    /// The result, once the job has ended.
    pub fn result(&self) -> Option<JobResult> {
        self.result
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.events.subscribe()
    }

    /// Cancels the job; `reason` becomes its error (the first reason stays).
    pub fn cancel(&self, reason: &str) {
        self.cancel.send_if_modified(|r| {
            let first = r.is_none();
            if first {
                *r = Some(reason.to_string());
            }
            first
        });
    }

    pub fn cancel_signal(&self) -> watch::Receiver<Option<String>> {
        self.cancel.subscribe()
    }
}
