//! The coordinator's gRPC service: worker membership (register, heartbeat,
//! list) and the job API (submit, watch, get, result, cancel).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rfm_core::engine::{open_inputs_cancellable, plan_chunks, InputFile};
use rfm_core::input::ParseOptions;
use rfm_core::{Cancel, CancelOnDrop, Error, ErrorKind};
use rfm_proto::v1::coordinator_server::Coordinator;
use rfm_proto::v1::{
    HeartbeatRequest, HeartbeatResponse, JobEvent, JobRef, JobResult, JobStatus, ListJobsRequest,
    ListJobsResponse, ListWorkersRequest, ListWorkersResponse, RegisterWorkerRequest,
    RegisterWorkerResponse, SubmitJobRequest, SubmitJobResponse,
};
use rfm_proto::PROTOCOL_VERSION;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::driver::{self, DriverConfig, Plan};
use crate::job::{is_terminal, Job};
use crate::registry::{dial_address, Registry};

/// Resolves and opens a job's inputs on a blocking thread (the planning step).
/// Dropping the future — the client gave up or disconnected, so tonic drops
/// its call — sets `cancel`, and the planning stops at its next check instead
/// of walking a large tree for nobody.
fn open_job_inputs(
    input: String,
    parse: ParseOptions,
    cancel: Arc<Cancel>,
) -> impl std::future::Future<Output = Result<Vec<InputFile>, Status>> {
    // Made before the first poll: a future dropped unpolled cancels too.
    let stop_when_dropped = CancelOnDrop(cancel.clone());
    async move {
        let _stop_when_dropped = stop_when_dropped;
        tokio::task::spawn_blocking(move || open_inputs_cancellable(&input, &parse, &cancel))
            .await
            .map_err(|e| Status::internal(format!("checking the input failed: {e}")))?
            .map_err(|e| match e {
                Error::Cancelled => Status::cancelled("the submission was given up"),
                e => status_of(&e),
            })
    }
}

/// How long a finished job (and its result) stays available.
pub const KEEP_FINISHED_JOBS: Duration = Duration::from_secs(3600);

/// The `Coordinator` gRPC service.
pub struct CoordinatorService {
    registry: Arc<Registry>,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
    driver: DriverConfig,
}

impl CoordinatorService {
    pub fn new(registry: Arc<Registry>, driver: DriverConfig) -> Self {
        CoordinatorService {
            registry,
            jobs: Mutex::new(HashMap::new()),
            driver,
        }
    }

    fn job(&self, id: &str) -> Result<Arc<Job>, Status> {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no job {id:?} on this coordinator")))
    }

    fn log(&self, message: &str) {
        if self.driver.log {
            tracing::info!("rfm-coordinator: {message}");
        }
    }
}

fn check_version(who: &str, version: u32) -> Result<(), Status> {
    if version == PROTOCOL_VERSION {
        return Ok(());
    }
    Err(Status::failed_precondition(format!(
        "protocol version mismatch: the {who} speaks version {version}, this coordinator speaks version \
         {PROTOCOL_VERSION}; run the same rfm release everywhere"
    )))
}

/// The gRPC status of an engine error: usage errors are INVALID_ARGUMENT,
/// input errors FAILED_PRECONDITION (clients turn them into exit codes).
pub fn status_of(e: &rfm_core::Error) -> Status {
    match e.kind() {
        ErrorKind::Usage => Status::invalid_argument(e.to_string()),
        ErrorKind::Input => Status::failed_precondition(e.to_string()),
        ErrorKind::Output => Status::internal(e.to_string()),
    }
}

#[tonic::async_trait]
impl Coordinator for CoordinatorService {
    async fn register_worker(
        &self,
        request: Request<RegisterWorkerRequest>,
    ) -> Result<Response<RegisterWorkerResponse>, Status> {
        let peer = request.remote_addr();
        let req = request.into_inner();
        check_version("worker", req.protocol_version)?;
        let port = u16::try_from(req.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                Status::invalid_argument(format!("port {} is not a TCP port", req.port))
            })?;
        let address = dial_address(&req.advertise_host, port, peer);
        let worker_id = self
            .registry
            .register(address.clone(), req.slots)
            .map_err(Status::invalid_argument)?;
        self.log(&format!(
            "worker {worker_id} registered at {address} with {} slots",
            req.slots
        ));
        Ok(Response::new(RegisterWorkerResponse { worker_id, address }))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let known = self.registry.heartbeat(&request.get_ref().worker_id);
        Ok(Response::new(HeartbeatResponse { known }))
    }

    async fn submit_job(
        &self,
        request: Request<SubmitJobRequest>,
    ) -> Result<Response<SubmitJobResponse>, Status> {
        let req = request.into_inner();
        check_version("client", req.protocol_version)?;
        let options = req
            .options
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("the request has no options"))?;
        let options = rfm_proto::options::from_proto(options).map_err(|e| status_of(&e))?;
        let parse = options.parse.clone();
        let input = req.input.clone();
        let files = open_job_inputs(input, parse, Arc::new(Cancel::default())).await?;
        let chunks = plan_chunks(&files, options.chunk_size);
        let bytes = chunks.iter().map(|c| c.end - c.start).sum();
        let job_id = if req.job_id.is_empty() {
            rfm_core::report::new_run_id()
        } else {
            req.job_id.clone()
        };
        let job = Arc::new(Job::new(job_id.clone(), chunks.len() as u32, bytes));
        {
            let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            jobs.retain(|_, j| j.ended_ago().is_none_or(|ago| ago < KEEP_FINISHED_JOBS));
            if jobs.contains_key(&job_id) {
                return Err(Status::already_exists(format!(
                    "job {job_id:?} exists already"
                )));
            }
            jobs.insert(job_id.clone(), job.clone());
        }
        let tasks = chunks.len() as u32;
        self.log(&format!(
            "job {job_id}: {} ({tasks} tasks, {bytes} bytes)",
            req.input
        ));
        let report = crate::report::new_report(&job_id, &files, &options);
        let db_run = match &self.driver.publisher {
            Some(publisher) => match publisher.begin(report.clone()).await {
                Ok(run) => Some(run),
                Err(e) => {
                    self.jobs
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&job_id);
                    return Err(rfm_proto::database_status(format!(
                        "the coordinator cannot record job {job_id} in its run database: {e}"
                    )));
                }
            },
            None => None,
        };
        let plan = Plan {
            report,
            files,
            chunks,
            options,
            db_run,
        };
        tokio::spawn(driver::drive(
            job,
            self.registry.clone(),
            plan,
            self.driver.clone(),
        ));
        Ok(Response::new(SubmitJobResponse {
            job_id,
            tasks,
            bytes,
        }))
    }

    type WatchJobStream = ReceiverStream<Result<JobEvent, Status>>;

    async fn watch_job(
        &self,
        request: Request<JobRef>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let job = self.job(&request.get_ref().job_id)?;
        let mut events = job.subscribe();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let first = job.status();
            let ended = is_terminal(first.state);
            let event = JobEvent {
                status: Some(first),
                message: String::new(),
            };
            if tx.send(Ok(event)).await.is_err() || ended {
                return;
            }
            loop {
                let event = match events.recv().await {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(_)) => JobEvent {
                        status: Some(job.status()),
                        message: String::new(),
                    },
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let ended = event.status.as_ref().is_some_and(|s| is_terminal(s.state));
                if tx.send(Ok(event)).await.is_err() || ended {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn get_job(&self, request: Request<JobRef>) -> Result<Response<JobStatus>, Status> {
        Ok(Response::new(self.job(&request.get_ref().job_id)?.status()))
    }

    async fn get_job_result(
        &self,
        request: Request<JobRef>,
    ) -> Result<Response<JobResult>, Status> {
        let job = self.job(&request.get_ref().job_id)?;
        job.result().map(Response::new).ok_or_else(|| {
            Status::failed_precondition(format!(
                "job {} has not finished; watch it and ask again",
                job.id
            ))
        })
    }

    async fn cancel_job(&self, request: Request<JobRef>) -> Result<Response<JobStatus>, Status> {
        let job = self.job(&request.get_ref().job_id)?;
        job.cancel();
        Ok(Response::new(job.status()))
    }

    async fn list_workers(
        &self,
        _request: Request<ListWorkersRequest>,
    ) -> Result<Response<ListWorkersResponse>, Status> {
        Ok(Response::new(ListWorkersResponse {
            workers: self.registry.list(),
        }))
    }

    async fn list_jobs(
        &self,
        _request: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        let jobs: Vec<Arc<Job>> = self
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let mut jobs: Vec<JobStatus> = jobs.iter().map(|j| j.status()).collect();
        jobs.sort_by(|a, b| a.job_id.cmp(&b.job_id));
        Ok(Response::new(ListJobsResponse { jobs }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree of `width` directories per level, `depth` levels deep.
    fn tree(root: &std::path::Path, width: usize, depth: usize) {
        if depth == 0 {
            return;
        }
        for i in 0..width {
            let dir = root.join(format!("d{i}"));
            std::fs::create_dir(&dir).unwrap();
            tree(&dir, width, depth - 1);
        }
    }

    #[tokio::test]
    async fn a_submission_given_up_stops_its_planning() {
        let dir = tempfile::tempdir().unwrap();
        tree(dir.path(), 6, 4);
        let spec = format!("{}/**/*.csv", dir.path().display());

        // Run to its end, the walk finds no file.
        let whole = open_job_inputs(spec.clone(), ParseOptions::default(), Arc::default()).await;
        assert_eq!(whole.unwrap_err().code(), tonic::Code::FailedPrecondition);

        // The client gives up while the coordinator plans: tonic drops the
        // call's future, which stops the blocking walk at its next directory.
        let cancel = Arc::new(Cancel::default());
        let planning = open_job_inputs(spec.clone(), ParseOptions::default(), cancel.clone());
        drop(planning);
        assert!(cancel.is_cancelled());
        let err = open_inputs_cancellable(&spec, &ParseOptions::default(), &cancel).unwrap_err();
        assert!(matches!(err, Error::Cancelled), "{err:?}");

        // Dropped while the walk runs on its thread.
        let cancel = Arc::new(Cancel::default());
        let planning = tokio::spawn(open_job_inputs(
            spec,
            ParseOptions::default(),
            cancel.clone(),
        ));
        tokio::task::yield_now().await;
        planning.abort();
        assert!(planning.await.unwrap_err().is_cancelled());
        assert!(cancel.is_cancelled());
    }
}
