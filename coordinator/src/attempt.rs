//! One attempt at a task: `RunTask` on a worker (the worker's slot is
//! given back as soon as it answers, so its next task computes meanwhile);
//! then, when the driver says so, `DoGet` of the finished partial state over
//! Arrow Flight and `ReleaseTask` so the worker drops it. Until then the
//! state stays on the worker, and a later task there may fold it into its
//! own (`RunTaskRequest.fold`): one transfer for several tasks. Failures
//! are sorted into deterministic input errors, lost workers and failed
//! attempts. A worker in this process leaves its state in memory
//! ([`rfm_proto::local::LocalStates`]): it is taken from there at once, not
//! fetched. An answer that is impossible for the ranges it covers (see
//! [`crate::answer`]) is not merged: its worker is lost and its tasks run
//! elsewhere. [`split_attempt`] asks a worker to cut a running task short,
//! for the rest of its range to run on an idle worker.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow_flight::Ticket;
use prost::Message;
use rfm_core::PartialState;
use rfm_proto::v1::worker_client::WorkerClient;
use rfm_proto::v1::{FlightTicket, RunTaskRequest, TaskRef};
use tokio::sync::mpsc;
use tonic::transport::Channel;
use tonic::Code;

use crate::answer::{Range, Reply};
use crate::flight_decode::BatchDecoder;
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
    /// `RunTask` answered: the state waits on the worker, to be fetched
    /// ([`fetch_attempt`]) or folded into a later task there.
    Computed {
        task: usize,
        attempt: u32,
        worker: String,
        reply: Reply,
        lease: Box<Lease>,
    },
    /// The state, checked: the task's and those folded into it.
    Done {
        task: usize,
        attempt: u32,
        worker: String,
        state: Box<PartialState>,
        reply: Reply,
    },
    Failed {
        task: usize,
        attempt: u32,
        worker: String,
        kind: FailKind,
        reason: String,
    },
    /// `SplitTask` answered: the attempt's range now ends at `at` (`None`:
    /// it could not be cut, or the call failed).
    Split {
        task: usize,
        attempt: u32,
        at: Option<u64>,
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

/// The first half of an attempt: `RunTask`, folding the `fold` states held
/// on the same worker. A state left in this process is taken and checked
/// at once (`Ok(Some)`); else it waits on the worker (`Ok(None)`).
async fn compute(
    ctx: &AttemptContext,
    task: usize,
    attempt: u32,
    ranges: &[Range],
    fold: Vec<TaskRef>,
    lease: &mut Lease,
) -> Result<(Reply, Option<PartialState>), (FailKind, String)> {
    let (worker, address) = (lease.worker_id.clone(), lease.address.clone());
    let (worker, address) = (worker.as_str(), address.as_str());
    let chunk = ranges[0].0;
    let folds = fold.len() as u32;
    let request = RunTaskRequest {
        task: Some(TaskRef {
            job_id: ctx.job_id.clone(),
            task_id: task as u32,
            attempt,
        }),
        input: ctx.inputs.get(chunk.file_index as usize).cloned(),
        file_index: chunk.file_index,
        start: chunk.start,
        end: chunk.end,
        options: Some(ctx.options.clone()),
        fold,
    };
    let mut tasks = lease.tasks.clone();
    let asked = std::time::Instant::now();
    let response = tasks
        .run_task(lease.call_secret.request(request))
        .await
        .map_err(|s| match s.code() {
            // A state to fold is gone from the worker: its tasks run again.
            Code::NotFound => (
                FailKind::Attempt,
                format!("worker {worker} ({address}): {}", s.message()),
            ),
            _ => classify(worker, address, s),
        })?
        .into_inner();
    tracing::debug!(
        "rfm-coordinator: job {}: task {task} attempt {attempt}: computed on {worker} in {:.1} ms, {folds} states folded",
        ctx.job_id,
        asked.elapsed().as_secs_f64() * 1e3
    );
    // The worker's slot computes the next task while this state waits.
    lease.free_slot();
    if response.folded != folds {
        return Err(impossible(
            worker,
            address,
            task,
            ranges,
            &format!(
                "it folded {} of the {folds} states it was given",
                response.folded
            ),
        ));
    }
    let reply = Reply {
        lines_read: response.lines_read,
        customers: response.customers,
        end: response.end,
    };
    let local = ctx
        .local_states
        .as_ref()
        .and_then(|l| l.take(&ctx.job_id, task as u32, attempt));
    match local {
        Some(state) => match crate::answer::check(ranges, reply, &state) {
            Ok(()) => Ok((reply, Some(state))),
            Err(e) => Err(impossible(worker, address, task, ranges, &e)),
        },
        None => Ok((reply, None)),
    }
}

/// Why an answer is not merged (its worker is then lost).
fn impossible(
    worker: &str,
    address: &str,
    task: usize,
    ranges: &[Range],
    why: &str,
) -> (FailKind, String) {
    let bytes = ranges
        .iter()
        .map(|(c, _)| format!("{}..{}", c.start, c.end))
        .collect::<Vec<_>>()
        .join(", ");
    (
        FailKind::WorkerLost,
        format!(
            "worker {worker} ({address}) answered impossibly for task {task} (bytes {bytes}): \
             {why}; its answer is not merged"
        ),
    )
}

/// Asks a worker to drop the state of an attempt that is no longer wanted
/// (best effort, in the background).
pub fn release(job_id: &str, task: usize, attempt: u32, lease: &Lease) {
    let release = lease.call_secret.request(TaskRef {
        job_id: job_id.to_string(),
        task_id: task as u32,
        attempt,
    });
    let mut tasks = lease.tasks.clone();
    tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(5), tasks.release_task(release)).await;
    });
}

/// The second half of an attempt: `DoGet` of the state `RunTask` left on
/// the worker, checked against the `ranges` it covers, then `ReleaseTask`.
pub async fn fetch_attempt(
    ctx: Arc<AttemptContext>,
    task: usize,
    attempt: u32,
    ranges: Vec<Range>,
    reply: Reply,
    lease: Box<Lease>,
    tx: mpsc::UnboundedSender<Outcome>,
) {
    let worker = lease.worker_id.clone();
    let address = lease.address.clone();
    let fetched = std::time::Instant::now();
    let outcome = match fetch(&ctx, task, attempt, &ranges, &lease, reply).await {
        Ok((Ok(()), state)) => {
            tracing::debug!(
                "rfm-coordinator: job {}: task {task} attempt {attempt}: state of {} customers fetched in {:.1} ms",
                ctx.job_id,
                state.customer_count(),
                fetched.elapsed().as_secs_f64() * 1e3
            );
            release(&ctx.job_id, task, attempt, &lease);
            Outcome::Done {
                task,
                attempt,
                worker,
                state: Box::new(state),
                reply,
            }
        }
        Ok((Err(why), _)) => {
            let (kind, reason) = impossible(&worker, &address, task, &ranges, &why);
            Outcome::Failed {
                task,
                attempt,
                worker,
                kind,
                reason,
            }
        }
        Err((kind, reason)) => Outcome::Failed {
            task,
            attempt,
            worker,
            kind,
            reason,
        },
    };
    drop(lease);
    let _ = tx.send(outcome);
}

/// `DoGet` of an attempt's state over Flight, decoded off the runtime; with
/// the check of the answer against the task.
async fn fetch(
    ctx: &AttemptContext,
    task: usize,
    attempt: u32,
    ranges: &[Range],
    lease: &Lease,
    reply: Reply,
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
    let mut stream = stream;
    let mut decoder = BatchDecoder::default();
    let mut batches: Vec<RecordBatch> = Vec::new();
    while let Some(data) = stream
        .message()
        .await
        .map_err(|s| fetch_failed(s.message().to_string()))?
    {
        batches.extend(decoder.decode(&data).map_err(&fetch_failed)?);
    }
    let schema = decoder.schema().map_err(&fetch_failed)?.clone();
    let received = std::time::Instant::now();
    let job_id = ctx.job_id.clone();
    let ranges = ranges.to_vec();
    tokio::task::spawn_blocking(move || {
        let state = PartialState::from_record_batches(&schema, &batches)?;
        tracing::debug!(
            "rfm-coordinator: job {job_id}: task {task} attempt {attempt}: decoded {} batches in {:.1} ms",
            batches.len(),
            received.elapsed().as_secs_f64() * 1e3
        );
        Ok::<_, rfm_core::Error>((crate::answer::check(&ranges, reply, &state), state))
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

/// Runs the first half of an attempt ([`compute`]) and reports it: `Done`
/// when the state was left in this process, else `Computed` with the lease
/// for the driver to fetch it or leave it for a later task to fold.
pub async fn run_attempt(
    ctx: Arc<AttemptContext>,
    task: usize,
    attempt_no: u32,
    ranges: Vec<Range>,
    fold: Vec<TaskRef>,
    mut lease: Lease,
    tx: mpsc::UnboundedSender<Outcome>,
) {
    let worker = lease.worker_id.clone();
    let outcome = match compute(&ctx, task, attempt_no, &ranges, fold, &mut lease).await {
        Ok((reply, Some(state))) => Outcome::Done {
            task,
            attempt: attempt_no,
            worker,
            state: Box::new(state),
            reply,
        },
        Ok((reply, None)) => Outcome::Computed {
            task,
            attempt: attempt_no,
            worker,
            reply,
            lease: Box::new(lease),
        },
        Err((kind, reason)) => Outcome::Failed {
            task,
            attempt: attempt_no,
            worker,
            kind,
            reason,
        },
    };
    let _ = tx.send(outcome);
}

/// Asks `worker` to cut attempt `attempt` of `task` short (`SplitTask`) and
/// reports where its range now ends. A call that fails or takes over two
/// seconds reports no cut: should the worker have cut the task anyway, its
/// answer says where (`RunTaskResponse.end`).
pub async fn split_attempt(
    job_id: String,
    task: usize,
    attempt: u32,
    client: (WorkerClient<Channel>, rfm_proto::auth::Token),
    tx: mpsc::UnboundedSender<Outcome>,
) {
    let (mut client, token) = client;
    let request = token.request(TaskRef {
        job_id,
        task_id: task as u32,
        attempt,
    });
    let at = match tokio::time::timeout(Duration::from_secs(2), client.split_task(request)).await {
        Ok(Ok(response)) => response.into_inner().at,
        _ => None,
    };
    let _ = tx.send(Outcome::Split { task, attempt, at });
}
