//! What any caller can make the coordinator spend: jobs running at once,
//! workers in the registry, the smallest chunk and the most tasks of a job,
//! the largest upload.
//! The standalone coordinator takes them from its flags; `rfm run`'s
//! embedded coordinator (its user's own machine) plans any chunk size.

use rfm_core::InputFile;
use tonic::Status;

/// Default `--max-running-jobs`.
pub const DEFAULT_MAX_RUNNING_JOBS: usize = 16;
/// Default `--max-workers`.
pub const DEFAULT_MAX_WORKERS: usize = 1024;
/// Default `--min-chunk-size`.
pub const DEFAULT_MIN_CHUNK_SIZE: u64 = 1 << 20;
/// Default `--max-tasks-per-job`.
pub const DEFAULT_MAX_TASKS_PER_JOB: u64 = 100_000;

/// The coordinator's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Jobs running at once; a submission beyond is RESOURCE_EXHAUSTED.
    pub max_running_jobs: usize,
    /// Entries of the worker registry (lost ones are purged to make room).
    pub max_workers: usize,
    /// The smallest `--chunk-size` a job may ask for.
    pub min_chunk_size: u64,
    /// The most tasks (chunks) a job may have.
    pub max_tasks_per_job: u64,
    /// The largest file a client may upload (`--max-upload-size`).
    pub max_upload_size: u64,
    /// Uploads unused for this long are removed (`--upload-retention`); zero
    /// keeps them.
    pub upload_retention: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_running_jobs: DEFAULT_MAX_RUNNING_JOBS,
            max_workers: DEFAULT_MAX_WORKERS,
            min_chunk_size: DEFAULT_MIN_CHUNK_SIZE,
            max_tasks_per_job: DEFAULT_MAX_TASKS_PER_JOB,
            max_upload_size: crate::upload::DEFAULT_MAX_UPLOAD_SIZE,
            upload_retention: crate::upload::DEFAULT_UPLOAD_RETENTION,
        }
    }
}

impl Limits {
    /// The limits of `rfm run`'s embedded coordinator: one job of its own
    /// user, any chunk size, any number of tasks.
    pub fn embedded() -> Limits {
        Limits {
            min_chunk_size: 1,
            max_tasks_per_job: u64::MAX,
            ..Limits::default()
        }
    }

    /// Refuses a chunk size below `--min-chunk-size` (before any input is opened).
    /// The chunk size of a job that gave none: the input split into at
    /// least two tasks per live worker slot (so every worker gets work and a
    /// slow one does not hold the end), within this coordinator's minimum
    /// and the default (64 MiB) as maximum, rounded up to a whole KiB.
    pub fn auto_chunk_size(&self, files: &[InputFile], slots: u64) -> u64 {
        let bytes: u64 = files
            .iter()
            .map(|f| f.layout.len.saturating_sub(f.layout.data_start))
            .sum();
        let tasks = 2 * slots.max(1);
        let max = rfm_core::engine::DEFAULT_CHUNK_SIZE.max(self.min_chunk_size);
        bytes
            .div_ceil(tasks)
            .div_ceil(1024)
            .saturating_mul(1024)
            .clamp(self.min_chunk_size.max(1), max)
    }

    pub fn check_chunk_size(&self, chunk_size: u64) -> Result<(), Status> {
        if chunk_size >= self.min_chunk_size {
            return Ok(());
        }
        Err(Status::invalid_argument(format!(
            "invalid option --chunk-size: {chunk_size} bytes is below this coordinator's minimum of \
             {} bytes (its --min-chunk-size); ask for a larger --chunk-size",
            self.min_chunk_size
        )))
    }

    /// Refuses a job of more than `--max-tasks-per-job` chunks (counted
    /// without planning them, as planning makes them: a compressed file is
    /// one task, [`rfm_core::engine::count_chunks`]).
    pub fn check_task_count(&self, files: &[InputFile], chunk_size: u64) -> Result<u64, Status> {
        let chunk_size = chunk_size.max(1);
        let tasks = rfm_core::engine::count_chunks(files, chunk_size);
        if tasks <= self.max_tasks_per_job {
            return Ok(tasks);
        }
        Err(Status::invalid_argument(format!(
            "invalid option --chunk-size: {chunk_size} bytes makes {tasks} tasks, more than this \
             coordinator's limit of {} (its --max-tasks-per-job); ask for a larger --chunk-size",
            self.max_tasks_per_job
        )))
    }

    /// Refuses a job when `running` jobs already run.
    pub fn check_running(&self, running: usize) -> Result<(), Status> {
        if running < self.max_running_jobs {
            return Ok(());
        }
        Err(Status::resource_exhausted(format!(
            "the coordinator runs {running} jobs already, its limit (--max-running-jobs {}); \
             submit again when one has finished",
            self.max_running_jobs
        )))
    }
}
