//! Process-wide counters of the coordinator, rendered in the Prometheus text
//! format by `/metrics`: jobs submitted and ended (by outcome), tasks
//! completed, task retries, bytes and lines processed, and a histogram of
//! job durations. Jobs update them as their status changes.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use rfm_proto::v1::{JobState, JobStatus};

/// Upper bounds (seconds) of the job duration histogram's buckets.
pub const DURATION_BUCKETS: [f64; 10] = [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0];

/// The coordinator's counters.
pub struct Metrics {
    jobs_submitted: AtomicU64,
    jobs_succeeded: AtomicU64,
    jobs_failed: AtomicU64,
    jobs_cancelled: AtomicU64,
    tasks_completed: AtomicU64,
    task_retries: AtomicU64,
    bytes: AtomicU64,
    lines: AtomicU64,
    duration_buckets: [AtomicU64; DURATION_BUCKETS.len()],
    duration_micros: AtomicU64,
}

/// The counters of this process.
pub static METRICS: Metrics = Metrics::new();

impl Metrics {
    const fn new() -> Metrics {
        Metrics {
            jobs_submitted: AtomicU64::new(0),
            jobs_succeeded: AtomicU64::new(0),
            jobs_failed: AtomicU64::new(0),
            jobs_cancelled: AtomicU64::new(0),
            tasks_completed: AtomicU64::new(0),
            task_retries: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            lines: AtomicU64::new(0),
            duration_buckets: [const { AtomicU64::new(0) }; DURATION_BUCKETS.len()],
            duration_micros: AtomicU64::new(0),
        }
    }

    /// A job was accepted.
    pub fn job_submitted(&self) {
        self.jobs_submitted.fetch_add(1, Relaxed);
    }

    /// A job's status changed from `before` to `after`: counts the progress.
    pub fn progress(&self, before: &JobStatus, after: &JobStatus) {
        let delta = |a: u64, b: u64| b.saturating_sub(a);
        self.tasks_completed.fetch_add(
            delta(before.tasks_done.into(), after.tasks_done.into()),
            Relaxed,
        );
        self.task_retries
            .fetch_add(delta(before.retries.into(), after.retries.into()), Relaxed);
        self.bytes
            .fetch_add(delta(before.bytes_done, after.bytes_done), Relaxed);
        self.lines
            .fetch_add(delta(before.lines_done, after.lines_done), Relaxed);
    }

    /// A job ended in `state` after `seconds`.
    pub fn job_ended(&self, state: JobState, seconds: f64) {
        let counter = match state {
            JobState::Succeeded => &self.jobs_succeeded,
            JobState::Cancelled => &self.jobs_cancelled,
            _ => &self.jobs_failed,
        };
        counter.fetch_add(1, Relaxed);
        for (bound, bucket) in DURATION_BUCKETS.iter().zip(&self.duration_buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.duration_micros
            .fetch_add((seconds.max(0.0) * 1e6) as u64, Relaxed);
    }

    /// The Prometheus text exposition of the counters, with the gauges
    /// given: the workers alive and lost, and the finished jobs kept with
    /// the memory their results hold.
    pub fn render(
        &self,
        workers_alive: usize,
        workers_lost: usize,
        (finished_kept, finished_bytes): (usize, u64),
    ) -> String {
        let mut s = String::new();
        let submitted = self.jobs_submitted.load(Relaxed);
        let (ok, failed, cancelled) = (
            self.jobs_succeeded.load(Relaxed),
            self.jobs_failed.load(Relaxed),
            self.jobs_cancelled.load(Relaxed),
        );
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter("rfm_jobs_submitted_total", "Jobs accepted.", submitted);
        counter("rfm_jobs_completed_total", "Jobs that succeeded.", ok);
        counter("rfm_jobs_failed_total", "Jobs that failed.", failed);
        counter("rfm_jobs_cancelled_total", "Jobs cancelled.", cancelled);
        counter(
            "rfm_tasks_completed_total",
            "Tasks computed (again when a state lost with its worker made them run again).",
            self.tasks_completed.load(Relaxed),
        );
        counter(
            "rfm_task_retries_total",
            "Task attempts run again (lost worker, failed fetch).",
            self.task_retries.load(Relaxed),
        );
        counter(
            "rfm_bytes_processed_total",
            "Input bytes of completed tasks.",
            self.bytes.load(Relaxed),
        );
        counter(
            "rfm_lines_processed_total",
            "Input lines of completed tasks.",
            self.lines.load(Relaxed),
        );
        let mut gauge = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge(
            "rfm_jobs_running",
            "Jobs not yet ended.",
            submitted.saturating_sub(ok + failed + cancelled),
        );
        gauge(
            "rfm_workers_alive",
            "Registered workers heartbeating.",
            workers_alive as u64,
        );
        gauge(
            "rfm_workers_lost",
            "Workers declared lost.",
            workers_lost as u64,
        );
        gauge(
            "rfm_finished_jobs_kept",
            "Finished jobs kept in memory for their status and results.",
            finished_kept as u64,
        );
        gauge(
            "rfm_finished_results_bytes",
            "Memory the results of the finished jobs kept hold, about (--max-finished-results-size).",
            finished_bytes,
        );
        let name = "rfm_job_duration_seconds";
        let _ = writeln!(
            s,
            "# HELP {name} Wall time of ended jobs.\n# TYPE {name} histogram"
        );
        for (bound, bucket) in DURATION_BUCKETS.iter().zip(&self.duration_buckets) {
            let _ = writeln!(
                s,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let count = ok + failed + cancelled;
        let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.duration_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(s, "{name}_sum {sum}\n{name}_count {count}");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::new();
        m.job_submitted();
        let before = JobStatus::default();
        let after = JobStatus {
            tasks_done: 3,
            retries: 1,
            bytes_done: 100,
            lines_done: 10,
            ..Default::default()
        };
        m.progress(&before, &after);
        m.job_ended(JobState::Succeeded, 2.0);
        let text = m.render(2, 1, (3, 4096));
        for line in [
            "rfm_jobs_submitted_total 1",
            "rfm_jobs_completed_total 1",
            "rfm_tasks_completed_total 3",
            "rfm_task_retries_total 1",
            "rfm_bytes_processed_total 100",
            "rfm_lines_processed_total 10",
            "rfm_jobs_running 0",
            "rfm_workers_alive 2",
            "rfm_finished_jobs_kept 3",
            "rfm_finished_results_bytes 4096",
            "rfm_job_duration_seconds_bucket{le=\"1\"} 0",
            "rfm_job_duration_seconds_bucket{le=\"2.5\"} 1",
            "rfm_job_duration_seconds_bucket{le=\"+Inf\"} 1",
            "rfm_job_duration_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
        }
    }
}
