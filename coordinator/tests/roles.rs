//! Credentials, roles and safe defaults with real processes on loopback: a
//! coordinator or worker refuses to listen beyond loopback without
//! credentials and a data root (unless `--insecure`, which it says
//! everywhere); each token opens only its role's calls; a client sees only
//! its own jobs; a worker's port takes only its coordinator's call secret,
//! and the coordinator sends workers that secret, never its own tokens; a
//! forged worker cannot join, so a job's result is the true one.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::Ticket;
use futures::TryStreamExt;
use prost::Message;
use rfm_proto::auth::Token;
use rfm_proto::v1::coordinator_client::CoordinatorClient;
use rfm_proto::v1::worker_client::WorkerClient;
use rfm_proto::v1::{
    FlightTicket, JobRef, ListJobsRequest, ListWorkersRequest, RegisterWorkerRequest, ResultTable,
    ResultTicket, RunTaskRequest, SubmitJobRequest, TaskRef,
};
use rfm_proto::PROTOCOL_VERSION;
use tonic::transport::Channel;
use tonic::Code;

use crate::cluster::{assert_real_file_reference, serial};
use crate::observability::get;
use crate::support::{bin, Proc, REAL};

const CLIENT_A: &str = "client-a-token-0123456789";
const CLIENT_B: &str = "client-b-token-0123456789";
const ADMIN: &str = "admin-token-0123456789abc";
const WORKER: &str = "worker-token-0123456789ab";

/// Waits for a process that must exit, and returns its code and stderr.
fn exit_of(mut p: Proc) -> (Option<i32>, String) {
    let status = p.wait_exit(Duration::from_secs(20));
    (status.code(), p.stderr())
}

fn assert_names_the_remedies(stderr: &str, token_flags: &[&str]) {
    for flag in token_flags.iter().chain(&["--data-root", "--insecure"]) {
        assert!(stderr.contains(flag), "no {flag} in:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn servers_refuse_to_listen_beyond_loopback_without_credentials() {
    let _serial = serial();
    for listen in [
        ["--listen", "0.0.0.0:0", "--http-listen", "127.0.0.1:0"],
        ["--listen", "127.0.0.1:0", "--http-listen", "0.0.0.0:0"],
    ] {
        let mut cmd = Command::new(bin("rfm-coordinator"));
        cmd.args(listen);
        let (code, stderr) = exit_of(Proc::spawn(cmd));
        assert_eq!(code, Some(2), "{stderr}");
        assert_names_the_remedies(&stderr, &["--token", "--worker-token"]);
    }
    // Credentials without a data root are not enough.
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "0.0.0.0:0"])
        .env("RFM_TOKEN", CLIENT_A)
        .env("RFM_WORKER_TOKEN", WORKER);
    let (code, stderr) = exit_of(Proc::spawn(cmd));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("without --data-root"), "{stderr}");

    let mut cmd = Command::new(bin("rfm-worker"));
    cmd.args([
        "--coordinator",
        "http://127.0.0.1:1",
        "--listen",
        "0.0.0.0:0",
    ]);
    let (code, stderr) = exit_of(Proc::spawn(cmd));
    assert_eq!(code, Some(2), "{stderr}");
    assert_names_the_remedies(&stderr, &["--worker-token"]);

    // The default listen address is loopback.
    let help = Command::new(bin("rfm-worker"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("[default: 127.0.0.1:50052]"));
    let help = Command::new(bin("rfm-coordinator"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("[default: 127.0.0.1:50051]"));
}

#[test]
fn token_files_are_checked_and_roles_need_tokens_of_their_own() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.token");
    std::fs::write(&empty, "\n").unwrap();
    let missing = tmp.path().join("missing.token");
    for (flag, file) in [("--token-file", &empty), ("--worker-token-file", &missing)] {
        let mut cmd = Command::new(bin("rfm-coordinator"));
        cmd.args(["--listen", "127.0.0.1:0", flag]).arg(file);
        let (code, stderr) = exit_of(Proc::spawn(cmd));
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    }
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "127.0.0.1:0"])
        .env("RFM_TOKEN", WORKER)
        .env("RFM_WORKER_TOKEN", WORKER);
    let (code, stderr) = exit_of(Proc::spawn(cmd));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("each role needs a token of its own"),
        "{stderr}"
    );

    // A secret on the command line works, with a warning.
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "127.0.0.1:0", "--worker-token", WORKER]);
    let coordinator = Proc::spawn(cmd);
    coordinator.coordinator_url();
    let stderr = coordinator.stderr();
    assert!(
        stderr.contains("--worker-token is given on the command line")
            && stderr.contains("RFM_WORKER_TOKEN"),
        "{stderr}"
    );
}

#[test]
fn insecure_servers_start_and_say_so_everywhere() {
    let _serial = serial();
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args([
        "--listen",
        "0.0.0.0:0",
        "--http-listen",
        "127.0.0.1:0",
        "--insecure",
    ]);
    let coordinator = Proc::spawn(cmd);
    let url = coordinator
        .coordinator_url()
        .replace("0.0.0.0", "127.0.0.1");
    let log = coordinator.wait_for("metrics and health on http://", 1, Duration::from_secs(20));
    assert!(log.contains("INSECURE: started with --insecure"), "{log}");
    let http = log
        .lines()
        .find_map(|l| l.split("metrics and health on http://").nth(1))
        .unwrap()
        .trim()
        .to_string();

    let mut cmd = Command::new(bin("rfm-worker"));
    cmd.args([
        "--coordinator",
        &url,
        "--listen",
        "0.0.0.0:0",
        "--insecure",
        "--log-format",
        "json",
    ]);
    let worker = Proc::spawn(cmd);
    let log = worker.wait_for("registered as", 1, Duration::from_secs(20));
    let warning = log.lines().find(|l| l.contains("INSECURE")).unwrap_or("");
    assert!(warning.contains("\"WARN\""), "{log}");

    let (_, body) = get(&http, "/readyz");
    assert!(body.contains("insecure"), "{body}");
    let workers = Command::new(bin("rfm"))
        .args(["workers", "--coordinator", &url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&workers.stdout);
    assert!(workers.status.success(), "{stdout}");
    assert!(
        stdout.contains("coordinator: INSECURE") && stdout.contains("w1: INSECURE"),
        "{stdout}"
    );
}

/// A coordinator with a client (A), a named client (B), the admin and the
/// worker token, and one real worker.
struct Secured {
    coordinator: Proc,
    worker: Proc,
    url: String,
    _dir: tempfile::TempDir,
}

fn secured() -> Secured {
    let dir = tempfile::tempdir().unwrap();
    let client_file = dir.path().join("client.token");
    std::fs::write(&client_file, format!("{CLIENT_A}\n")).unwrap();
    let clients = dir.path().join("clients");
    std::fs::write(&clients, format!("# team\nbob {CLIENT_B}\n")).unwrap();
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "127.0.0.1:0", "--token-file"])
        .arg(&client_file)
        .arg("--clients-file")
        .arg(&clients)
        .env("RFM_ADMIN_TOKEN", ADMIN)
        .env("RFM_WORKER_TOKEN", WORKER);
    let coordinator = Proc::spawn(cmd);
    let url = coordinator.coordinator_url();
    let mut cmd = Command::new(bin("rfm-worker"));
    cmd.args([
        "--coordinator",
        &url,
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "1",
    ])
    .env("RFM_WORKER_TOKEN", WORKER);
    let worker = Proc::spawn(cmd);
    coordinator.wait_for("registered at", 1, Duration::from_secs(20));
    Secured {
        coordinator,
        worker,
        url,
        _dir: dir,
    }
}

async fn coordinator(url: &str) -> CoordinatorClient<Channel> {
    CoordinatorClient::connect(url.to_string()).await.unwrap()
}

fn token(t: &str) -> Token {
    Token::new(Some(t.into()))
}

fn registration(secret: &str) -> RegisterWorkerRequest {
    RegisterWorkerRequest {
        protocol_version: PROTOCOL_VERSION,
        advertise_host: "127.0.0.1".into(),
        port: 1,
        // As greedy as a worker may be (more is refused, see limits.rs).
        slots: 1024,
        call_secret: secret.into(),
        ..Default::default()
    }
}

/// The first 2000 lines of the real file.
fn small_input(dir: &Path) -> String {
    let text = std::fs::read_to_string(REAL).unwrap();
    let head: Vec<&str> = text.lines().take(2000).collect();
    let path = dir.join("small.csv");
    std::fs::write(&path, head.join("\n") + "\n").unwrap();
    path.display().to_string()
}

fn submission(input: &str, job_id: &str) -> SubmitJobRequest {
    SubmitJobRequest {
        protocol_version: PROTOCOL_VERSION,
        input: input.into(),
        options: Some(rfm_proto::options::to_proto(
            &rfm_core::RunOptions::default(),
        )),
        job_id: job_id.into(),
        upload: None,
    }
}

fn job(id: &str) -> JobRef {
    JobRef { job_id: id.into() }
}

/// Waits until the job has a result for `who`.
async fn wait_result(c: &mut CoordinatorClient<Channel>, who: &str, id: &str) {
    for _ in 0..600 {
        if c.get_job_result(token(who).request(job(id))).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} has no result after 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_token_opens_only_its_roles_calls_and_clients_see_only_their_jobs() {
    let s = secured();
    let tmp = tempfile::tempdir().unwrap();
    let input = small_input(tmp.path());
    let mut c = coordinator(&s.url).await;
    let secret = "0123456789abcdef0123456789abcdef";

    // A client or admin token cannot register a worker.
    for t in [CLIENT_A, CLIENT_B, ADMIN] {
        let err = c
            .register_worker(token(t).request(registration(secret)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        assert!(err.message().contains("--worker-token"), "{err:?}");
    }
    // The worker token cannot submit, list or fetch.
    let w = token(WORKER);
    let err = c
        .submit_job(w.request(submission(&input, "by-worker")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("--token"), "{err:?}");
    let err = c
        .list_jobs(w.request(ListJobsRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = c.get_job_result(w.request(job("any"))).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // No token, or a wrong one.
    let err = c
        .list_jobs(tonic::Request::new(ListJobsRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = c
        .list_jobs(token("guess-guess-guess").request(ListJobsRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // A's job.
    c.submit_job(token(CLIENT_A).request(submission(&input, "job-of-a")))
        .await
        .unwrap();
    wait_result(&mut c, CLIENT_A, "job-of-a").await;
    // B sees it exactly like an unknown job, in every call.
    let unknown = c
        .get_job(token(CLIENT_B).request(job("job-of-z")))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let like_unknown = |id: &str, e: tonic::Status| {
        assert_eq!(e.code(), Code::NotFound, "{e:?}");
        assert_eq!(
            e.message().replace(id, "ID"),
            unknown.message().replace("job-of-z", "ID")
        );
    };
    let b = token(CLIENT_B);
    like_unknown(
        "job-of-a",
        c.get_job(b.request(job("job-of-a"))).await.unwrap_err(),
    );
    like_unknown(
        "job-of-a",
        c.get_job_result(b.request(job("job-of-a")))
            .await
            .unwrap_err(),
    );
    like_unknown(
        "job-of-a",
        c.cancel_job(b.request(job("job-of-a"))).await.unwrap_err(),
    );
    like_unknown(
        "job-of-a",
        c.watch_job(b.request(job("job-of-a"))).await.unwrap_err(),
    );
    // The result's tables over the coordinator's Flight port: B, a worker
    // and no token are refused as for GetJobResult; A streams them.
    let channel = Channel::from_shared(s.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut flight = FlightServiceClient::new(channel);
    let table = |table: ResultTable| Ticket {
        ticket: ResultTicket {
            job_id: "job-of-a".into(),
            table: table as i32,
        }
        .encode_to_vec()
        .into(),
    };
    let customers = || table(ResultTable::Customers);
    // Each table, customers.csv as text among them, under the same rule.
    for kind in [ResultTable::Customers, ResultTable::CustomersCsv] {
        like_unknown(
            "job-of-a",
            flight.do_get(b.request(table(kind))).await.unwrap_err(),
        );
        let err = flight
            .do_get(token(WORKER).request(table(kind)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{kind:?}: {err:?}");
        let err = flight
            .do_get(tonic::Request::new(table(kind)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{kind:?}: {err:?}");
    }
    let err = flight
        .do_get(token(CLIENT_A).request(table(ResultTable::Unspecified)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let stream = flight
        .do_get(token(CLIENT_A).request(customers()))
        .await
        .unwrap()
        .into_inner();
    let batches: Vec<_> =
        FlightRecordBatchStream::new_from_flight_data(stream.map_err(FlightError::from))
            .try_collect()
            .await
            .unwrap();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    // customers.csv as text: A gets the file rfm writes from those rows,
    // byte for byte.
    let pieces: Vec<arrow_flight::FlightData> = flight
        .do_get(token(CLIENT_A).request(table(ResultTable::CustomersCsv)))
        .await
        .unwrap()
        .into_inner()
        .try_collect()
        .await
        .unwrap();
    assert!(pieces.iter().all(|p| p.data_header.is_empty()));
    let text: Vec<u8> = pieces.iter().flat_map(|p| p.data_body.to_vec()).collect();
    let mut from_rows = Vec::new();
    for batch in &batches {
        rfm_core::tables::read_customers(batch, &mut from_rows).unwrap();
    }
    let mut expected = Vec::new();
    rfm_core::customers_csv::write(
        &rfm_core::output::CUSTOMERS_HEADER,
        &from_rows,
        &mut expected,
    )
    .unwrap();
    assert!(
        text == expected,
        "customers.csv as text differs from its rows"
    );
    assert!(rows > 0 && text.iter().filter(|&&b| b == b'\n').count() == rows + 1);
    let result = c
        .get_job_result(token(CLIENT_A).request(job("job-of-a")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(Some(rows as u64), result.scored.map(|s| s.customers));
    let listed = |jobs: Vec<rfm_proto::v1::JobStatus>| -> Vec<String> {
        jobs.into_iter().map(|j| j.job_id).collect()
    };
    let of_b = c.list_jobs(b.request(ListJobsRequest {})).await.unwrap();
    assert!(listed(of_b.into_inner().jobs).is_empty());
    let of_a = c
        .list_jobs(token(CLIENT_A).request(ListJobsRequest {}))
        .await
        .unwrap();
    assert_eq!(listed(of_a.into_inner().jobs), ["job-of-a"]);

    // B's own job; the admin sees and acts on both.
    c.submit_job(b.request(submission(&input, "job-of-b")))
        .await
        .unwrap();
    wait_result(&mut c, CLIENT_B, "job-of-b").await;
    let a = token(CLIENT_A);
    like_unknown(
        "job-of-b",
        c.get_job(a.request(job("job-of-b"))).await.unwrap_err(),
    );
    let admin = token(ADMIN);
    let all = c
        .list_jobs(admin.request(ListJobsRequest {}))
        .await
        .unwrap();
    assert_eq!(listed(all.into_inner().jobs), ["job-of-a", "job-of-b"]);
    for id in ["job-of-a", "job-of-b"] {
        let result = c.get_job_result(admin.request(job(id))).await.unwrap();
        assert_eq!(
            result.into_inner().report.map(|r| r.run_id).as_deref(),
            Some(id)
        );
        c.cancel_job(admin.request(job(id))).await.unwrap();
    }
    c.cancel_job(a.request(job("job-of-a"))).await.unwrap();

    // The CLI says what went wrong, exit 5.
    let out: Output = Command::new(bin("rfm"))
        .args(["jobs", "--coordinator", &s.url])
        .env_remove("RFM_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("requires a token"), "{stderr}");
    let out = Command::new(bin("rfm"))
        .args(["jobs", "--coordinator", &s.url])
        .env("RFM_TOKEN", WORKER)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("needs a client token"), "{stderr}");
    let out = Command::new(bin("rfm"))
        .args(["jobs", "--coordinator", &s.url])
        .env("RFM_TOKEN", CLIENT_B)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("job-of-b") && !stdout.contains("job-of-a"),
        "{stdout}"
    );
    drop(s.worker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_port_takes_only_its_coordinators_call_secret() {
    let s = secured();
    let mut c = coordinator(&s.url).await;
    let workers = c
        .list_workers(token(ADMIN).request(ListWorkersRequest {}))
        .await
        .unwrap()
        .into_inner()
        .workers;
    let address = format!("http://{}", workers[0].address);
    let channel = tonic::transport::Endpoint::from_shared(address)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let task = TaskRef {
        job_id: "j".into(),
        task_id: 0,
        attempt: 1,
    };
    let run = RunTaskRequest {
        task: Some(task.clone()),
        input: None,
        file_index: 0,
        start: 0,
        end: 100,
        options: Some(rfm_proto::options::to_proto(
            &rfm_core::RunOptions::default(),
        )),
        fold: Vec::new(),
    };
    let ticket = Ticket {
        ticket: FlightTicket {
            job_id: "j".into(),
            task_id: 0,
            attempt: 1,
        }
        .encode_to_vec()
        .into(),
    };
    for caller in [
        Token::default(),
        token("guess"),
        token(WORKER),
        token(CLIENT_A),
        token(ADMIN),
    ] {
        let err = WorkerClient::new(channel.clone())
            .run_task(caller.request(run.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
        let err = WorkerClient::new(channel.clone())
            .release_task(caller.request(task.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
        let err = FlightServiceClient::new(channel.clone())
            .do_get(caller.request(ticket.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    }
    // The worker's log shows no task from these calls.
    assert!(!s.worker.stderr().contains("panicked"));
}

#[test]
fn a_forged_worker_cannot_join_so_the_result_is_the_true_one() {
    let _serial = serial();
    let s = secured();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut c = coordinator(&s.url).await;
        let secret = "0123456789abcdef0123456789abcdef";
        // The forger has no worker token: without one, with a guess, with a
        // client token, it is refused and never gets a task.
        for caller in [Token::default(), token("guess"), token(CLIENT_A)] {
            let err = c
                .register_worker(caller.request(registration(secret)))
                .await
                .unwrap_err();
            assert!(
                matches!(err.code(), Code::Unauthenticated | Code::PermissionDenied),
                "{err:?}"
            );
        }
        // Even with the worker token, no registration without a call secret.
        let err = c
            .register_worker(token(WORKER).request(registration("short")))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains("call secret"), "{err:?}");
        let workers = c
            .list_workers(token(CLIENT_A).request(ListWorkersRequest {}))
            .await
            .unwrap()
            .into_inner()
            .workers;
        assert_eq!(workers.len(), 1, "only the real worker: {workers:?}");
    });
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let submit = Command::new(bin("rfm"))
        .args([
            "submit",
            REAL,
            "--coordinator",
            &s.url,
            "--chunk-size",
            "8MiB",
            "--out",
        ])
        .arg(&out)
        .env("RFM_TOKEN", CLIENT_A)
        .output()
        .unwrap();
    assert!(
        submit.status.success(),
        "{}",
        String::from_utf8_lossy(&submit.stderr)
    );
    assert_real_file_reference(&out);
    let customers = std::fs::read_to_string(out.join("customers.csv")).unwrap();
    assert!(!customers.contains("EVIL"));
    drop(s.coordinator);
}

/// A worker that records the `authorization` of every call it gets and
/// fails them (it computes nothing).
#[derive(Clone, Default)]
struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Recorder {
    fn record<T>(&self, request: &tonic::Request<T>) -> tonic::Status {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        self.0.lock().unwrap().push(header);
        tonic::Status::internal("this worker computes nothing")
    }

    fn calls(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

#[tonic::async_trait]
impl rfm_proto::v1::worker_server::Worker for Recorder {
    async fn run_task(
        &self,
        request: tonic::Request<RunTaskRequest>,
    ) -> Result<tonic::Response<rfm_proto::v1::RunTaskResponse>, tonic::Status> {
        Err(self.record(&request))
    }

    async fn cancel_task(
        &self,
        request: tonic::Request<TaskRef>,
    ) -> Result<tonic::Response<rfm_proto::v1::TaskAck>, tonic::Status> {
        Err(self.record(&request))
    }

    async fn release_task(
        &self,
        request: tonic::Request<TaskRef>,
    ) -> Result<tonic::Response<rfm_proto::v1::TaskAck>, tonic::Status> {
        Err(self.record(&request))
    }
    async fn split_task(
        &self,
        request: tonic::Request<TaskRef>,
    ) -> Result<tonic::Response<rfm_proto::v1::SplitTaskResponse>, tonic::Status> {
        Err(self.record(&request))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_calls_workers_with_their_call_secret_never_its_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let input = small_input(dir.path());
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "127.0.0.1:0", "--max-attempts", "1"])
        .env("RFM_TOKEN", CLIENT_A)
        .env("RFM_ADMIN_TOKEN", ADMIN)
        .env("RFM_WORKER_TOKEN", WORKER);
    let coordinator_proc = Proc::spawn(cmd);
    let url = coordinator_proc.coordinator_url();

    // A worker of the test's own, registered with the worker token.
    let recorder = Recorder::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tonic::transport::Server::builder()
        .add_service(rfm_proto::v1::worker_server::WorkerServer::new(
            recorder.clone(),
        ))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    let server = tokio::spawn(server);
    let secret = rfm_proto::auth::random_hex(32);
    let mut c = coordinator(&url).await;
    let mut joining = registration(&secret);
    joining.port = u32::from(port);
    joining.slots = 1;
    c.register_worker(token(WORKER).request(joining))
        .await
        .unwrap();

    c.submit_job(token(CLIENT_A).request(submission(&input, "secret-job")))
        .await
        .unwrap();
    let mut ended = false;
    for _ in 0..600 {
        let status = c
            .get_job(token(CLIENT_A).request(job("secret-job")))
            .await
            .unwrap()
            .into_inner();
        if !status.error.is_empty() {
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        ended,
        "the job never failed on the computing-nothing worker"
    );
    let calls = recorder.calls();
    assert!(!calls.is_empty(), "the worker got no call");
    for header in &calls {
        assert_eq!(header, &format!("Bearer {secret}"));
    }
    server.abort();
}
