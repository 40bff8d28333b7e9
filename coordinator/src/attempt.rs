//! One attempt at a task: `RunTask` on a worker, `DoGet` of the finished
//! partial state over Arrow Flight (the worker's slot is given back as soon
//! as `RunTask` answers, so its next task computes meanwhile), then
//! `ReleaseTask` so the worker drops it;
//! failures are sorted into deterministic input errors, lost workers and
//! failed attempts. A worker in this process leaves its state in memory
//! ([`rfm_proto::local::LocalStates`]): it is taken from there, not fetched. An answer that is impossible for the task's range (see
//! [`crate::answer`]) is not merged: its worker is lost and the task runs
//! elsewhere.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::Ticket;
use futures::TryStreamExt;
use prost::Message;
use rfm_core::{Chunk, PartialState};
use rfm_proto::v1::{FlightTicket, RunTaskRequest, TaskRef};
use tokio::sync::mpsc;
use tonic::Code;

use crate::registry::Lease;

#[derive(Debug)]
pub enum FailKind {
    /// Deterministic: the input cannot be read; fails the job.
    Input,
    /// The worker died, hangs up or cannot serve the state.
    WorkerLost,
    /// This attempt failed; another may succeed.
    Attempt,
    /// A protocol bug; fails the job.
    Bug,
}

pub enum Outcome {
    Done {
        task: usize,
        attempt: u32,
        worker: String,
        state: Box<PartialState>,
        lines: u64,
    },
    Failed {
        task: usize,
        attempt: u32,
        worker: String,
        kind: FailKind,
        reason: String,
    },
}

/// Per-job data every attempt needs.
pub struct AttemptContext {
    pub job_id: String,
    pub inputs: Vec<rfm_proto::v1::InputFile>,
    /// Size of each input file, to check the answers against.
    pub file_lens: Vec<u64>,
    pub options: rfm_proto::v1::RunOptions,
    /// Finished states of a worker in this process.
    pub local_states: Option<Arc<rfm_proto::local::LocalStates>>,
}

fn classify(worker: &str, address: &str, status: tonic::Status) -> (FailKind, String) {
    let kind = match status.code() {
        Code::FailedPrecondition => FailKind::Input,
        Code::InvalidArgument => FailKind::Bug,
        Code::Internal => FailKind::Attempt,
        _ => FailKind::WorkerLost,
    };
    let reason = match kind {
        FailKind::Input => status.message().to_string(),
        _ => format!("worker {worker} ({address}): {}", status.message()),
    };
    (kind, reason)
}

/// Runs one attempt: `RunTask`, then `DoGet` of its state, then `ReleaseTask`.
async fn attempt(
    ctx: &AttemptContext,
    task: usize,
    attempt: u32,
    chunk: Chunk,
    lease: &mut Lease,
) -> Result<(PartialState, u64), (FailKind, String)> {
    let (worker, address) = (lease.worker_id.clone(), lease.address.clone());
    let (worker, address) = (worker.as_str(), address.as_str());
    let task_ref = TaskRef {
        job_id: ctx.job_id.clone(),
        task_id: task as u32,
        attempt,
    };
    let request = RunTaskRequest {
        task: Some(task_ref.clone()),
        input: ctx.inputs.get(chunk.file_index as usize).cloned(),
        file_index: chunk.file_index,
        start: chunk.start,
        end: chunk.end,
        options: Some(ctx.options.clone()),
    };
    let mut tasks = lease.tasks.clone();
    let asked = std::time::Instant::now();
    let response = tasks
        .run_task(lease.call_secret.request(request))
        .await
        .map_err(|s| classify(worker, address, s))?
        .into_inner();
    tracing::debug!(
        "rfm-coordinator: job {}: task {task} attempt {attempt}: computed on {worker} in {:.1} ms",
        ctx.job_id,
        asked.elapsed().as_secs_f64() * 1e3
    );
    // The worker's slot computes the next task while this state is fetched.
    lease.free_slot();
    let fetched = std::time::Instant::now();
    let file_len = ctx
        .file_lens
        .get(chunk.file_index as usize)
        .copied()
        .unwrap_or(0);
    let reply = crate::answer::Reply {
        lines_read: response.lines_read,
        customers: response.customers,
    };
    let local = ctx
        .local_states
        .as_ref()
        .and_then(|l| l.take(&ctx.job_id, task as u32, attempt));
    let state = match local {
        Some(state) => (crate::answer::check(chunk, file_len, reply, &state), state),
        None => fetch(ctx, task, attempt, chunk, lease, file_len, reply).await?,
    };
    tracing::debug!(
        "rfm-coordinator: job {}: task {task} attempt {attempt}: state of {} customers taken in {:.1} ms",
        ctx.job_id,
        state.1.customer_count(),
        fetched.elapsed().as_secs_f64() * 1e3
    );
    let state = match state {
        (Ok(()), state) => state,
        (Err(impossible), _) => {
            return Err((
                FailKind::WorkerLost,
                format!(
                "worker {worker} ({address}) answered impossibly for task {task} (bytes {}..{}): \
                     {impossible}; its answer is not merged",
                chunk.start, chunk.end
            ),
            ))
        }
    };
    let release = lease.call_secret.request(task_ref);
    tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(5), tasks.release_task(release)).await;
    });
    Ok((state, response.lines_read))
}

/// `DoGet` of an attempt's state over Flight, decoded off the runtime; with
/// the check of the answer against the task.
async fn fetch(
    ctx: &AttemptContext,
    task: usize,
    attempt: u32,
    chunk: Chunk,
    lease: &Lease,
    file_len: u64,
    reply: crate::answer::Reply,
) -> Result<(Result<(), String>, PartialState), (FailKind, String)> {
    let (worker, address) = (lease.worker_id.as_str(), lease.address.as_str());
    let ticket = FlightTicket {
        job_id: ctx.job_id.clone(),
        task_id: task as u32,
        attempt,
    }
    .encode_to_vec();
    let fetch_failed = |e: String| {
        (
            FailKind::WorkerLost,
            format!("Flight fetch from worker {worker} ({address}) failed: {e}"),
        )
    };
    let stream = lease
        .flight
        .clone()
        .do_get(lease.call_secret.request(Ticket {
            ticket: ticket.into(),
        }))
        .await
        .map_err(|s| fetch_failed(s.message().to_string()))?
        .into_inner();
    // A state of no customer (a chunk of only returns) is a stream of its
    // schema alone: the schema, with the ledger in its metadata, is the state.
    let mut decoded =
        FlightRecordBatchStream::new_from_flight_data(stream.map_err(FlightError::from));
    let mut batches: Vec<RecordBatch> = Vec::new();
    while let Some(batch) = decoded
        .try_next()
        .await
        .map_err(|e| fetch_failed(e.to_string()))?
    {
        batches.push(batch);
    }
    let schema = decoded
        .schema()
        .cloned()
        .ok_or_else(|| fetch_failed("the stream ended before its schema".into()))?;
    let received = std::time::Instant::now();
    let job_id = ctx.job_id.clone();
    tokio::task::spawn_blocking(move || {
        let state = PartialState::from_record_batches(&schema, &batches)?;
        tracing::debug!(
            "rfm-coordinator: job {job_id}: task {task} attempt {attempt}: decoded {} batches in {:.1} ms",
            batches.len(),
            received.elapsed().as_secs_f64() * 1e3
        );
        Ok::<_, rfm_core::Error>((crate::answer::check(chunk, file_len, reply, &state), state))
    })
    .await
    .map_err(|e| (FailKind::Attempt, format!("decoding a state failed: {e}")))?
    .map_err(|e| {
        (
            FailKind::Attempt,
            format!("worker {worker} ({address}) sent a bad state: {e}"),
        )
    })
}

pub async fn run_attempt(
    ctx: Arc<AttemptContext>,
    task: usize,
    attempt_no: u32,
    chunk: Chunk,
    mut lease: Lease,
    tx: mpsc::UnboundedSender<Outcome>,
) {
    let worker = lease.worker_id.clone();
    let outcome = match attempt(&ctx, task, attempt_no, chunk, &mut lease).await {
        Ok((state, lines)) => Outcome::Done {
            task,
            attempt: attempt_no,
            worker,
            state: Box::new(state),
            lines,
        },
        Err((kind, reason)) => Outcome::Failed {
            task,
            attempt: attempt_no,
            worker,
            kind,
            reason,
        },
    };
    drop(lease);
    let _ = tx.send(outcome);
}
