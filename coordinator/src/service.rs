//! The coordinator's gRPC service: worker membership (register, heartbeat,
//! list) and the job API (submit, watch, get, result, cancel; a result's
//! scored tables are served over Flight by [`crate::results`]). Each method
//! requires the caller's role (workers: register and heartbeat; clients and
//! the admin: the rest) and a client sees only its own jobs. While the
//! coordinator drains (shutting down) it refuses new jobs and serves the rest.
//! Every identifier and text a caller sends is checked here (see
//! [`rfm_proto::ident`]) and the coordinator's limits applied (see
//! [`crate::limits`]) before anything is kept or logged. Uploads are
//! received by [`crate::upload`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rfm_core::engine::{open_inputs_checked, plan_chunks, InputFile};
use rfm_core::input::ParseOptions;
use rfm_core::remote::RemoteInputs;
use rfm_core::text::escape_controls;
use rfm_core::{Cancel, CancelOnDrop, DataRoot, Error, ErrorKind};
use rfm_proto::auth::{Identity, Token, MIN_CALL_SECRET_CHARS};
use rfm_proto::ident;
use rfm_proto::v1::coordinator_server::Coordinator;
use rfm_proto::v1::{
    HeartbeatRequest, HeartbeatResponse, JobEvent, JobRef, JobResult, JobStatus, ListJobsRequest,
    ListJobsResponse, ListWorkersRequest, ListWorkersResponse, RegisterWorkerRequest,
    RegisterWorkerResponse, SubmitJobRequest, SubmitJobResponse, UploadChunk, UploadInputResponse,
    WorkerPhase,
};
use rfm_proto::{is_terminal, MAX_WORKER_SLOTS, PROTOCOL_VERSION, WATCH_BEAT};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::cached;
use crate::driver::{self, DriverConfig, Plan};
use crate::job::Job;
use crate::limits::Limits;
use crate::registry::{dial_address, Registry, WorkerAccess};
use crate::retention::JobTable;
use crate::upload::Uploads;

/// The longest cancel reason a client may give (the rest is cut).
const MAX_CANCEL_REASON_CHARS: usize = 120;

/// Resolves and opens a job's inputs on a blocking thread (the planning step).
/// Dropping the future — the client gave up or disconnected, so tonic drops
/// its call — sets `cancel`, and the planning stops at its next check instead
/// of walking a large tree for nobody.
fn open_job_inputs(
    input: String,
    root: Option<Arc<DataRoot>>,
    remote: RemoteInputs,
    parse: ParseOptions,
    cancel: Arc<Cancel>,
) -> impl std::future::Future<Output = Result<Vec<InputFile>, Status>> {
    // Made before the first poll: a future dropped unpolled cancels too.
    let stop_when_dropped = CancelOnDrop(cancel.clone());
    async move {
        let _stop_when_dropped = stop_when_dropped;
        tokio::task::spawn_blocking(move || {
            open_inputs_checked(&input, root.as_deref(), remote, &parse, &cancel)
        })
        .await
        .map_err(|e| Status::internal(format!("checking the input failed: {e}")))?
        .map_err(|e| match e {
            Error::Cancelled => Status::cancelled("the submission was given up"),
            e => status_of(&e),
        })
    }
}

/// The `Coordinator` gRPC service.
pub struct CoordinatorService {
    registry: Arc<Registry>,
    jobs: Arc<JobTable>,
    /// Set when the coordinator shuts down: no new jobs.
    draining: Arc<AtomicBool>,
    driver: DriverConfig,
    limits: Limits,
    /// Started with `--insecure`.
    insecure: bool,
    worker_tls: WorkerTls,
    /// Where uploads go (with a data root only).
    uploads: Option<Uploads>,
}

/// What the coordinator asks of the workers that register, as to TLS.
#[derive(Clone, Copy, Debug, Default)]
pub struct WorkerTls {
    /// The coordinator serves TLS and dials workers over TLS: workers must
    /// serve TLS (and a TLS worker is refused by a plaintext coordinator).
    pub tls: bool,
    /// `--tls-client-ca`: RegisterWorker and Heartbeat need a certificate
    /// signed by it.
    pub client_certificates: bool,
}

impl WorkerTls {
    pub fn of(tls: &crate::CoordinatorTls) -> WorkerTls {
        WorkerTls {
            tls: tls.serve.is_some(),
            client_certificates: tls
                .serve
                .as_ref()
                .is_some_and(|s| s.checks_client_certificates()),
        }
    }

    /// Refuses a registration whose TLS does not match the coordinator's.
    fn check_registration(&self, worker_tls: bool) -> Result<(), Status> {
        match (self.tls, worker_tls) {
            (true, false) => Err(Status::failed_precondition(
                "this coordinator serves TLS and dials its workers over TLS, but this worker serves \
                 plaintext: start the worker with --tls-cert and --tls-key (and --tls-ca for the \
                 coordinator's CA)",
            )),
            (false, true) => Err(Status::failed_precondition(
                "this worker serves TLS but the coordinator does not dial workers over TLS: start \
                 the coordinator with --tls-cert, --tls-key and --tls-ca (or the worker without \
                 --tls-cert)",
            )),
            _ => Ok(()),
        }
    }

    /// With `--tls-client-ca`, a worker call must come with a certificate
    /// signed by it (the port verified it; it is optional there because
    /// clients need none).
    fn check_caller<T>(&self, request: &Request<T>) -> Result<(), Status> {
        if !self.client_certificates || request.peer_certs().is_some_and(|c| !c.is_empty()) {
            return Ok(());
        }
        Err(Status::permission_denied(
            "this coordinator requires a client certificate from its workers (--tls-client-ca): \
             start the worker with --tls-cert and --tls-key signed by that CA",
        ))
    }
}

impl CoordinatorService {
    pub fn new(
        registry: Arc<Registry>,
        jobs: Arc<JobTable>,
        draining: Arc<AtomicBool>,
        driver: DriverConfig,
        limits: Limits,
    ) -> Self {
        let uploads = driver
            .data_root
            .clone()
            .map(|root| Uploads::new(root, limits.max_upload_size, limits.upload_retention));
        CoordinatorService {
            registry,
            jobs,
            draining,
            driver,
            limits,
            insecure: false,
            worker_tls: WorkerTls::default(),
            uploads,
        }
    }

    /// Removes the temporary files of uploads a stopped coordinator left,
    /// and the uploads unused for longer than `--upload-retention`.
    pub fn remove_stale_uploads(&self) {
        let removed = self.uploads.as_ref().map_or(0, |u| u.remove_stale_parts());
        if removed > 0 {
            self.log(&format!(
                "removed {removed} unfinished upload(s) left in {}/",
                crate::upload::UPLOADS_DIR
            ));
        }
        self.remove_expired_uploads();
    }

    /// Removes the uploads unused for longer than `--upload-retention`.
    fn remove_expired_uploads(&self) {
        let Some(uploads) = &self.uploads else {
            return;
        };
        let (removed, bytes) = uploads.remove_expired();
        if removed > 0 {
            self.log(&format!(
                "removed {removed} upload(s) ({bytes} bytes) unused for longer than \
                 --upload-retention ({}s) from {}/",
                self.limits.upload_retention.as_secs(),
                crate::upload::UPLOADS_DIR
            ));
        }
    }

    /// Asks the workers that register for the TLS of `worker_tls`.
    pub fn with_worker_tls(mut self, worker_tls: WorkerTls) -> Self {
        self.worker_tls = worker_tls;
        self
    }

    /// Says in `ListWorkers` that the coordinator runs with `--insecure`.
    pub fn insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    /// The job `id` of a client call (its id checked first): NOT_FOUND when
    /// the caller may not see it.
    fn job<T>(&self, request: &Request<T>, id: &str) -> Result<Arc<Job>, Status> {
        let caller = Identity::of(request);
        caller.require_client()?;
        ident::check_job_id(id)?;
        self.jobs.get_for(id, &caller)
    }

    /// Refuses new jobs while the coordinator drains.
    fn check_accepting(&self) -> Result<(), Status> {
        if !self.draining.load(Ordering::SeqCst) {
            return Ok(());
        }
        Err(rfm_proto::shutting_down_status(
            "the coordinator is shutting down and takes no new jobs; submit again when it is back"
                .into(),
        ))
    }

    /// Logs a line; client-given text in it is escaped, so that no value
    /// can break the line or forge another.
    fn log(&self, message: &str) {
        tracing::info!("rfm-coordinator: {}", escape_controls(message));
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

/// Checks what a submission says of the file it uploaded: a path like an
/// input's, a 64-digit lowercase hex digest (kept in the run's report).
fn check_uploaded_file(upload: &rfm_proto::v1::UploadedFile) -> Result<(), Status> {
    ident::check_input(&upload.file)?;
    if !crate::upload::is_sha256(&upload.sha256) {
        return Err(Status::invalid_argument(
            "the uploaded file's sha256 must be 64 lowercase hex digits",
        ));
    }
    Ok(())
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
        Identity::of(&request).require_worker()?;
        let certified = self.worker_tls.check_caller(&request);
        let peer = request.remote_addr();
        let req = request.into_inner();
        check_version("worker", req.protocol_version)?;
        // A plaintext worker is told to serve TLS before to show a certificate.
        self.worker_tls.check_registration(req.tls)?;
        certified?;
        ident::check_advertise_host(&req.advertise_host)?;
        if req.slots > MAX_WORKER_SLOTS {
            return Err(Status::invalid_argument(format!(
                "a worker may have at most {MAX_WORKER_SLOTS} slots, not {}; lower its --slots",
                req.slots
            )));
        }
        if req.call_secret.chars().count() < MIN_CALL_SECRET_CHARS {
            return Err(Status::invalid_argument(format!(
                "the registration has no call secret of at least {MIN_CALL_SECRET_CHARS} \
                 characters; run the same rfm release on the workers"
            )));
        }
        let port = u16::try_from(req.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                Status::invalid_argument(format!("port {} is not a TCP port", req.port))
            })?;
        let address = dial_address(&req.advertise_host, port, peer);
        let worker_id = self.registry.register(
            address.clone(),
            req.slots,
            WorkerAccess {
                call_secret: Token::new(Some(req.call_secret.clone())),
                insecure: req.insecure,
            },
        )?;
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
        Identity::of(&request).require_worker()?;
        self.worker_tls.check_caller(&request)?;
        let beat = request.get_ref();
        ident::check_worker_id(&beat.worker_id)?;
        let phase = beat.phase();
        let known = self
            .registry
            .heartbeat(&beat.worker_id, &beat.call_secret, phase);
        if known && phase == WorkerPhase::Left {
            self.log(&format!("worker {} left (it shut down)", beat.worker_id));
        }
        Ok(Response::new(HeartbeatResponse { known }))
    }

    async fn submit_job(
        &self,
        request: Request<SubmitJobRequest>,
    ) -> Result<Response<SubmitJobResponse>, Status> {
        tracing::debug!("rfm-coordinator: a job submitted");
        let caller = Identity::of(&request);
        caller.require_client()?;
        self.check_accepting()?;
        let req = request.into_inner();
        check_version("client", req.protocol_version)?;
        ident::check_input(&req.input)?;
        if !req.job_id.is_empty() {
            ident::check_job_id(&req.job_id)?;
        }
        if let Some(upload) = &req.upload {
            check_uploaded_file(upload)?;
        }
        let options = req
            .options
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("the request has no options"))?;
        let req_options = options.clone();
        let mut options = rfm_proto::options::from_proto(options).map_err(|e| status_of(&e))?;
        let auto_chunks = options.chunk_size == 0;
        if !auto_chunks {
            self.limits.check_chunk_size(options.chunk_size)?;
        }
        // Refused early, before the inputs are opened; checked again at insertion.
        self.limits.check_running(self.jobs.running().len())?;
        let parse = options.parse.clone();
        let input = req.input.clone();
        let root = self.driver.data_root.clone();
        let remote = self.driver.remote_inputs;
        // The files the client in this process opened (`rfm run`), when it
        // left them; never under a data root (they were not opened through it).
        let handed = match (&self.driver.local_inputs, &root) {
            (Some(local), None) => local.take(&req.job_id, &input, &parse),
            _ => None,
        };
        let (files, early_lookup) = match handed {
            Some(handed) => (handed.files, handed.lookup),
            None => (
                open_job_inputs(input, root, remote, parse, Arc::new(Cancel::default())).await?,
                None,
            ),
        };
        if auto_chunks {
            options.chunk_size = self
                .limits
                .auto_chunk_size(&files, self.registry.accepting_slots());
        }
        self.limits.check_task_count(&files, options.chunk_size)?;
        let cache = match self.driver.cache.clone().filter(|_| !req_options.no_cache) {
            Some(cache) => {
                let (files, root, parse) = (
                    files.clone(),
                    self.driver.data_root.clone(),
                    options.parse.clone(),
                );
                // The lookup the client in this process started on these
                // files, when it is of this cache (never under a data root:
                // no files are handed there).
                let early = early_lookup.filter(|l| l.is_of(&cache) && root.is_none());
                let early_plan = match early {
                    Some(lookup) => lookup.plan().await,
                    None => None,
                };
                let plan = match early_plan {
                    Some(plan) => plan,
                    None => tokio::task::spawn_blocking(move || {
                        cached::lookup(cache, &files, root.as_deref(), &parse)
                    })
                    .await
                    .map_err(|e| {
                        Status::internal(format!("reading the state cache failed: {e}"))
                    })?,
                };
                Some(plan)
            }
            None => None,
        };
        let mut chunks = plan_chunks(&files, options.chunk_size);
        if let Some(plan) = &cache {
            chunks = plan.chunks_to_compute(chunks);
        }
        let bytes = chunks.iter().map(|c| c.end - c.start).sum();
        let job_id = if req.job_id.is_empty() {
            rfm_core::report::new_run_id()
        } else {
            req.job_id.clone()
        };
        let job =
            Arc::new(Job::new(job_id.clone(), chunks.len() as u32, bytes).owned_by(caller.owner()));
        // Checked under the table's lock: a drain that starts now sees this job.
        self.jobs.insert_checked(job.clone(), |running| {
            self.check_accepting()?;
            self.limits.check_running(running)
        })?;
        let tasks = chunks.len() as u32;
        self.log(&format!(
            "job {job_id}: {} ({tasks} tasks, {bytes} bytes)",
            req.input
        ));
        let mut report = crate::report::new_report(&job_id, &files, &options);
        report.upload = req
            .upload
            .as_ref()
            .map(rfm_proto::report::upload_from_proto);
        if let Some(plan) = &cache {
            report.cache = Some(plan.usage.clone());
            let usage = &plan.usage;
            self.log(&format!(
                "job {job_id}: {} files from the state cache, {} to compute",
                usage.hits, usage.computed
            ));
            for w in &usage.warnings {
                tracing::warn!("rfm-coordinator: job {job_id}: {}", escape_controls(w));
            }
        }
        let db_run = match &self.driver.recorder {
            Some(recorder) => match crate::publish::begin(recorder, report.clone()).await {
                Ok(run) => Some(run),
                Err(e) => {
                    self.jobs.remove(&job_id);
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
            cache,
        };
        let drive = driver::drive(job, self.registry.clone(), plan, self.driver.clone());
        let jobs = self.jobs.clone();
        tokio::spawn(async move {
            drive.await;
            jobs.prune();
        });
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
        let job = self.job(&request, &request.get_ref().job_id)?;
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
            let current = || JobEvent {
                status: Some(job.status()),
                message: String::new(),
            };
            loop {
                let event = match tokio::time::timeout(WATCH_BEAT, events.recv()).await {
                    Err(_quiet) => current(),
                    Ok(Ok(e)) => e,
                    Ok(Err(broadcast::error::RecvError::Lagged(_))) => current(),
                    Ok(Err(broadcast::error::RecvError::Closed)) => return,
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
        Ok(Response::new(
            self.job(&request, &request.get_ref().job_id)?.status(),
        ))
    }

    async fn get_job_result(
        &self,
        request: Request<JobRef>,
    ) -> Result<Response<JobResult>, Status> {
        let job = self.job(&request, &request.get_ref().job_id)?;
        job.result().map(Response::new).ok_or_else(|| {
            Status::failed_precondition(format!(
                "job {} has not finished; watch it and ask again",
                job.id
            ))
        })
    }

    async fn cancel_job(&self, request: Request<JobRef>) -> Result<Response<JobStatus>, Status> {
        let job = self.job(&request, &request.get_ref().job_id)?;
        // The reason becomes the job's error: printable ASCII (a metadata
        // value's), cut to a sensible length, escaped.
        let reason = request
            .metadata()
            .get(rfm_proto::CANCEL_REASON_KEY)
            .and_then(|r| r.to_str().ok())
            .map(|r| {
                let cut: String = r.chars().take(MAX_CANCEL_REASON_CHARS).collect();
                escape_controls(&cut).into_owned()
            })
            .filter(|r| !r.trim().is_empty());
        job.cancel(reason.as_deref().unwrap_or("cancelled by the user"));
        Ok(Response::new(job.status()))
    }

    async fn list_workers(
        &self,
        request: Request<ListWorkersRequest>,
    ) -> Result<Response<ListWorkersResponse>, Status> {
        Identity::of(&request).require_client()?;
        Ok(Response::new(ListWorkersResponse {
            workers: self.registry.list(),
            coordinator_insecure: self.insecure,
        }))
    }

    async fn list_jobs(
        &self,
        request: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        let caller = Identity::of(&request);
        caller.require_client()?;
        let jobs = self.jobs.list_for(&caller);
        let mut jobs: Vec<JobStatus> = jobs.iter().map(|j| j.status()).collect();
        jobs.sort_by(|a, b| a.job_id.cmp(&b.job_id));
        Ok(Response::new(ListJobsResponse { jobs }))
    }

    async fn upload_input(
        &self,
        request: Request<Streaming<UploadChunk>>,
    ) -> Result<Response<UploadInputResponse>, Status> {
        Identity::of(&request).require_client()?;
        self.check_accepting()?;
        let uploads = self.uploads.as_ref().ok_or_else(|| {
            Status::failed_precondition(
                "this coordinator takes no uploads: it has no data root to keep them in; start \
                 it with --data-root DIR (or put the file where the coordinator and the workers \
                 see it and submit it by path)",
            )
        })?;
        let received = uploads.receive(request.into_inner()).await?;
        if !received.response.reused {
            self.remove_expired_uploads();
        }
        let answer = received.response;
        self.log(&format!(
            "upload of {} ({} bytes) {} {}",
            received.file_name,
            answer.bytes,
            if answer.reused {
                "is already stored as"
            } else {
                "stored as"
            },
            answer.input
        ));
        Ok(Response::new(answer))
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
        let whole = open_job_inputs(
            spec.clone(),
            None,
            RemoteInputs::All,
            ParseOptions::default(),
            Arc::default(),
        )
        .await;
        assert_eq!(whole.unwrap_err().code(), tonic::Code::FailedPrecondition);

        // The client gives up while the coordinator plans: tonic drops the
        // call's future, which stops the blocking walk at its next directory.
        let cancel = Arc::new(Cancel::default());
        let planning = open_job_inputs(
            spec.clone(),
            None,
            RemoteInputs::All,
            ParseOptions::default(),
            cancel.clone(),
        );
        drop(planning);
        assert!(cancel.is_cancelled());
        let err =
            rfm_core::engine::open_inputs_cancellable(&spec, &ParseOptions::default(), &cancel)
                .unwrap_err();
        assert!(matches!(err, Error::Cancelled), "{err:?}");

        // Dropped while the walk runs on its thread.
        let cancel = Arc::new(Cancel::default());
        let planning = tokio::spawn(open_job_inputs(
            spec,
            None,
            RemoteInputs::All,
            ParseOptions::default(),
            cancel.clone(),
        ));
        tokio::task::yield_now().await;
        planning.abort();
        assert!(planning.await.unwrap_err().is_cancelled());
        assert!(cancel.is_cancelled());
    }
}
