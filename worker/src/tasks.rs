//! The worker's task service: `RunTask` computes a chunk's partial state on
//! the rayon pool (never on the async runtime, so heartbeats keep flowing),
//! keeps it until the coordinator has fetched it and says `ReleaseTask`;
//! `CancelTask` drops a task's state and stops it if it has not finished.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::RecordBatch;
use rfm_core::engine::{compute_chunk, MappedFile, SUB_RANGE_SIZE};
use rfm_core::input::ParseOptions;
use rfm_core::{Chunk, InputFile};
use rfm_proto::v1::worker_server::Worker;
use rfm_proto::v1::{RunTaskRequest, RunTaskResponse, TaskAck, TaskRef};
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

/// Identity of one attempt at a task.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TaskKey {
    pub job_id: String,
    pub task_id: u32,
    pub attempt: u32,
}

impl TaskKey {
    pub fn new(job_id: &str, task_id: u32, attempt: u32) -> TaskKey {
        TaskKey {
            job_id: job_id.to_string(),
            task_id,
            attempt,
        }
    }
}

/// Finished states waiting to be fetched, cancelled tasks, running count.
#[derive(Default)]
pub struct TaskStore {
    finished: Mutex<HashMap<TaskKey, RecordBatch>>,
    cancelled: Mutex<HashSet<TaskKey>>,
    running: AtomicU32,
}

impl TaskStore {
    pub fn running(&self) -> u32 {
        self.running.load(Ordering::Relaxed)
    }

    /// Finished states not yet released by the coordinator.
    pub fn holding(&self) -> usize {
        lock(&self.finished).len()
    }

    /// The finished state of a task, if this worker holds it.
    pub fn finished(&self, key: &TaskKey) -> Option<RecordBatch> {
        lock(&self.finished).get(key).cloned()
    }

    /// Holds a finished task's state until the coordinator has fetched it.
    pub fn keep(&self, key: TaskKey, batch: RecordBatch) {
        lock(&self.finished).insert(key, batch);
    }

    fn release(&self, key: &TaskKey) {
        lock(&self.finished).remove(key);
    }

    /// Drops every finished state: after registering again under a new id the
    /// coordinator has re-run this worker's tasks elsewhere.
    pub fn forget_finished(&self) -> usize {
        let mut finished = lock(&self.finished);
        let n = finished.len();
        finished.clear();
        n
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts a running task for as long as it lives.
struct Running<'a>(&'a AtomicU32);

impl<'a> Running<'a> {
    fn enter(counter: &'a AtomicU32) -> Running<'a> {
        counter.fetch_add(1, Ordering::Relaxed);
        Running(counter)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a computed task hands back.
struct Computed {
    batch: RecordBatch,
    lines_read: u64,
    customers: u64,
}

/// The gRPC `Worker` service.
pub struct TaskService {
    store: Arc<TaskStore>,
    pool: Arc<rayon::ThreadPool>,
    delay: Duration,
    /// This worker's address, named in error messages.
    name: String,
}

impl TaskService {
    pub fn new(
        store: Arc<TaskStore>,
        pool: Arc<rayon::ThreadPool>,
        delay: Duration,
        name: String,
    ) -> Self {
        TaskService {
            store,
            pool,
            delay,
            name,
        }
    }
}

/// Reads the chunk and folds it into a partial state (runs on the rayon pool).
fn compute(input: &InputFile, chunk: Chunk, parse: &ParseOptions) -> Result<Computed, String> {
    let map = MappedFile::open(&input.path).map_err(|e| e.to_string())?;
    let len = map.bytes().len() as u64;
    if len != input.layout.len {
        return Err(format!(
            "{}: this worker sees {len} bytes but the coordinator planned {} bytes; \
             the input must be the same file on a filesystem shared by coordinator and workers",
            input.path.display(),
            input.layout.len
        ));
    }
    let state = compute_chunk(&map, input, chunk, parse, SUB_RANGE_SIZE);
    Ok(Computed {
        batch: state.to_record_batch(),
        lines_read: state.ledger.lines_read,
        customers: state.customer_count() as u64,
    })
}

fn key_of(task: Option<&TaskRef>) -> Result<TaskKey, Status> {
    let t = task.ok_or_else(|| Status::invalid_argument("request has no task"))?;
    Ok(TaskKey::new(&t.job_id, t.task_id, t.attempt))
}

#[tonic::async_trait]
impl Worker for TaskService {
    async fn run_task(
        &self,
        request: Request<RunTaskRequest>,
    ) -> Result<Response<RunTaskResponse>, Status> {
        let req = request.into_inner();
        let key = key_of(req.task.as_ref())?;
        let _running = Running::enter(&self.store.running);
        let count = crate::http::TaskCount::start();
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let input: InputFile = serde_json::from_str(&req.input_json).map_err(|e| {
            Status::invalid_argument(format!("input_json is not an input file: {e}"))
        })?;
        let options = req
            .options
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("request has no options"))?;
        let options = rfm_proto::options::from_proto(options)
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        let chunk = Chunk {
            file_index: req.file_index,
            start: req.start,
            end: req.end,
        };
        let (tx, rx) = oneshot::channel();
        self.pool.spawn(move || {
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                compute(&input, chunk, &options.parse)
            }));
            let _ = tx.send(outcome);
        });
        let outcome = rx
            .await
            .map_err(|_| Status::internal("the task's thread ended without an answer"))?;
        let computed = match outcome {
            Ok(Ok(c)) => c,
            Ok(Err(message)) => {
                return Err(Status::failed_precondition(format!(
                    "worker {}: {message}",
                    self.name
                )))
            }
            Err(_) => {
                return Err(Status::internal(format!(
                    "worker {}: the task panicked",
                    self.name
                )))
            }
        };
        if lock(&self.store.cancelled).remove(&key) {
            return Err(Status::cancelled("the task was cancelled"));
        }
        let response = RunTaskResponse {
            lines_read: computed.lines_read,
            customers: computed.customers,
        };
        self.store.keep(key, computed.batch);
        count.completed(req.end.saturating_sub(req.start), computed.lines_read);
        Ok(Response::new(response))
    }

    async fn cancel_task(&self, request: Request<TaskRef>) -> Result<Response<TaskAck>, Status> {
        let key = key_of(Some(&request.into_inner()))?;
        if lock(&self.store.finished).remove(&key).is_none() {
            lock(&self.store.cancelled).insert(key);
        }
        Ok(Response::new(TaskAck {}))
    }

    async fn release_task(&self, request: Request<TaskRef>) -> Result<Response<TaskAck>, Status> {
        let key = key_of(Some(&request.into_inner()))?;
        self.store.release(&key);
        Ok(Response::new(TaskAck {}))
    }
}
