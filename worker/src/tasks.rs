//! The worker's task service: `RunTask` computes a chunk's partial state on
//! the rayon pool (never on the async runtime, so heartbeats keep flowing),
//! keeps it until the coordinator has fetched it and says `ReleaseTask`;
//! `CancelTask` drops a task's state, and stops its computation if it is
//! running: the chunk's reading checks a cancellation flag between
//! sub-ranges, so a cancelled task frees its CPU within one sub-range. A
//! `RunTask` call the coordinator gives up (its task timeout, a cancelled
//! job, a lost connection) stops its computation the same way. A worker in
//! the coordinator's process (the embedded cluster) leaves its states in
//! memory for it ([`LocalStates`]) instead of encoding them for Flight.
//! A finished state is kept as computed and encoded when the coordinator
//! fetches it: a `RunTask` may name finished states to fold into its own
//! (`fold`), and those are never encoded at all. A running CSV task may be
//! cut short (`SplitTask`): it stops before the sub-ranges it gave away,
//! and its answer says where its range ended.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
#[cfg(feature = "task-delay")]
use std::time::Duration;

use arrow::array::RecordBatch;
use rfm_core::engine::{compute_chunk_split, InputReader, SUB_RANGE_SIZE};
use rfm_core::format::InputFormat;
use rfm_core::input::ParseOptions;
use rfm_core::split::ChunkSplit;
use rfm_core::{Cancel, Chunk, DataRoot, Error, InputFile, PartialState};
use rfm_proto::local::LocalStates;
use rfm_proto::v1::worker_server::Worker;
use rfm_proto::v1::{RunTaskRequest, RunTaskResponse, SplitTaskResponse, TaskAck, TaskRef};
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

/// A finished state waiting to be fetched.
#[derive(Clone)]
pub enum Kept {
    /// As computed: encoded when fetched, or folded into a later task.
    State(Arc<PartialState>),
    /// Already encoded.
    Batch(RecordBatch),
}

/// Finished states waiting to be fetched, cancelled tasks, the cancellation
/// flags and split points of running tasks, running count.
#[derive(Default)]
pub struct TaskStore {
    finished: Mutex<HashMap<TaskKey, Kept>>,
    /// Where finished states go instead, when the coordinator shares this
    /// process.
    local: Option<Arc<LocalStates>>,
    cancelled: Mutex<HashSet<TaskKey>>,
    flags: Mutex<HashMap<TaskKey, Arc<Cancel>>>,
    /// Where each running CSV task ends, which `SplitTask` may move.
    splits: Mutex<HashMap<TaskKey, Arc<ChunkSplit>>>,
    running: AtomicU32,
}

impl TaskStore {
    /// A store whose finished states go to `local` (in memory, for a
    /// coordinator in this process), or are kept for Flight when `None`.
    pub fn new(local: Option<Arc<LocalStates>>) -> TaskStore {
        TaskStore {
            local,
            ..TaskStore::default()
        }
    }

    pub fn running(&self) -> u32 {
        self.running.load(Ordering::Relaxed)
    }

    /// Whether the coordinator shares this process (the embedded cluster).
    pub fn is_local(&self) -> bool {
        self.local.is_some()
    }

    /// Finished states not yet released by the coordinator.
    pub fn holding(&self) -> usize {
        lock(&self.finished).len() + self.local.as_ref().map_or(0, |l| l.len())
    }

    /// The finished state of a task, if this worker holds it.
    pub fn finished(&self, key: &TaskKey) -> Option<Kept> {
        lock(&self.finished).get(key).cloned()
    }

    /// Holds a finished task's encoded state until the coordinator has
    /// fetched it.
    pub fn keep(&self, key: TaskKey, batch: RecordBatch) {
        lock(&self.finished).insert(key, Kept::Batch(batch));
    }

    /// Holds a finished state as computed, in memory for a coordinator in
    /// this process or until it is fetched over Flight or folded.
    fn keep_state(&self, key: TaskKey, state: PartialState) {
        match &self.local {
            Some(local) => local.put(&key.job_id, key.task_id, key.attempt, state),
            None => {
                lock(&self.finished).insert(key, Kept::State(Arc::new(state)));
            }
        }
    }

    /// Takes out a finished state to fold it into another task's; `None`
    /// when this worker no longer holds it.
    fn take_state(&self, key: &TaskKey) -> Option<Result<PartialState, Error>> {
        if let Some(kept) = lock(&self.finished).remove(key) {
            return Some(match kept {
                Kept::State(state) => Ok(Arc::try_unwrap(state).unwrap_or_else(|s| (*s).clone())),
                Kept::Batch(batch) => PartialState::from_record_batches(&batch.schema(), &[batch]),
            });
        }
        self.local
            .as_ref()
            .and_then(|l| l.take(&key.job_id, key.task_id, key.attempt))
            .map(Ok)
    }

    /// Drops a finished state; whether there was one.
    fn release(&self, key: &TaskKey) -> bool {
        let kept = lock(&self.finished).remove(key).is_some();
        let left = self
            .local
            .as_ref()
            .is_some_and(|l| l.take(&key.job_id, key.task_id, key.attempt).is_some());
        kept || left
    }

    /// Drops every finished state: after registering again under a new id the
    /// coordinator has re-run this worker's tasks elsewhere.
    pub fn forget_finished(&self) -> usize {
        let mut finished = lock(&self.finished);
        let n = finished.len();
        finished.clear();
        n + self.local.as_ref().map_or(0, |l| l.clear())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running task, counted and cancellable for as long as it lives. Dropped
/// before its computation ends (the `RunTask` call was given up), it cancels
/// the computation.
struct Running<'a> {
    store: &'a TaskStore,
    key: TaskKey,
    cancel: Arc<Cancel>,
}

impl<'a> Running<'a> {
    fn enter(store: &'a TaskStore, key: TaskKey) -> Running<'a> {
        store.running.fetch_add(1, Ordering::Relaxed);
        let cancel = Arc::new(Cancel::default());
        lock(&store.flags).insert(key.clone(), cancel.clone());
        Running { store, key, cancel }
    }

    /// Lets `SplitTask` cut this task's chunk short while it runs.
    fn splittable(&self, chunk: Chunk) -> Arc<ChunkSplit> {
        let split = Arc::new(ChunkSplit::new(chunk, SUB_RANGE_SIZE));
        lock(&self.store.splits).insert(self.key.clone(), split.clone());
        split
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.cancel.cancel();
        lock(&self.store.flags).remove(&self.key);
        lock(&self.store.splits).remove(&self.key);
        self.store.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a computed task hands back.
struct Computed {
    state: PartialState,
    /// Of the whole state, folded ones included.
    lines_read: u64,
    customers: u64,
    /// Of this task's chunk alone.
    own_lines: u64,
}

/// The gRPC `Worker` service.
pub struct TaskService {
    store: Arc<TaskStore>,
    /// `None`: the global pool.
    pool: Option<Arc<rayon::ThreadPool>>,
    /// Wait before computing each task (test builds only: see [`crate::TASK_DELAY_ENV`]).
    #[cfg(feature = "task-delay")]
    delay: Duration,
    /// This worker's address, named in error messages.
    name: String,
    /// Inputs must lie under it, when set (`--data-root`).
    data_root: Option<Arc<DataRoot>>,
}

impl TaskService {
    pub fn new(store: Arc<TaskStore>, pool: Option<Arc<rayon::ThreadPool>>, name: String) -> Self {
        TaskService {
            store,
            pool,
            #[cfg(feature = "task-delay")]
            delay: Duration::ZERO,
            name,
            data_root: None,
        }
    }

    /// Makes every task wait `delay` before computing (test builds only: see
    /// [`crate::TASK_DELAY_ENV`]).
    #[cfg(feature = "task-delay")]
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Refuses every task whose input is not under `root` (when set).
    pub fn with_data_root(mut self, root: Option<Arc<DataRoot>>) -> Self {
        self.data_root = root;
        self
    }
}

impl TaskService {
    /// Takes out the finished states `fold` names (attempts of `key`'s
    /// job), for the task to merge into its own. NOT_FOUND when one is no
    /// longer held (cancelled, released, or forgotten on registering
    /// again): the coordinator then runs them all again.
    fn take_folded(&self, key: &TaskKey, fold: &[TaskRef]) -> Result<Vec<PartialState>, Status> {
        let mut folded = Vec::with_capacity(fold.len());
        for t in fold {
            if t.job_id != key.job_id {
                return Err(Status::invalid_argument(format!(
                    "task {} of job {} cannot fold a state of job {}",
                    key.task_id, key.job_id, t.job_id
                )));
            }
            let other = TaskKey::new(&t.job_id, t.task_id, t.attempt);
            match self.store.take_state(&other) {
                Some(Ok(state)) => folded.push(state),
                Some(Err(e)) => {
                    return Err(Status::internal(format!(
                        "worker {}: the state of task {} attempt {} does not decode: {e}",
                        self.name, t.task_id, t.attempt
                    )))
                }
                None => {
                    return Err(Status::not_found(format!(
                        "worker {} holds no finished state of task {} attempt {} to fold",
                        self.name, t.task_id, t.attempt
                    )))
                }
            }
        }
        Ok(folded)
    }
}

/// Why a computation gave no state.
enum Failed {
    Cancelled,
    Input(String),
}

/// Reads the chunk into a partial state (up to where `split` cut it) and
/// merges the `folded` states of earlier tasks into it (runs on the rayon
/// pool). Under a data root the
/// file is opened checked: a file outside the root is refused before its
/// size is compared with the planned one, so that neither its size nor a
/// byte of it is told.
fn compute(
    input: &InputFile,
    root: Option<&DataRoot>,
    chunk: Chunk,
    parse: &ParseOptions,
    cancel: &Cancel,
    split: Option<&ChunkSplit>,
    folded: Vec<PartialState>,
) -> Result<Computed, Failed> {
    let failed = |e: Error| match e {
        Error::Cancelled => Failed::Cancelled,
        e => Failed::Input(e.to_string()),
    };
    let reader = InputReader::open_planned(input, root).map_err(failed)?;
    let len = reader.size();
    if len != input.layout.len {
        return Err(Failed::Input(format!(
            "{}: this worker sees {len} bytes but the coordinator planned {} bytes; \
             the input must be the same file on a filesystem shared by coordinator and workers",
            input.path.display(),
            input.layout.len
        )));
    }
    let computing = std::time::Instant::now();
    let mut state =
        compute_chunk_split(&reader, input, chunk, parse, SUB_RANGE_SIZE, cancel, split)
            .map_err(failed)?;
    let computed = computing.elapsed();
    let own_lines = state.ledger.lines_read;
    let folds = folded.len();
    for other in folded {
        state.merge(other);
    }
    let (lines_read, customers) = (state.ledger.lines_read, state.customer_count() as u64);
    tracing::debug!(
        "rfm-worker: bytes {}..{}: computed in {:.1} ms, {folds} earlier states folded in in {:.1} ms: {customers} customers",
        chunk.start,
        split.map_or(chunk.end, ChunkSplit::end),
        computed.as_secs_f64() * 1e3,
        (computing.elapsed() - computed).as_secs_f64() * 1e3
    );
    Ok(Computed {
        state,
        lines_read,
        customers,
        own_lines,
    })
}

/// Waits `delay` (the test knob [`crate::TASK_DELAY_ENV`]), or less when the
/// task is cancelled meanwhile.
#[cfg(feature = "task-delay")]
async fn pause(delay: Duration, cancel: &Cancel) {
    const STEP: Duration = Duration::from_millis(20);
    let until = tokio::time::Instant::now() + delay;
    while !cancel.is_cancelled() {
        let now = tokio::time::Instant::now();
        if now >= until {
            break;
        }
        tokio::time::sleep(STEP.min(until - now)).await;
    }
}

fn key_of(task: Option<&TaskRef>) -> Result<TaskKey, Status> {
    let t = task.ok_or_else(|| Status::invalid_argument("request has no task"))?;
    rfm_proto::ident::check_job_id(&t.job_id)?;
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
        let running = Running::enter(&self.store, key.clone());
        if lock(&self.store.cancelled).remove(&key) {
            return Err(Status::cancelled("the task was cancelled"));
        }
        let count = crate::http::TaskCount::start();
        let input: InputFile = req
            .input
            .as_ref()
            .ok_or("the task has no input file".to_string())
            .and_then(rfm_proto::input::from_proto)
            .map_err(|e| Status::invalid_argument(format!("the task's input file: {e}")))?;
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
        let folded = self.take_folded(&key, &req.fold)?;
        let split = (input.format == InputFormat::Csv).then(|| running.splittable(chunk));
        // The test knob's wait, as a slow computation: the task may be cut
        // meanwhile.
        #[cfg(feature = "task-delay")]
        if !self.delay.is_zero() {
            pause(self.delay, &running.cancel).await;
        }
        let (tx, rx) = oneshot::channel();
        let cancel = running.cancel.clone();
        let root = self.data_root.clone();
        let cut = split.clone();
        let task = move || {
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                compute(
                    &input,
                    root.as_deref(),
                    chunk,
                    &options.parse,
                    &cancel,
                    cut.as_deref(),
                    folded,
                )
            }));
            let _ = tx.send(outcome);
        };
        match &self.pool {
            Some(pool) => pool.spawn(task),
            None => rayon::spawn(task),
        }
        let outcome = rx
            .await
            .map_err(|_| Status::internal("the task's thread ended without an answer"))?;
        let computed = match outcome {
            Ok(Ok(c)) => c,
            Ok(Err(Failed::Cancelled)) => {
                lock(&self.store.cancelled).remove(&key);
                return Err(Status::cancelled("the task was cancelled"));
            }
            // In one process with the coordinator (`rfm run`), the worker's
            // name says nothing to the user: the input's error is the message.
            Ok(Err(Failed::Input(message))) if self.store.is_local() => {
                return Err(Status::failed_precondition(message))
            }
            Ok(Err(Failed::Input(message))) => {
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
            folded: req.fold.len() as u32,
            end: split.as_deref().map_or(req.end, ChunkSplit::end),
        };
        self.store.keep_state(key, computed.state);
        count.completed(response.end.saturating_sub(req.start), computed.own_lines);
        Ok(Response::new(response))
    }

    async fn cancel_task(&self, request: Request<TaskRef>) -> Result<Response<TaskAck>, Status> {
        let key = key_of(Some(&request.into_inner()))?;
        if !self.store.release(&key) {
            if let Some(flag) = lock(&self.store.flags).get(&key) {
                flag.cancel();
            }
            lock(&self.store.cancelled).insert(key);
        }
        Ok(Response::new(TaskAck {}))
    }

    async fn split_task(
        &self,
        request: Request<TaskRef>,
    ) -> Result<Response<SplitTaskResponse>, Status> {
        let key = key_of(Some(&request.into_inner()))?;
        let split = lock(&self.store.splits).get(&key).cloned();
        let at = split.and_then(|s| s.split());
        if let Some(at) = at {
            tracing::debug!(
                "rfm-worker: task {} of job {} cut at byte {at}",
                key.task_id,
                key.job_id
            );
        }
        Ok(Response::new(SplitTaskResponse { at }))
    }

    async fn release_task(&self, request: Request<TaskRef>) -> Result<Response<TaskAck>, Status> {
        let key = key_of(Some(&request.into_inner()))?;
        self.store.release(&key);
        Ok(Response::new(TaskAck {}))
    }
}
