//! The job driver: pushes pending tasks to free worker slots, fetches the
//! finished tasks' partial states over Arrow Flight, merges every chunk exactly
//! once, re-runs the tasks of lost workers (up to `max_attempts` a task),
//! fails fast on deterministic input errors and when no worker is alive for
//! the grace period, then hands the merged state to the completion step
//! ([`crate::complete`]), which scores, publishes and finishes the job.
//!
//! When the coordinator falls behind (states wait for its merge), a
//! finished state is left on its worker (`Held`) and the next task
//! dispatched there folds it into its own (`Folded`): the merging moves to
//! the workers, and several tasks cross over Flight and are decoded and
//! merged here as one state. Otherwise, and once no task is left to
//! dispatch, states are fetched as they finish. A state that is lost (with
//! its worker, or the attempt folding it) takes the tasks it covers back to
//! the queue.
//!
//! At a job's tail, when no task is left to dispatch and a worker has
//! nothing to compute while another still reads, the busy worker is asked
//! to cut its task short (`SplitTask`): it keeps the sub-ranges it has
//! started and half of the others, and the rest of its range becomes a new
//! task for the idle worker. The cores end together, at the cost of one
//! more state to merge.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rfm_core::engine::{plan_chunks, SUB_RANGE_SIZE};
use rfm_core::format::InputFormat;
use rfm_core::remote::RemoteInputs;
use rfm_core::report::RunReport;
use rfm_core::{Chunk, DataRoot, InputFile, PartialState, RunOptions};
use rfm_proto::v1::{ErrorClass, TaskRef};
use rfm_store::{Recorder, RunId};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::answer::{Range, Reply};
use crate::attempt::{
    fetch_attempt, run_attempt, split_attempt, AttemptContext, FailKind, Outcome,
};
use crate::cached::{CachePlan, CachedSet, FileStates, Ready, SetFailed};
use crate::complete::{complete, Completion, Failure};
use crate::job::Job;
use crate::registry::{Lease, Registry};

/// When a finished state is left on its worker to be folded into the next
/// task there (`--fold-states`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FoldStates {
    /// While states wait for the coordinator's merge (it falls behind).
    #[default]
    Auto,
    /// Whenever tasks are left to dispatch: the fewest transfers (workers
    /// far from the coordinator).
    Always,
    /// Every state is fetched as it finishes.
    Never,
}

/// Tuning of the driver.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    pub max_attempts: u32,
    pub no_worker_grace: Duration,
    /// An attempt running longer is given up and run elsewhere (zero: never).
    pub task_timeout: Duration,
    /// How often lost workers and the grace period are checked.
    pub tick: Duration,
    /// Where runs are recorded and published (`--database-url`), if anywhere.
    pub recorder: Option<Arc<Recorder>>,
    /// Inputs must lie under it, when set (`--data-root`).
    pub data_root: Option<Arc<DataRoot>>,
    /// The state cache of the files' partial states (`--cache-dir`), if any.
    pub cache: Option<Arc<rfm_core::cache::Cache>>,
    /// Which `s3://` and `http(s)://` inputs clients may give (`--remote-inputs`).
    pub remote_inputs: RemoteInputs,
    /// Finished states of a worker in this process, handed over in memory.
    pub local_states: Option<Arc<rfm_proto::local::LocalStates>>,
    /// Input files opened by a client in this process, per job.
    pub local_inputs: Option<Arc<crate::local_inputs::LocalInputs>>,
    /// When finished states are folded on their workers.
    pub fold_states: FoldStates,
    /// Whether a running task is cut short for an idle worker to share it
    /// at the job's tail (`--split-tasks`).
    pub split_tasks: bool,
}

/// What a job computes: its inputs, chunks and options.
pub struct Plan {
    pub files: Vec<InputFile>,
    pub chunks: Vec<Chunk>,
    pub options: RunOptions,
    /// The report begun at submission.
    pub report: RunReport,
    /// The run's row in the database, recorded `running` at submission.
    pub db_run: Option<RunId>,
    /// What the state cache gave, when the job uses it (`chunks` then
    /// cover only the files it did not have).
    pub cache: Option<CachePlan>,
}

/// Whether an attempt was asked to cut its task short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SplitAsk {
    No,
    /// Asked: its answer may end before its chunk's end.
    Asked,
    /// Asked, and nothing was left to cut (or the call failed): not asked
    /// again.
    Refused,
}

enum TaskState {
    Pending,
    /// Computing on a worker, or its state being fetched from there.
    Running {
        attempt: u32,
        worker: String,
        handle: AbortHandle,
        started: Instant,
        /// Tasks whose states this attempt folds into its own.
        folded: Vec<usize>,
        /// `RunTask` has not answered yet.
        computing: bool,
        split: SplitAsk,
    },
    /// Computed: its state (with `folded`'s) waits on `worker`, to be
    /// folded into the next task dispatched there or fetched.
    Held {
        attempt: u32,
        worker: String,
        reply: Reply,
        lease: Box<Lease>,
        folded: Vec<usize>,
        /// To be fetched at once rather than folded: no state waited for
        /// the coordinator's merge when it was computed.
        fetch: bool,
    },
    /// Its state is part of another task's (running or held).
    Folded,
    Done,
}

struct Task {
    chunk: Chunk,
    attempts: u32,
    state: TaskState,
    /// Workers that let an attempt of this task run past the deadline: the
    /// next attempts go elsewhere while another worker has a free slot.
    avoid: Vec<String>,
    /// The lines this task read, once counted in the job's progress.
    counted: Option<u64>,
}

struct Driver {
    job: Arc<Job>,
    registry: Arc<Registry>,
    config: DriverConfig,
    tasks: Vec<Task>,
    pending: VecDeque<usize>,
    files: Vec<InputFile>,
    done: usize,
    /// The state the job starts from (the files found in the cache outside
    /// a set entry).
    initial: PartialState,
    /// The set entry found in the cache, decoded while the tasks run and
    /// merged after the last.
    cached_set: Option<CachedSet>,
    /// The set entry's state, when it turned out damaged or did not decode.
    set_failed: Option<SetFailed>,
    /// The computed files' states, merged per file for the cache.
    per_file: Option<FileStates>,
    /// Cache entries being written: a warning for each that could not be.
    writes: Vec<tokio::task::JoinHandle<Option<String>>>,
    /// The job's chunk size (for files planned after submission).
    chunk_size: u64,
    /// When finished states are left on their workers to be folded (never
    /// when a worker of this process hands them over in memory, nor when
    /// each file's state is cached on its own).
    folds: FoldStates,
    /// States taken from the workers and merged (fewer than the tasks when
    /// states were folded).
    states_taken: usize,
    /// States wait for the merge in progress (as of the loop's last turn).
    merge_backlog: bool,
    /// A `SplitTask` call has not answered yet.
    split_in_flight: bool,
}

impl Driver {
    /// Logs a line of the job; text from workers in it is escaped.
    fn log(&self, message: &str) {
        tracing::info!(
            "rfm-coordinator: job {}: {}",
            self.job.id,
            rfm_core::text::escape_controls(message)
        );
    }

    fn describe(&self, t: usize) -> String {
        let c = self.tasks[t].chunk;
        let file = self
            .files
            .get(c.file_index as usize)
            .map(|f| f.path.display().to_string())
            .unwrap_or_default();
        format!("task {t} ({file} bytes {}..{})", c.start, c.end)
    }

    fn is_current(&self, t: usize, attempt: u32) -> bool {
        matches!(self.tasks[t].state, TaskState::Running { attempt: a, .. } if a == attempt)
    }

    /// Counts a computed task in the job's progress, once: its own lines
    /// are `lines` (of its whole state) less those of the tasks folded in.
    fn count(&mut self, t: usize, lines: u64, folded: &[usize]) {
        if self.tasks[t].counted.is_some() {
            return;
        }
        let theirs: u64 = folded.iter().filter_map(|&i| self.tasks[i].counted).sum();
        let own = lines.saturating_sub(theirs);
        self.tasks[t].counted = Some(own);
        let bytes = self.tasks[t].chunk.end - self.tasks[t].chunk.start;
        self.job.update("", |s| {
            s.tasks_done += 1;
            s.bytes_done += bytes;
            s.lines_done += own;
        });
    }

    /// Takes a task out of the job's progress again (its state was lost).
    fn uncount(&mut self, t: usize) {
        if let Some(own) = self.tasks[t].counted.take() {
            let bytes = self.tasks[t].chunk.end - self.tasks[t].chunk.start;
            self.job.update("", |s| {
                s.tasks_done = s.tasks_done.saturating_sub(1);
                s.bytes_done = s.bytes_done.saturating_sub(bytes);
                s.lines_done = s.lines_done.saturating_sub(own);
            });
        }
    }

    /// The ranges a state of task `t` covers: its own, then `folded`'s.
    fn ranges(&self, ctx: &AttemptContext, t: usize, folded: &[usize]) -> Vec<Range> {
        std::iter::once(t)
            .chain(folded.iter().copied())
            .map(|i| {
                let chunk = self.tasks[i].chunk;
                let len = ctx.file_lens.get(chunk.file_index as usize).copied();
                (chunk, len.unwrap_or(0))
            })
            .collect()
    }

    /// Puts a task back in the queue after a failed attempt, with the
    /// tasks folded into its state.
    fn retry(&mut self, t: usize, reason: &str) -> Result<(), Failure> {
        let folded = match std::mem::replace(&mut self.tasks[t].state, TaskState::Pending) {
            TaskState::Running { handle, folded, .. } => {
                handle.abort();
                folded
            }
            TaskState::Held { folded, .. } => folded,
            _ => Vec::new(),
        };
        self.uncount(t);
        for &i in &folded {
            self.tasks[i].state = TaskState::Pending;
            self.uncount(i);
            self.pending.push_back(i);
        }
        let attempts = self.tasks[t].attempts;
        if attempts >= self.config.max_attempts {
            return Err((
                ErrorClass::Cluster,
                format!(
                    "{} failed {attempts} times; last: {reason}",
                    self.describe(t)
                ),
            ));
        }
        self.pending.push_back(t);
        let with_folded = match folded.len() {
            0 => String::new(),
            n => format!(" with the {n} tasks folded into its state"),
        };
        let message = format!(
            "retry: {} attempt {attempts} failed ({reason}); running it again (attempt {} of {}){with_folded}",
            self.describe(t),
            attempts + 1,
            self.config.max_attempts
        );
        self.log(&message);
        self.job.update(&message, |s| s.retries += 1);
        Ok(())
    }

    /// Re-runs every task running on a worker that is no longer alive.
    fn retry_lost(&mut self) -> Result<(), Failure> {
        for t in 0..self.tasks.len() {
            let lost = match &self.tasks[t].state {
                TaskState::Running { worker, .. } | TaskState::Held { worker, .. }
                    if !self.registry.is_alive(worker) =>
                {
                    Some(worker.clone())
                }
                _ => None,
            };
            if let Some(worker) = lost {
                self.retry(t, &format!("worker {worker} was lost"))?;
            }
        }
        Ok(())
    }

    /// Gives up the attempts that ran past `--task-timeout` on a worker that
    /// still heartbeats: cancels them there and runs them elsewhere.
    fn retry_overdue(&mut self) -> Result<(), Failure> {
        let limit = self.config.task_timeout;
        if limit.is_zero() {
            return Ok(());
        }
        for t in 0..self.tasks.len() {
            let overdue = match &self.tasks[t].state {
                TaskState::Running {
                    attempt,
                    worker,
                    started,
                    ..
                } if started.elapsed() >= limit => Some((*attempt, worker.clone())),
                _ => None,
            };
            if let Some((attempt, worker)) = overdue {
                self.cancel_on_worker(t, attempt, &worker);
                self.registry.suspect(&worker, limit);
                self.tasks[t].avoid.push(worker.clone());
                self.retry(
                    t,
                    &format!(
                        "no result from worker {worker} after {:.1} s (--task-timeout); cancelled there",
                        limit.as_secs_f64()
                    ),
                )?;
            }
        }
        Ok(())
    }

    /// Asks a worker to drop an attempt (best effort, in the background).
    fn cancel_on_worker(&self, task: usize, attempt: u32, worker: &str) {
        let Some((mut client, token)) = self.registry.tasks_client(worker) else {
            return;
        };
        let task_ref = TaskRef {
            job_id: self.job.id.clone(),
            task_id: task as u32,
            attempt,
        };
        tokio::spawn(async move {
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                client.cancel_task(token.request(task_ref)),
            )
            .await;
        });
    }

    /// Takes the states held on `worker` for the task dispatched there to
    /// fold: their references for the worker, and every task they cover.
    fn fold_held(&mut self, worker: &str) -> (Vec<TaskRef>, Vec<usize>) {
        let (mut refs, mut covered) = (Vec::new(), Vec::new());
        if self.folds == FoldStates::Never {
            return (refs, covered);
        }
        for h in 0..self.tasks.len() {
            if !matches!(&self.tasks[h].state, TaskState::Held { worker: w, fetch: false, .. } if w == worker)
            {
                continue;
            }
            let TaskState::Held {
                attempt, folded, ..
            } = std::mem::replace(&mut self.tasks[h].state, TaskState::Folded)
            else {
                unreachable!("a held task");
            };
            refs.push(TaskRef {
                job_id: self.job.id.clone(),
                task_id: h as u32,
                attempt,
            });
            covered.push(h);
            covered.extend(folded);
        }
        (refs, covered)
    }

    fn dispatch(&mut self, ctx: &Arc<AttemptContext>, tx: &mpsc::UnboundedSender<Outcome>) {
        while let Some(&t) = self.pending.front() {
            let Some(lease) = self.registry.acquire_avoiding(&self.tasks[t].avoid) else {
                break;
            };
            self.pending.pop_front();
            let (fold, folded) = self.fold_held(&lease.worker_id);
            let ranges = self.ranges(ctx, t, &folded);
            let task = &mut self.tasks[t];
            task.attempts += 1;
            let worker = lease.worker_id.clone();
            let handle = tokio::spawn(run_attempt(
                ctx.clone(),
                t,
                task.attempts,
                ranges,
                fold,
                lease,
                tx.clone(),
            ));
            task.state = TaskState::Running {
                attempt: task.attempts,
                worker,
                handle: handle.abort_handle(),
                started: Instant::now(),
                folded,
                computing: true,
                split: SplitAsk::No,
            };
        }
        let running = self
            .tasks
            .iter()
            .filter(|t| matches!(t.state, TaskState::Running { .. }))
            .count() as u32;
        if self.job.status().tasks_running != running {
            self.job.update("", |s| s.tasks_running = running);
        }
    }

    /// Fetches the held states marked to be fetched, or all of them when
    /// no task is left to dispatch that could fold them.
    fn fetch_held(&mut self, ctx: &Arc<AttemptContext>, tx: &mpsc::UnboundedSender<Outcome>) {
        let all = self.pending.is_empty();
        for t in 0..self.tasks.len() {
            if !matches!(self.tasks[t].state, TaskState::Held { fetch, .. } if fetch || all) {
                continue;
            }
            let TaskState::Held {
                attempt,
                worker,
                reply,
                lease,
                folded,
                ..
            } = std::mem::replace(&mut self.tasks[t].state, TaskState::Pending)
            else {
                unreachable!("a held task");
            };
            let ranges = self.ranges(ctx, t, &folded);
            let handle = tokio::spawn(fetch_attempt(
                ctx.clone(),
                t,
                attempt,
                ranges,
                reply,
                lease,
                tx.clone(),
            ));
            self.tasks[t].state = TaskState::Running {
                attempt,
                worker,
                handle: handle.abort_handle(),
                started: Instant::now(),
                folded,
                computing: false,
                split: SplitAsk::No,
            };
        }
    }

    /// Counts a computed task in the progress and gives the tasks folded
    /// into its state, unless its worker was lost meanwhile (then the task
    /// runs again).
    fn accept_computed(
        &mut self,
        task: usize,
        worker: &str,
        reply: Reply,
    ) -> Result<Option<Vec<usize>>, Failure> {
        if !self.registry.is_alive(worker) {
            self.retry(task, &format!("result from lost worker {worker} ignored"))?;
            return Ok(None);
        }
        let folded = self.folded_into(task);
        self.count(task, reply.lines_read, &folded);
        Ok(Some(folded))
    }

    /// The tasks folded into a running attempt's state.
    fn folded_into(&self, t: usize) -> Vec<usize> {
        match &self.tasks[t].state {
            TaskState::Running { folded, .. } | TaskState::Held { folded, .. } => folded.clone(),
            _ => Vec::new(),
        }
    }

    /// Handles an attempt's outcome; `Some((file, state))` is a chunk of
    /// input file `file` (with the chunks folded into it) to merge.
    fn outcome(&mut self, outcome: Outcome) -> Result<Option<(u32, PartialState)>, Failure> {
        match outcome {
            Outcome::Computed {
                task,
                attempt,
                worker,
                reply,
                lease,
            } => {
                if !self.is_current(task, attempt) {
                    crate::attempt::release(&self.job.id, task, attempt, &lease);
                    return Ok(None);
                }
                if !self.take_end(task, &worker, reply.end)? {
                    return Ok(None);
                }
                let Some(folded) = self.accept_computed(task, &worker, reply)? else {
                    return Ok(None);
                };
                // Left on its worker, to be folded into the next task
                // dispatched there, while states wait for the coordinator's
                // merge; else fetched at the loop's next turn, to be merged
                // while the workers compute.
                let fetch = match self.folds {
                    FoldStates::Auto => !self.merge_backlog,
                    FoldStates::Always => false,
                    FoldStates::Never => true,
                };
                self.tasks[task].state = TaskState::Held {
                    attempt,
                    worker,
                    reply,
                    lease,
                    folded,
                    fetch,
                };
                Ok(None)
            }
            Outcome::Done {
                task,
                attempt,
                worker,
                state,
                reply,
            } => {
                if !self.is_current(task, attempt) {
                    self.log(&format!(
                        "ignored a late result of task {task} attempt {attempt} from {worker}"
                    ));
                    return Ok(None);
                }
                if !self.take_end(task, &worker, reply.end)? {
                    return Ok(None);
                }
                let Some(folded) = self.accept_computed(task, &worker, reply)? else {
                    return Ok(None);
                };
                for &i in &folded {
                    self.tasks[i].state = TaskState::Done;
                }
                self.tasks[task].state = TaskState::Done;
                self.done += 1 + folded.len();
                self.states_taken += 1;
                Ok(Some((self.tasks[task].chunk.file_index, *state)))
            }
            Outcome::Failed {
                task,
                attempt,
                worker,
                kind,
                reason,
            } => {
                if !self.is_current(task, attempt) {
                    return Ok(None);
                }
                match kind {
                    FailKind::Input => Err((ErrorClass::Input, reason)),
                    FailKind::Bug => Err((ErrorClass::Internal, reason)),
                    FailKind::Attempt => self.retry(task, &reason).map(|_| None),
                    FailKind::WorkerLost => {
                        if self.registry.mark_lost(&worker, &reason) {
                            self.log(&format!("worker {worker} lost: {reason}"));
                        }
                        self.retry(task, &reason)?;
                        self.retry_lost().map(|_| None)
                    }
                }
            }
            Outcome::Split { task, attempt, at } => {
                self.split_in_flight = false;
                let TaskState::Running {
                    attempt: a,
                    worker,
                    computing: true,
                    split,
                    ..
                } = &mut self.tasks[task].state
                else {
                    return Ok(None);
                };
                if *a != attempt {
                    return Ok(None);
                }
                let worker = worker.clone();
                match at {
                    None => *split = SplitAsk::Refused,
                    Some(at) => {
                        self.take_end(task, &worker, at)?;
                    }
                }
                Ok(None)
            }
        }
    }

    /// Whether `file`'s chunks can be cut short while they run (CSV byte
    /// ranges of more than one sub-range).
    fn splittable(&self, chunk: Chunk) -> bool {
        self.files
            .get(chunk.file_index as usize)
            .is_some_and(|f| f.format == InputFormat::Csv)
            && chunk.end - chunk.start > SUB_RANGE_SIZE as u64
    }

    /// At the job's tail (no task left to dispatch), when a worker computes
    /// nothing (of any job) while another computes this job's: asks the busy worker
    /// to cut the task it started last short (one call at a time).
    fn split_tail(&mut self, tx: &mpsc::UnboundedSender<Outcome>) {
        if !self.config.split_tasks || self.split_in_flight || !self.pending.is_empty() {
            return;
        }
        let computing: HashSet<&str> = self
            .tasks
            .iter()
            .filter_map(|t| match &t.state {
                TaskState::Running {
                    worker,
                    computing: true,
                    ..
                } => Some(worker.as_str()),
                _ => None,
            })
            .collect();
        // A worker computing another job's task (with a slot free) is not
        // idle: a part cut for it would share its cores.
        if computing.is_empty()
            || !self
                .registry
                .idle()
                .iter()
                .any(|w| !computing.contains(w.as_str()))
        {
            return;
        }
        let candidate = self
            .tasks
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match &t.state {
                TaskState::Running {
                    attempt,
                    worker,
                    started,
                    computing: true,
                    split: SplitAsk::No | SplitAsk::Asked,
                    ..
                } if self.splittable(t.chunk) => Some((i, *attempt, worker.clone(), *started)),
                _ => None,
            })
            .max_by_key(|&(i, _, _, started)| (started, i));
        let Some((task, attempt, worker, _)) = candidate else {
            return;
        };
        let Some(client) = self.registry.tasks_client(&worker) else {
            return;
        };
        if let TaskState::Running { split, .. } = &mut self.tasks[task].state {
            *split = SplitAsk::Asked;
        }
        self.split_in_flight = true;
        tokio::spawn(split_attempt(
            self.job.id.clone(),
            task,
            attempt,
            client,
            tx.clone(),
        ));
    }

    /// Takes where a running attempt of `task` says its range ends (its
    /// answer, or its worker's answer to `SplitTask`): its chunk's end, or
    /// where it was cut at its coordinator's request, which makes the rest
    /// a new task (once). `false` when the end is impossible: the worker is
    /// then lost and the task runs again.
    fn take_end(&mut self, task: usize, worker: &str, end: u64) -> Result<bool, Failure> {
        let chunk = self.tasks[task].chunk;
        if end == chunk.end {
            return Ok(true);
        }
        let asked = matches!(
            self.tasks[task].state,
            TaskState::Running {
                split: SplitAsk::Asked | SplitAsk::Refused,
                ..
            }
        );
        if !asked || end <= chunk.start || end > chunk.end || !self.splittable(chunk) {
            let reason = format!(
                "worker {worker} answered impossibly for {}: its range ended at byte {end}{}; \
                 its answer is not merged",
                self.describe(task),
                if asked {
                    ""
                } else {
                    " though it was not asked to cut it"
                }
            );
            if self.registry.mark_lost(worker, &reason) {
                self.log(&format!("worker {worker} lost: {reason}"));
            }
            self.retry(task, &reason)?;
            self.retry_lost()?;
            return Ok(false);
        }
        self.tasks[task].chunk.end = end;
        let rest = Chunk {
            start: end,
            ..chunk
        };
        let added = self.tasks.len();
        self.tasks.push(Task {
            chunk: rest,
            attempts: 0,
            state: TaskState::Pending,
            avoid: vec![worker.to_string()],
            counted: None,
        });
        self.pending.push_front(added);
        if let Some(per_file) = self.per_file.as_mut() {
            per_file.split(chunk.file_index);
        }
        self.job.update("", |s| s.tasks_total += 1);
        self.log(&format!(
            "task {task} cut at byte {end} on worker {worker}: bytes {end}..{} are task {added}",
            chunk.end
        ));
        Ok(true)
    }

    /// Aborts running attempts and asks their workers to drop them and the
    /// states held there.
    fn stop_all(&mut self) {
        for t in 0..self.tasks.len() {
            match &self.tasks[t].state {
                TaskState::Running {
                    attempt,
                    worker,
                    handle,
                    ..
                } => {
                    handle.abort();
                    self.cancel_on_worker(t, *attempt, worker);
                }
                TaskState::Held {
                    attempt, worker, ..
                } => self.cancel_on_worker(t, *attempt, worker),
                TaskState::Folded => {}
                TaskState::Pending | TaskState::Done => continue,
            }
            self.tasks[t].state = TaskState::Pending;
        }
    }
}

/// Drives a job from dispatch to its end: runs its tasks, then hands the
/// merged state (or why the tasks failed) to the completion step.
pub async fn drive(job: Arc<Job>, registry: Arc<Registry>, plan: Plan, config: DriverConfig) {
    let Plan {
        files,
        chunks,
        options,
        mut report,
        db_run,
        cache,
    } = plan;
    let run = config.recorder.clone().zip(db_run);
    let data_root = config.data_root.clone();
    let (initial, per_file, cached_set) = match cache {
        Some(mut plan) => {
            let per_file = FileStates::new(
                &mut plan,
                &files,
                &chunks,
                data_root.clone(),
                options.parse.clone(),
            );
            (plan.from_cache, Some(per_file), plan.from_set)
        }
        None => (PartialState::new(), None, None),
    };
    let mut initial = initial;
    // The job's state takes every chunk's customers in place (an
    // `initial` of cached files keeps its own columns) when several states
    // are merged into it: a computed file's chunks come as one state, and a
    // single state merged into an empty one takes its place (no copy).
    let mut states_to_merge = chunks.iter().map(|c| c.file_index).collect::<Vec<_>>();
    if per_file.is_some() {
        states_to_merge.dedup();
    }
    if states_to_merge.len() > 1 {
        initial.reserve_for_job(chunks.iter().map(|c| c.end - c.start).sum());
    }
    let ctx = Arc::new(AttemptContext {
        job_id: job.id.clone(),
        inputs: files.iter().map(rfm_proto::input::to_proto).collect(),
        file_lens: files.iter().map(rfm_core::excel::task_reach).collect(),
        options: rfm_proto::options::to_proto(&options),
        local_states: config.local_states.clone(),
    });
    let mut driver = Driver {
        job: job.clone(),
        registry,
        pending: (0..chunks.len()).collect(),
        tasks: chunks
            .into_iter()
            .map(|chunk| Task {
                chunk,
                attempts: 0,
                state: TaskState::Pending,
                avoid: Vec::new(),
                counted: None,
            })
            .collect(),
        files,
        config,
        done: 0,
        initial,
        cached_set,
        set_failed: None,
        per_file,
        writes: Vec::new(),
        chunk_size: options.chunk_size,
        folds: FoldStates::Never,
        states_taken: 0,
        merge_backlog: false,
        split_in_flight: false,
    };
    if driver.config.local_states.is_none() && driver.per_file.is_none() {
        driver.folds = driver.config.fold_states;
    }
    let tasks = driver.run(&ctx).await;
    driver.stop_all();
    if tasks.is_ok() {
        driver.log(&format!(
            "{} tasks merged as {} states",
            driver.done, driver.states_taken
        ));
    }
    let (warnings, set_keys, recomputed) = driver
        .per_file
        .take()
        .map(|p| (p.warnings, p.set_keys, p.recomputed))
        .unwrap_or_default();
    // The set entry is written beside the scoring (a copy of the state).
    let set_write = match (&tasks, set_keys, driver.config.cache.clone()) {
        (Ok(state), Some(keys), Some(cache))
            if state
                .ledger
                .malformed_samples
                .iter()
                .all(|s| s.line.is_some()) =>
        {
            let mut state = state.clone();
            Some(tokio::task::spawn_blocking(move || {
                state.seal();
                crate::cached::write_set(&cache, &keys, &state)
            }))
        }
        _ => None,
    };
    if let Some(usage) = report.cache.as_mut() {
        usage.warnings.extend(warnings);
        // Files of a set entry that did not decode, without an entry of their own.
        usage.hits = usage.hits.saturating_sub(recomputed);
        usage.computed += recomputed;
    }
    let completion = Completion {
        job,
        files: std::mem::take(&mut driver.files),
        options,
        report,
        run,
        data_root,
        // Waited for after scoring: writing and syncing an entry may take
        // longer than folding it into the set.
        cache_writes: std::mem::take(&mut driver.writes),
    };
    let job_id = completion.job.id.clone();
    complete(completion, tasks).await;
    if let Some(write) = set_write {
        if let Ok(Some(w)) = write.await {
            tracing::warn!(
                "rfm-coordinator: job {job_id}: {}",
                rfm_core::text::escape_controls(&w)
            );
        }
    }
}

/// `a` and `b` merged (blocking, off the runtime's threads).
async fn merge_blocking(a: PartialState, b: PartialState) -> Result<PartialState, Failure> {
    tokio::task::spawn_blocking(move || {
        let mut merged = a;
        merged.merge(b);
        merged
    })
    .await
    .map_err(|e| {
        (
            ErrorClass::Internal,
            format!("merging the cached states failed: {e}"),
        )
    })
}

impl Driver {
    /// Merges the set entry's state into `merged` once it is decoded, if
    /// the job has one not merged yet. A set entry that is damaged or did
    /// not decode is kept in `set_failed`, for the job to do without it.
    async fn with_set(&mut self, merged: PartialState) -> Result<PartialState, Failure> {
        let Some(set) = self.cached_set.take() else {
            return Ok(merged);
        };
        let waiting = Instant::now();
        match set.state().await {
            Ok(cached) => {
                let merging = Instant::now();
                let merged = merge_blocking(merged, cached).await;
                tracing::debug!(
                    "rfm-coordinator: job {}: waited {:.1} ms for the set entry, merged it in {:.1} ms",
                    self.job.id,
                    (merging - waiting).as_secs_f64() * 1e3,
                    merging.elapsed().as_secs_f64() * 1e3
                );
                merged
            }
            Err(failed) => {
                self.set_failed = Some(failed);
                Ok(merged)
            }
        }
    }

    /// Does without a set entry that is damaged or did not decode: a
    /// warning; its files' own entries are read and merged into
    /// `merged`, and the files without a usable entry are planned as tasks
    /// (computed and cached like any other). A set of every file replaces
    /// the one that did not decode.
    async fn without_set(
        &mut self,
        merged: PartialState,
        failed: SetFailed,
    ) -> Result<PartialState, Failure> {
        self.log(&failed.warning);
        let fallback = failed.fallback;
        let all_keys = fallback.all_keys();
        let found = tokio::task::spawn_blocking(move || fallback.read())
            .await
            .map_err(|e| {
                (
                    ErrorClass::Internal,
                    format!("reading the cache entries failed: {e}"),
                )
            })?;
        for w in &found.warnings {
            self.log(w);
        }
        let Some(per_file) = self.per_file.as_mut() else {
            return Err((ErrorClass::Internal, failed.warning));
        };
        per_file.warnings.push(failed.warning);
        per_file.set_failed(all_keys);
        per_file.warnings.extend(found.warnings);
        let again: Vec<u32> = found.to_compute.iter().map(|(i, _)| *i).collect();
        let chunks: Vec<Chunk> = plan_chunks(&self.files, self.chunk_size)
            .into_iter()
            .filter(|c| again.contains(&c.file_index))
            .collect();
        for (i, key) in found.to_compute {
            let n = chunks.iter().filter(|c| c.file_index == i).count();
            per_file.recompute(i, key, n);
        }
        let bytes: u64 = chunks.iter().map(|c| c.end - c.start).sum();
        let added = chunks.len() as u32;
        for chunk in chunks {
            self.pending.push_back(self.tasks.len());
            self.tasks.push(Task {
                chunk,
                attempts: 0,
                state: TaskState::Pending,
                avoid: Vec::new(),
                counted: None,
            });
        }
        if added > 0 {
            self.job.update("", |s| {
                s.tasks_total += added;
                s.bytes_total += bytes;
            });
        }
        merge_blocking(merged, found.state).await
    }

    /// Dispatches the tasks and merges each finished chunk exactly once,
    /// until all are merged or the job fails (or is stopped). Merges run one
    /// at a time on a blocking thread beside the loop, so a slot freed
    /// meanwhile gets its next task at once, never after a merge.
    async fn run(&mut self, ctx: &Arc<AttemptContext>) -> Result<PartialState, Failure> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut stop = self.job.stop_signal();
        let mut ticker = tokio::time::interval(self.config.tick);
        let mut no_worker_since: Option<Instant> = None;
        let mut merged = Some(std::mem::take(&mut self.initial));
        // Chunk states waiting for the merge in progress.
        let mut to_merge: VecDeque<Ready> = VecDeque::new();
        let mut merging: Option<tokio::task::JoinHandle<MergeStep>> = None;
        let registry = self.registry.clone();
        loop {
            if let Some(reason) = stop.borrow_and_update().clone() {
                if let Some(m) = merging.take() {
                    m.abort();
                }
                return Err(reason);
            }
            // Backpressure: while merging lags, computed states wait here in
            // memory; no new task starts until the queue is short again.
            if to_merge.len() < MAX_STATES_AWAITING_MERGE {
                self.dispatch(ctx, &tx);
            }
            self.fetch_held(ctx, &tx);
            self.split_tail(&tx);
            if merging.is_none() {
                if let Some(ready) = to_merge.pop_front() {
                    let mut acc = merged.take().unwrap_or_default();
                    if to_merge.is_empty() && self.done == self.tasks.len() {
                        // The last state: the set entry's is merged first,
                        // so that the last file's entry is encoded while
                        // that file is folded into the set.
                        acc = self.with_set(acc).await?;
                    }
                    let job_id = self.job.id.clone();
                    // Merges lag when two states or more wait behind this
                    // one (states arrive in pairs from two slots).
                    let lagging = to_merge.len() >= 2;
                    merging = Some(tokio::task::spawn_blocking(move || {
                        let started = Instant::now();
                        let merge = move || {
                            let write = ready.merge_into(&mut acc);
                            (acc, write)
                        };
                        // On a thread of the pool, as scoring (see
                        // `complete`); when merges lag, ahead of the chunks
                        // queued there, else after them (a merge taken in
                        // the middle of a chunk's folds delays the chunk).
                        let (acc, write) = if lagging {
                            rfm_core::urgent::run(merge)
                        } else {
                            rayon::scope(|_| merge())
                        };
                        tracing::debug!(
                            "rfm-coordinator: job {job_id}: merged a chunk in {:.1} ms ({} customers)",
                            started.elapsed().as_secs_f64() * 1e3,
                            acc.customer_count()
                        );
                        (acc, write)
                    }));
                } else if self.done == self.tasks.len() {
                    let merged_tasks = self.with_set(merged.take().unwrap_or_default()).await?;
                    match self.set_failed.take() {
                        None => return Ok(merged_tasks),
                        Some(failed) => {
                            // Its files come from their own entries, or are
                            // computed again: more tasks, then the loop goes on.
                            merged = Some(self.without_set(merged_tasks, failed).await?);
                            continue;
                        }
                    }
                }
            }
            self.merge_backlog = !to_merge.is_empty();
            let step = tokio::select! {
                Some(outcome) = rx.recv() => Step::Outcome(self.outcome(outcome)),
                joined = async { merging.as_mut().expect("a merge runs").await }, if merging.is_some() => {
                    Step::Merged(joined)
                }
                _ = ticker.tick() => {
                    if registry.alive_count() > 0 {
                        no_worker_since = None;
                    } else if no_worker_since.get_or_insert_with(Instant::now).elapsed() >= self.config.no_worker_grace {
                        return Err((ErrorClass::Cluster, format!(
                            "no live worker for {:.1} s ({} of {} tasks done); lost workers: {}; \
                             start rfm-worker processes pointing at this coordinator",
                            self.config.no_worker_grace.as_secs_f64(),
                            self.done,
                            self.tasks.len(),
                            registry.lost_summary()
                        )));
                    }
                    Step::Outcome(self.retry_lost().and_then(|()| self.retry_overdue()).map(|_| None))
                }
                _ = registry.changed.notified() => Step::Outcome(Ok(None)),
                _ = stop.changed() => Step::Outcome(Ok(None)),
            };
            match step {
                Step::Outcome(step) => {
                    if let Some((file, state)) = step? {
                        let ready = match self.per_file.as_mut() {
                            Some(per_file) => per_file.add(file, state),
                            None => Some(Ready::plain(state)),
                        };
                        to_merge.extend(ready);
                    }
                }
                Step::Merged(joined) => {
                    merging = None;
                    let (acc, write) = joined.map_err(|e| {
                        (ErrorClass::Internal, format!("merging a chunk failed: {e}"))
                    })?;
                    merged = Some(acc);
                    match write {
                        Ok(None) => {}
                        Ok(Some(pending)) => self
                            .writes
                            .push(tokio::task::spawn_blocking(move || pending.write())),
                        Err(w) => {
                            self.log(&w);
                            if let Some(per_file) = self.per_file.as_mut() {
                                per_file.entry_not_made(w);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Chunk states that may wait for the merge before the driver stops
/// starting tasks: bounds the coordinator's memory when merging is slower
/// than the workers (many large states), at no cost while it keeps up.
const MAX_STATES_AWAITING_MERGE: usize = 8;

/// What the driver's loop heard: an attempt's outcome (a chunk state to
/// merge, maybe), or the end of the merge in progress. It lives for one
/// turn of the loop, on its stack: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Step {
    Outcome(Result<Option<(u32, PartialState)>, Failure>),
    Merged(Result<MergeStep, tokio::task::JoinError>),
}

/// What a merge gives back: the merged state and the cache entry to write
/// (or why it cannot be), as [`Ready::merge_into`] says.
type MergeStep = (
    PartialState,
    Result<Option<crate::cached::PendingWrite>, String>,
);

#[cfg(test)]
mod tests {
    use super::*;

    fn running(chunk: Chunk, attempt: u32, worker: &str) -> Task {
        Task {
            chunk,
            attempts: attempt,
            state: TaskState::Running {
                attempt,
                worker: worker.to_string(),
                handle: tokio::spawn(async {}).abort_handle(),
                started: Instant::now(),
                folded: Vec::new(),
                computing: true,
                split: SplitAsk::No,
            },
            avoid: Vec::new(),
            counted: None,
        }
    }

    fn config(max_attempts: u32) -> DriverConfig {
        DriverConfig {
            max_attempts,
            no_worker_grace: Duration::from_secs(1),
            task_timeout: Duration::from_secs(600),
            tick: Duration::from_millis(10),
            recorder: None,
            data_root: None,
            cache: None,
            remote_inputs: RemoteInputs::default(),
            local_states: None,
            local_inputs: None,
            fold_states: FoldStates::Auto,
            split_tasks: true,
        }
    }

    /// A driver of `tasks` (of `bytes` in all) on `registry`'s workers, as
    /// if states waited for the merge (finished ones are folded).
    fn driver(
        registry: &Arc<Registry>,
        config: DriverConfig,
        tasks: Vec<Task>,
        bytes: u64,
    ) -> Driver {
        Driver {
            job: Arc::new(Job::new("j".into(), tasks.len() as u32, bytes)),
            registry: registry.clone(),
            config,
            tasks,
            pending: VecDeque::new(),
            files: Vec::new(),
            done: 0,
            initial: PartialState::new(),
            cached_set: None,
            set_failed: None,
            per_file: None,
            writes: Vec::new(),
            chunk_size: 10,
            folds: FoldStates::Auto,
            states_taken: 0,
            merge_backlog: true,
            split_in_flight: false,
        }
    }

    /// A registry of `n` one-slot workers (never dialled) and their ids.
    fn registry_of(n: usize) -> (Arc<Registry>, Vec<String>) {
        let registry = Arc::new(Registry::new(
            Duration::from_secs(60),
            Default::default(),
            8,
        ));
        let ids = (1..=n)
            .map(|i| {
                registry
                    .register(format!("127.0.0.1:{i}"), 1, Default::default())
                    .unwrap()
            })
            .collect();
        (registry, ids)
    }

    /// Bytes `start..start + 10` of file 0.
    fn chunk(start: u64) -> Chunk {
        Chunk {
            file_index: 0,
            start,
            end: start + 10,
        }
    }

    fn done(task: usize, attempt: u32, worker: &str) -> Outcome {
        Outcome::Done {
            task,
            attempt,
            worker: worker.to_string(),
            state: Box::default(),
            // Task `t` covers `chunk(10 * t)`.
            reply: Reply {
                lines_read: 5,
                customers: 0,
                end: task as u64 * 10 + 10,
            },
        }
    }

    #[tokio::test]
    async fn each_chunk_is_merged_once_and_late_results_are_ignored() {
        let (registry, w) = registry_of(2);
        let (w1, w2) = (w[0].clone(), w[1].clone());
        let mut d = driver(
            &registry,
            config(2),
            vec![running(chunk(0), 1, &w1), running(chunk(10), 1, &w2)],
            20,
        );

        assert!(
            d.outcome(done(0, 1, &w1)).unwrap().is_some(),
            "first result merges"
        );
        assert!(
            d.outcome(done(0, 1, &w1)).unwrap().is_none(),
            "a duplicate is ignored"
        );
        assert_eq!(d.done, 1);

        registry.mark_lost(&w2, "test");
        d.retry_lost().unwrap();
        assert_eq!(d.pending, [1]);
        assert_eq!(d.job.status().retries, 1);
        assert!(
            d.outcome(done(1, 1, &w2)).unwrap().is_none(),
            "a late result of a lost worker is ignored"
        );
        assert_eq!(d.done, 1);

        // The re-run also fails on a lost worker: attempts are exhausted.
        d.pending.clear();
        d.tasks[1] = running(chunk(10), 2, &w1);
        let failed = Outcome::Failed {
            task: 1,
            attempt: 2,
            worker: w1.clone(),
            kind: FailKind::WorkerLost,
            reason: "connection refused".into(),
        };
        let (class, message) = d.outcome(failed).unwrap_err();
        assert_eq!(class, ErrorClass::Cluster);
        assert!(
            message.contains("failed 2 times") && message.contains("connection refused"),
            "{message}"
        );
        assert!(!registry.is_alive(&w1));
    }

    #[tokio::test]
    async fn input_errors_fail_at_once_and_keep_the_worker() {
        let registry = Arc::new(Registry::new(
            Duration::from_secs(60),
            Default::default(),
            8,
        ));
        let w1 = registry
            .register("127.0.0.1:1".into(), 1, Default::default())
            .unwrap();
        let mut d = driver(
            &registry,
            config(4),
            vec![running(
                Chunk {
                    file_index: 0,
                    start: 0,
                    end: 10,
                },
                1,
                &w1,
            )],
            10,
        );
        let failed = Outcome::Failed {
            task: 0,
            attempt: 1,
            worker: w1.clone(),
            kind: FailKind::Input,
            reason: "x.csv: cannot read".into(),
        };
        assert_eq!(d.outcome(failed).unwrap_err().0, ErrorClass::Input);
        assert!(registry.is_alive(&w1));
        assert_eq!(d.job.status().retries, 0);
    }

    #[tokio::test]
    async fn an_attempt_past_the_deadline_runs_elsewhere_and_its_late_result_is_ignored() {
        let registry = Arc::new(Registry::new(
            Duration::from_secs(60),
            Default::default(),
            8,
        ));
        let slow = registry
            .register("127.0.0.1:1".into(), 1, Default::default())
            .unwrap();
        let other = registry
            .register("127.0.0.1:2".into(), 1, Default::default())
            .unwrap();
        let chunk = Chunk {
            file_index: 0,
            start: 0,
            end: 10,
        };
        let mut hung = running(chunk, 1, &slow);
        if let TaskState::Running { started, .. } = &mut hung.state {
            *started = Instant::now() - Duration::from_secs(5);
        }
        let mut d = driver(
            &registry,
            DriverConfig {
                task_timeout: Duration::from_secs(1),
                ..config(4)
            },
            vec![hung],
            10,
        );
        d.retry_overdue().unwrap();
        assert_eq!(d.pending, [0], "the task is queued again");
        assert_eq!(d.tasks[0].avoid, std::slice::from_ref(&slow));
        assert_eq!(d.job.status().retries, 1);
        assert!(registry.is_alive(&slow), "the worker itself is not lost");
        // The next attempt goes to the other worker, though both have a free slot.
        let lease = registry.acquire_avoiding(&d.tasks[0].avoid).unwrap();
        assert_eq!(lease.worker_id, other);
        drop(lease);
        // With the other worker busy, the avoided one is still used.
        let busy = registry.acquire_avoiding(&[]).unwrap();
        let fallback = registry.acquire_avoiding(&d.tasks[0].avoid).unwrap();
        assert_ne!(busy.worker_id, fallback.worker_id);
        drop((busy, fallback));
        // The slow worker is suspect: other tasks, too, go elsewhere first.
        let lease = registry.acquire_avoiding(&[]).unwrap();
        assert_eq!(lease.worker_id, other, "a suspect worker comes last");
        drop(lease);
        // A result of the abandoned attempt that still arrives is ignored.
        assert!(d.outcome(done(0, 1, &slow)).unwrap().is_none());
        assert_eq!(d.done, 0);
    }

    fn computed(task: usize, attempt: u32, lines: u64, registry: &Arc<Registry>) -> Outcome {
        let lease = registry.acquire_avoiding(&[]).unwrap();
        Outcome::Computed {
            task,
            attempt,
            worker: lease.worker_id.clone(),
            reply: Reply {
                lines_read: lines,
                customers: 0,
                end: task as u64 * 10 + 10,
            },
            lease: Box::new(lease),
        }
    }

    #[tokio::test]
    async fn held_states_are_folded_and_a_lost_worker_takes_them_all_back() {
        let (registry, w) = registry_of(1);
        let w1 = w[0].clone();
        let mut d = driver(
            &registry,
            config(3),
            vec![
                running(chunk(0), 1, &w1),
                running(chunk(10), 1, &w1),
                running(chunk(20), 1, &w1),
            ],
            30,
        );
        // Task 0 computed: held on w1 and counted in the progress.
        assert!(d.outcome(computed(0, 1, 5, &registry)).unwrap().is_none());
        assert!(matches!(d.tasks[0].state, TaskState::Held { .. }));
        assert_eq!(
            (d.job.status().tasks_done, d.job.status().lines_done),
            (1, 5)
        );
        // The next task dispatched to w1 folds it.
        let (refs, covered) = d.fold_held(&w1);
        assert_eq!(covered, [0]);
        assert_eq!((refs[0].task_id, refs[0].attempt), (0, 1));
        assert!(matches!(d.tasks[0].state, TaskState::Folded));
        if let TaskState::Running { folded, .. } = &mut d.tasks[1].state {
            *folded = covered;
        }
        // Task 1's state covers both: 12 lines, 7 of them its own.
        assert!(d.outcome(computed(1, 1, 12, &registry)).unwrap().is_none());
        assert_eq!(
            (d.job.status().tasks_done, d.job.status().lines_done),
            (2, 12)
        );
        let (_, covered) = d.fold_held(&w1);
        assert_eq!(covered, [1, 0], "a held state brings what it folded");
        if let TaskState::Running { folded, .. } = &mut d.tasks[2].state {
            *folded = covered;
        }
        // The worker is lost while task 2 folds them: all three run again.
        registry.mark_lost(&w1, "test");
        let mut events = d.job.subscribe();
        d.retry_lost().unwrap();
        let mut pending: Vec<usize> = d.pending.iter().copied().collect();
        pending.sort();
        assert_eq!(pending, [0, 1, 2]);
        assert_eq!(
            (d.job.status().tasks_done, d.job.status().lines_done),
            (0, 0)
        );
        let mut messages = Vec::new();
        while let Ok(event) = events.try_recv() {
            messages.push(event.message);
        }
        assert!(
            messages
                .iter()
                .any(|m| m.contains("task 2")
                    && m.contains("with the 2 tasks folded into its state")),
            "{messages:?}"
        );
        assert_eq!(d.done, 0);
    }
}
