//! What a caller can make a real coordinator process spend: huge messages
//! and ids are refused at the door (its resident memory stays small), ten
//! thousand registrations leave its worker table bounded, jobs beyond
//! `--max-running-jobs` and chunks below `--min-chunk-size` are refused with
//! a message naming the flag, a job id with a newline cannot forge a log
//! line, and a forged worker answering the impossible is not merged (the
//! job still gives the true result).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_flight::flight_service_server::FlightServiceServer;
use futures::StreamExt;
use rfm_core::engine::{compute_chunk, InputReader, SUB_RANGE_SIZE};
use rfm_core::{Cancel, Chunk, InputFile};
use rfm_proto::v1::coordinator_client::CoordinatorClient;
use rfm_proto::v1::worker_server::{Worker, WorkerServer};
use rfm_proto::v1::{
    JobRef, ListWorkersRequest, RegisterWorkerRequest, RunTaskRequest, RunTaskResponse,
    SplitTaskResponse, SubmitJobRequest, TaskAck, TaskRef,
};
use rfm_proto::PROTOCOL_VERSION;
use rfm_worker::flight::StateFlightService;
use rfm_worker::{Kept, TaskKey, TaskStore};
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

use crate::support::{assert_task_delay, bin, rss, serial, Proc};

/// A call secret as a worker sends it at registration (at least 32 characters).
const CALL_SECRET: &str = "0123456789abcdef0123456789abcdef01234567";

/// A coordinator on loopback with `flags`.
fn coordinator(flags: &[&str]) -> (Proc, String) {
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "127.0.0.1:0"])
        .args(flags)
        .env_remove("DATABASE_URL")
        .env_remove("RFM_DATABASE_URL");
    let proc = Proc::spawn(cmd);
    let url = proc.coordinator_url();
    (proc, url)
}

/// A one-thread worker of `url`, with `env` set.
fn worker(url: &str, env: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(bin("rfm-worker"));
    cmd.args(["--coordinator", url, "--listen", "127.0.0.1:0"])
        .args(["--threads", "1", "--heartbeat-interval", "500ms"])
        .envs(env.iter().copied());
    Proc::spawn(cmd)
}

/// A generated input of `rows` rows in `dir`.
fn generated(dir: &Path, rows: &str) -> std::path::PathBuf {
    generated_as(dir, "input.csv", rows)
}

/// A generated input of `rows` rows in `dir`, as `name` (its format from its
/// extension).
fn generated_as(dir: &Path, name: &str, rows: &str) -> std::path::PathBuf {
    let input = dir.join(name);
    let o = Command::new(bin("rfm"))
        .args(["gen", "--rows", rows, "--seed", "11", "--out"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    input
}

fn submit(url: &str, input: &Path, out: &Path, flags: &[&str]) -> Command {
    let mut cmd = Command::new(bin("rfm"));
    cmd.arg("submit")
        .arg(input)
        .args(["--coordinator", url, "-q", "--out"])
        .arg(out)
        .args(flags);
    cmd
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// A gRPC client that sends and receives messages of any size.
async fn client(url: &str) -> CoordinatorClient<Channel> {
    CoordinatorClient::connect(url.to_string())
        .await
        .expect("connect to the coordinator")
        .max_encoding_message_size(usize::MAX)
        .max_decoding_message_size(usize::MAX)
}

fn job_ref(id: &str) -> JobRef {
    JobRef {
        job_id: id.to_string(),
    }
}

fn submission(input: &str, job_id: &str) -> SubmitJobRequest {
    SubmitJobRequest {
        protocol_version: PROTOCOL_VERSION,
        input: input.to_string(),
        options: Some(rfm_proto::options::to_proto(
            &rfm_core::RunOptions::default(),
        )),
        job_id: job_id.to_string(),
        upload: None,
    }
}

const MIB: u64 = 1 << 20;

#[test]
fn huge_ids_and_submissions_are_refused_and_the_coordinator_stays_small() {
    let _serial = serial();
    let (coordinator, url) = coordinator(&[]);
    let pid = coordinator.child.id();
    let before = rss(pid);
    runtime().block_on(async {
        let mut c = client(&url).await;
        let huge_id = "j".repeat(10 << 20);
        let refused = [
            c.get_job(job_ref(&huge_id)).await.map(|_| ()),
            c.cancel_job(job_ref(&huge_id)).await.map(|_| ()),
            c.watch_job(job_ref(&huge_id)).await.map(|_| ()),
        ];
        for (call, outcome) in ["GetJob", "CancelJob", "WatchJob"].iter().zip(refused) {
            let status = outcome.expect_err(call);
            assert_eq!(status.code(), Code::OutOfRange, "{call}: {status:?}");
        }
        let huge_input = "/".repeat(100 << 20);
        let status = c
            .submit_job(submission(&huge_input, ""))
            .await
            .expect_err("a 100 MB submission");
        assert_eq!(status.code(), Code::OutOfRange, "{status:?}");

        // Within the message limit, the id itself is checked.
        let status = c
            .get_job(job_ref(&"j".repeat(1000)))
            .await
            .expect_err("a 1000-character id");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("job id"), "{status:?}");
        let status = c
            .submit_job(submission(&"/".repeat(5000), ""))
            .await
            .expect_err("a 5000-byte input");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

        // Metadata beyond the header list limit (16 KiB).
        let mut request = Request::new(job_ref("some-job"));
        let big = tonic::metadata::MetadataValue::try_from("x".repeat(64 << 10)).unwrap();
        request.metadata_mut().insert("x-padding", big);
        assert!(c.get_job(request).await.is_err(), "64 KiB of metadata");

        // The coordinator still serves (on a new connection: the oversized
        // header list may close the one it came on, racing a next call).
        client(&url)
            .await
            .list_workers(ListWorkersRequest {})
            .await
            .expect("ListWorkers");
    });
    let after = rss(pid);
    eprintln!(
        "coordinator RSS: {:.1} MiB before, {:.1} MiB after the huge calls",
        before as f64 / MIB as f64,
        after as f64 / MIB as f64
    );
    assert!(
        after < 100 * MIB,
        "the coordinator holds {after} bytes after refusing huge calls"
    );
}

#[test]
fn a_huge_task_sent_to_a_worker_is_refused_and_the_worker_stays_small() {
    let _serial = serial();
    let (coordinator, url) = coordinator(&[]);
    let worker = worker(&url, &[]);
    coordinator.wait_for("registered at", 1, Duration::from_secs(20));
    let pid = worker.child.id();
    runtime().block_on(async {
        let listed = client(&url)
            .await
            .list_workers(ListWorkersRequest {})
            .await
            .unwrap()
            .into_inner()
            .workers;
        let address = format!("http://{}", listed[0].address);
        let mut direct = rfm_proto::v1::worker_client::WorkerClient::connect(address)
            .await
            .expect("connect to the worker")
            .max_encoding_message_size(usize::MAX);
        let status = direct
            .run_task(RunTaskRequest {
                task: Some(TaskRef {
                    job_id: "huge".into(),
                    task_id: 0,
                    attempt: 1,
                }),
                input: Some(rfm_proto::v1::InputFile {
                    path: vec![b'x'; 100 << 20],
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect_err("a 100 MB task");
        // Refused before its body is read: by the message limit, or before
        // it by the worker's credential check.
        assert!(
            matches!(status.code(), Code::OutOfRange | Code::Unauthenticated),
            "{status:?}"
        );
    });
    let after = rss(pid);
    assert!(
        after < 100 * MIB,
        "the worker holds {after} bytes after refusing a 100 MB task"
    );
}

#[test]
fn ten_thousand_registrations_leave_the_worker_table_bounded() {
    let _serial = serial();
    let (_coordinator, url) = coordinator(&["--max-workers", "64", "--worker-timeout", "500ms"]);
    runtime().block_on(async {
        let c = client(&url).await;
        let register = |i: u32, slots: u32| {
            let mut c = c.clone();
            async move {
                c.register_worker(RegisterWorkerRequest {
                    protocol_version: PROTOCOL_VERSION,
                    advertise_host: format!(
                        "10.{}.{}.{}",
                        (i >> 16) & 255,
                        (i >> 8) & 255,
                        i & 255
                    ),
                    port: 50052,
                    slots,
                    call_secret: CALL_SECRET.into(),
                    ..Default::default()
                })
                .await
            }
        };
        let status = register(0, 1_000_000).await.expect_err("a million slots");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("1024"), "{status:?}");

        let started = Instant::now();
        let (mut accepted, mut refused, mut most_listed) = (0, 0, 0);
        for batch in 0..100u32 {
            let outcomes: Vec<_> = futures::stream::iter(0..100u32)
                .map(|i| register(1 + batch * 100 + i, 4))
                .buffer_unordered(32)
                .collect()
                .await;
            for outcome in outcomes {
                match outcome {
                    Ok(_) => accepted += 1,
                    Err(s) if s.code() == Code::ResourceExhausted => {
                        assert!(s.message().contains("--max-workers"), "{s:?}");
                        refused += 1
                    }
                    Err(s) => panic!("registration refused unexpectedly: {s:?}"),
                }
            }
            let listed = c
                .clone()
                .list_workers(ListWorkersRequest {})
                .await
                .unwrap()
                .into_inner()
                .workers
                .len();
            most_listed = most_listed.max(listed);
            // Spread over a few worker timeouts: the earlier ones get lost.
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        eprintln!(
            "10000 registrations in {:?}: {accepted} accepted, {refused} refused (table full), \
             at most {most_listed} listed",
            started.elapsed()
        );
        assert_eq!(accepted + refused, 10_000);
        assert!(most_listed <= 64, "{most_listed} workers listed");
        assert!(refused > 0, "the table never filled up");
        assert!(
            accepted > 64,
            "lost workers were never purged to make room ({accepted} accepted)"
        );

        // None heartbeats: all are lost, then purged (6 x 500 ms after).
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let workers = c
                .clone()
                .list_workers(ListWorkersRequest {})
                .await
                .unwrap()
                .into_inner()
                .workers;
            if workers.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} workers still listed: {:?}",
                workers.len(),
                workers.iter().map(|w| &w.state).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

#[test]
fn a_job_beyond_max_running_jobs_is_refused_naming_the_flag() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let input = generated(tmp.path(), "2000");
    let (coordinator, url) = coordinator(&["--max-running-jobs", "1"]);
    let _worker = worker(&url, &[(rfm_worker::TASK_DELAY_ENV, "8000")]);
    assert_task_delay(&_worker);
    coordinator.wait_for("registered at", 1, Duration::from_secs(20));

    let mut first = Proc::spawn(submit(&url, &input, &tmp.path().join("first"), &[]));
    coordinator.wait_for("1 tasks", 1, Duration::from_secs(20));
    let second = submit(&url, &input, &tmp.path().join("second"), &[])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(5), "{err}");
    assert!(
        err.contains("--max-running-jobs 1") && err.contains("submit again"),
        "{err}"
    );
    let status = first.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "the first job: {}", first.stderr());
}

#[test]
fn a_chunk_size_below_the_minimum_or_too_many_tasks_is_refused() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let input = generated(tmp.path(), "5000");
    let (_coordinator, url) = coordinator(&[]);
    let o = submit(
        &url,
        &input,
        &tmp.path().join("tiny"),
        &["--chunk-size", "1"],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--chunk-size") && err.contains("--min-chunk-size") && err.contains("1048576"),
        "{err}"
    );

    let (_coordinator, url) = coordinator(&["--min-chunk-size", "1", "--max-tasks-per-job", "4"]);
    let o = submit(
        &url,
        &input,
        &tmp.path().join("many"),
        &["--chunk-size", "16KiB"],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--chunk-size") && err.contains("--max-tasks-per-job") && err.contains(" 4 "),
        "{err}"
    );

    // A compressed file is one task however many chunks its size makes: the
    // same chunk size is within the limit, and the job runs.
    let gz = generated_as(tmp.path(), "input.csv.gz", "20000");
    let size = std::fs::metadata(&gz).unwrap().len();
    assert!(
        size > 4 * (16 << 10),
        "{size} bytes would fit 4 tasks anyway"
    );
    let _worker = worker(&url, &[]);
    let o = submit(
        &url,
        &gz,
        &tmp.path().join("gz"),
        &["--chunk-size", "16KiB"],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(tmp.path().join("gz/segments.csv").exists());
}

#[test]
fn a_job_id_with_a_newline_does_not_forge_a_log_line() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let input = generated(tmp.path(), "200");
    let input = input.to_str().unwrap();
    let (coordinator, url) = coordinator(&[]);
    runtime().block_on(async {
        let mut c = client(&url).await;
        let forged = "evil\nFORGED rfm-coordinator: job evil: succeeded";
        let status = c
            .submit_job(submission(input, forged))
            .await
            .expect_err("a job id with a newline");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("\\x0a"), "{status:?}");
        let status = c
            .get_job(job_ref(forged))
            .await
            .expect_err("GetJob of such an id");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        let status = c
            .submit_job(submission(&format!("{input}\nFORGED input"), "fine-id"))
            .await
            .expect_err("an input with a newline");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    });
    std::thread::sleep(Duration::from_millis(300));
    let log = coordinator.stderr();
    assert!(
        !log.lines().any(|l| l.starts_with("FORGED")),
        "a forged log line:\n{log}"
    );
}

/// How a forged worker lies.
#[derive(Clone, Copy, Debug)]
enum Lie {
    /// More lines read than its range has bytes (a ledger consistent in itself).
    MoreLinesThanBytes,
    /// A state whose ledger is not what its reply says.
    LedgerUnlikeReply,
    /// Half its range read, and an answer that says the range ended there,
    /// though nobody asked it to cut the task short (the lines of the other
    /// half would be lost).
    EndsEarly,
    /// The true state, sent with each record batch's body cut in half: its
    /// header names buffers beyond the body (arrow's IPC decoder panics on
    /// such a message).
    BodyCutShort,
}

/// A worker written by an attacker: it computes the true state of each task,
/// then lies about it.
struct ForgedWorker {
    store: Arc<TaskStore>,
    lie: Lie,
}

#[tonic::async_trait]
impl Worker for ForgedWorker {
    async fn run_task(
        &self,
        request: Request<RunTaskRequest>,
    ) -> Result<Response<RunTaskResponse>, Status> {
        let req = request.into_inner();
        let task = req.task.clone().unwrap_or_default();
        let input: InputFile =
            rfm_proto::input::from_proto(&req.input.unwrap_or_default()).unwrap();
        let options = rfm_proto::options::from_proto(&req.options.unwrap_or_default()).unwrap();
        let mut chunk = Chunk {
            file_index: req.file_index,
            start: req.start,
            end: req.end,
        };
        if let Lie::EndsEarly = self.lie {
            chunk.end = chunk.start + (chunk.end - chunk.start) / 2;
        }
        let file_len = input.layout.len;
        let mut state = tokio::task::spawn_blocking(move || {
            let reader = InputReader::open(&input.path).unwrap();
            compute_chunk(
                &reader,
                &input,
                chunk,
                &options.parse,
                SUB_RANGE_SIZE,
                &Cancel::default(),
            )
            .unwrap()
        })
        .await
        .unwrap();
        let mut reply_lines = state.ledger.lines_read;
        match self.lie {
            Lie::MoreLinesThanBytes => {
                state.ledger.lines_read += file_len;
                state.ledger.purchase_lines += file_len;
                reply_lines = state.ledger.lines_read;
            }
            Lie::LedgerUnlikeReply => {
                state.ledger.lines_read += 7;
                state.ledger.malformed += 7;
            }
            Lie::EndsEarly | Lie::BodyCutShort => {}
        }
        let response = RunTaskResponse {
            lines_read: reply_lines,
            customers: state.customer_count() as u64,
            folded: 0,
            end: chunk.end,
        };
        self.store.keep(
            TaskKey::new(&task.job_id, task.task_id, task.attempt),
            state.to_record_batch(),
        );
        Ok(Response::new(response))
    }

    async fn cancel_task(&self, _: Request<TaskRef>) -> Result<Response<TaskAck>, Status> {
        Ok(Response::new(TaskAck {}))
    }

    async fn release_task(&self, _: Request<TaskRef>) -> Result<Response<TaskAck>, Status> {
        Ok(Response::new(TaskAck {}))
    }

    async fn split_task(&self, _: Request<TaskRef>) -> Result<Response<SplitTaskResponse>, Status> {
        Ok(Response::new(SplitTaskResponse { at: None }))
    }
}

/// A forged worker's Flight service that sends each state with its record
/// batches' bodies cut in half ([`Lie::BodyCutShort`]).
struct CutBodies {
    store: Arc<TaskStore>,
}

rfm_proto::flight_do_get_only!(CutBodies, "the forged worker");

impl CutBodies {
    async fn get(
        &self,
        request: Request<arrow_flight::Ticket>,
    ) -> Result<Response<rfm_proto::flight::FlightStream<arrow_flight::FlightData>>, Status> {
        use prost::Message as _;
        let ticket = rfm_proto::v1::FlightTicket::decode(request.into_inner().ticket)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let key = TaskKey::new(&ticket.job_id, ticket.task_id, ticket.attempt);
        let Some(Kept::Batch(batch)) = self.store.finished(&key) else {
            return Err(Status::not_found("no such state"));
        };
        let messages: Vec<arrow_flight::FlightData> =
            arrow_flight::encode::FlightDataEncoderBuilder::new()
                .build(futures::stream::once(async move { Ok(batch) }))
                .map(|m| m.unwrap())
                .collect()
                .await;
        let cut = messages.into_iter().map(|mut m| {
            let half = m.data_body.len() / 2;
            m.data_body = m.data_body.slice(..half);
            Ok(m)
        });
        Ok(Response::new(futures::stream::iter(cut).boxed()))
    }
}

/// Serves a forged worker on loopback and registers it with 8 slots (the
/// scheduler prefers the most free slots); it never heartbeats.
async fn start_forged_worker(url: &str, lie: Lie) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let store = Arc::new(TaskStore::default());
    let cut = matches!(lie, Lie::BodyCutShort);
    let server = tonic::transport::Server::builder()
        .add_service(WorkerServer::new(ForgedWorker {
            store: store.clone(),
            lie,
        }))
        .add_optional_service(cut.then(|| {
            FlightServiceServer::new(CutBodies {
                store: store.clone(),
            })
        }))
        .add_optional_service(
            (!cut).then(|| FlightServiceServer::new(StateFlightService::new(store.clone()))),
        )
        .serve_with_incoming(rfm_proto::serve::incoming_nodelay(listener));
    let serving = tokio::spawn(async move {
        let _ = server.await;
    });
    client(url)
        .await
        .register_worker(RegisterWorkerRequest {
            protocol_version: PROTOCOL_VERSION,
            advertise_host: "127.0.0.1".into(),
            port: port as u32,
            slots: 8,
            call_secret: CALL_SECRET.into(),
            ..Default::default()
        })
        .await
        .expect("the forged worker registers");
    serving
}

/// `rfm run`'s result folder for `input`, under `dir`.
fn expected_result(dir: &Path, input: &Path) -> std::path::PathBuf {
    let expected = dir.join("expected");
    let o = Command::new(bin("rfm"))
        .arg("run")
        .arg(input)
        .arg("--out")
        .arg(&expected)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    expected
}

/// The coordinator at `url` lists the forged worker (its 8 slots) as lost.
fn assert_forged_worker_lost(runtime: &tokio::runtime::Runtime, url: &str) {
    let workers = runtime.block_on(async {
        client(url)
            .await
            .list_workers(ListWorkersRequest {})
            .await
            .unwrap()
            .into_inner()
            .workers
    });
    let forged = workers
        .iter()
        .find(|w| w.slots == 8)
        .expect("the forged worker is listed");
    assert_eq!(forged.state, "lost", "{workers:?}");
}

/// A coordinator with a forged worker that lies as it is told and a real
/// worker, both registered; a generated input and `rfm run`'s result of it.
struct ForgedCluster {
    tmp: tempfile::TempDir,
    input: std::path::PathBuf,
    expected: std::path::PathBuf,
    coordinator: Proc,
    url: String,
    runtime: tokio::runtime::Runtime,
    forged: tokio::task::JoinHandle<()>,
    /// Kept running for the test's length.
    _real: Proc,
}

impl ForgedCluster {
    fn start(lie: Lie) -> ForgedCluster {
        let tmp = tempfile::tempdir().unwrap();
        let input = generated(tmp.path(), "5000");
        let expected = expected_result(tmp.path(), &input);
        let (coordinator, url) = coordinator(&["--min-chunk-size", "1"]);
        let runtime = runtime();
        let forged = runtime.block_on(start_forged_worker(&url, lie));
        let _real = worker(&url, &[]);
        coordinator.wait_for("registered at", 2, Duration::from_secs(20));
        ForgedCluster {
            tmp,
            input,
            expected,
            coordinator,
            url,
            runtime,
            forged,
            _real,
        }
    }
}

fn report(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("run.json")).expect("run.json")).unwrap()
}

fn an_impossible_answer_is_not_merged(lie: Lie) {
    let _serial = serial();
    let c = ForgedCluster::start(lie);

    let out = c.tmp.path().join("out");
    let o = submit(&c.url, &c.input, &out, &["--chunk-size", "64KiB"])
        .output()
        .unwrap();
    let log = c.coordinator.stderr();
    assert!(
        o.status.success(),
        "rfm submit: {}\ncoordinator:\n{log}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        std::fs::read(out.join("customers.csv")).unwrap(),
        std::fs::read(c.expected.join("customers.csv")).unwrap(),
        "{lie:?}: the forged answer reached the result"
    );
    let (got, want) = (report(&out), report(&c.expected));
    for key in ["lines_read", "purchase_lines", "malformed"] {
        assert_eq!(got[key], want[key], "{lie:?}: {key}");
    }
    assert!(log.contains("answered impossibly"), "{lie:?}:\n{log}");
    assert_forged_worker_lost(&c.runtime, &c.url);
    c.forged.abort();
}

#[test]
fn a_forged_worker_reading_more_lines_than_bytes_is_not_merged() {
    an_impossible_answer_is_not_merged(Lie::MoreLinesThanBytes);
}

#[test]
fn a_forged_worker_whose_ledger_is_unlike_its_reply_is_not_merged() {
    an_impossible_answer_is_not_merged(Lie::LedgerUnlikeReply);
}

#[test]
fn a_forged_worker_ending_its_range_unasked_is_not_merged() {
    an_impossible_answer_is_not_merged(Lie::EndsEarly);
}

/// A worker whose state's messages name buffers beyond their bodies: its
/// fetch fails with an error that says so, the worker is lost at once and
/// the job gives the true result from the honest worker. (arrow's decoder
/// panicked on such a message: the fetch's task died, and its task waited
/// until the worker's missed heartbeats made it lost, about 10 s.)
#[test]
fn a_forged_worker_sending_bodies_cut_short_is_lost_and_the_job_ends_true() {
    let _serial = serial();
    let c = ForgedCluster::start(Lie::BodyCutShort);

    let out = c.tmp.path().join("out");
    let mut child = submit(&c.url, &c.input, &out, &["--chunk-size", "64KiB"])
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!(
                "the job waited 60 s on the forged worker:\n{}",
                c.coordinator.stderr()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = started.elapsed();
    let log = c.coordinator.stderr();
    assert!(status.success(), "rfm submit failed; coordinator:\n{log}");
    assert_eq!(
        std::fs::read(out.join("customers.csv")).unwrap(),
        std::fs::read(c.expected.join("customers.csv")).unwrap(),
    );
    assert!(log.contains("lies beyond its"), "{log}");
    assert!(
        took < Duration::from_secs(5),
        "the job took {took:?}: it waited for the forged worker's heartbeats"
    );
    assert!(!log.contains("panicked"), "{log}");
    assert_forged_worker_lost(&c.runtime, &c.url);
    c.forged.abort();
}
