//! A cancelled task stops computing: a real worker process given a long chunk
//! frees its CPU once the coordinator's `CancelTask` (sent on a job's cancel
//! and on the task timeout) arrives, instead of computing to the end and then
//! discarding the result. The test plays the coordinator: it calls the worker
//! with the call secret the worker registered with.

use std::process::Command;
use std::time::{Duration, Instant};

use rfm_proto::v1::{RunTaskRequest, TaskRef};

use super::support::{bin, Proc};

/// CPU time (user + system) of a process, from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the worker runs");
    // Fields after the command name (which may hold spaces) end with ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / clock_ticks_per_second()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A file of about `bytes` bytes of purchase lines with many customers.
fn long_input(dir: &std::path::Path, bytes: usize) -> std::path::PathBuf {
    let path = dir.join("long.csv");
    let mut s = String::with_capacity(bytes + 200);
    s.push_str(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n",
    );
    let mut i = 0u64;
    while s.len() < bytes {
        s.push_str(&format!(
            "{},85123A,\"WHITE HANGING HEART, T-LIGHT\",{},12/{}/2010 8:26,2.55,{},United Kingdom\n",
            536365 + i / 7,
            1 + i % 12,
            1 + i % 28,
            12346 + i % 50_000
        ));
        i += 1;
    }
    std::fs::write(&path, s).unwrap();
    path
}

#[test]
fn a_cancelled_task_frees_the_workers_cpu() {
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let input = long_input(dir.path(), 400 << 20);

    // The coordinator runs in the test, which calls the worker as it would:
    // with the call secret the worker registered with.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let coordinator = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        rfm_coordinator::start(rfm_coordinator::CoordinatorConfig::default(), listener).unwrap()
    });
    let url = coordinator.url();
    let mut cmd = Command::new(bin("rfm-worker"));
    cmd.args([
        "--coordinator",
        &url,
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "1",
    ]);
    let worker = Proc::spawn(cmd);
    worker.wait_for("registered as", 1, Duration::from_secs(30));
    let (client, call_secret) = coordinator
        .registry
        .tasks_client("w1")
        .expect("the worker registered");
    let pid = worker.child.id();

    let opts = rfm_core::RunOptions::default();
    let files = rfm_core::engine::open_inputs(input.to_str().unwrap(), &opts.parse).unwrap();
    let task = TaskRef {
        job_id: "cancel-test".into(),
        task_id: 0,
        attempt: 1,
    };
    let request = RunTaskRequest {
        task: Some(task.clone()),
        input: Some(rfm_proto::input::to_proto(&files[0])),
        file_index: 0,
        start: files[0].layout.data_start,
        end: files[0].layout.len,
        options: Some(rfm_proto::options::to_proto(&opts)),
        fold: Vec::new(),
    };

    runtime.block_on(async {
        let mut client = client;
        let mut run_client = client.clone();
        let run_request = call_secret.request(request);
        let run = tokio::spawn(async move { run_client.run_task(run_request).await });

        // Wait until the worker computes (its CPU grows), well before the end
        // of the chunk (several CPU seconds).
        let idle = cpu_seconds(pid);
        let deadline = Instant::now() + Duration::from_secs(60);
        while cpu_seconds(pid) < idle + 0.3 {
            assert!(
                Instant::now() < deadline,
                "the worker never started computing"
            );
            assert!(!run.is_finished(), "the task ended before it was cancelled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let at_cancel = cpu_seconds(pid);
        client
            .cancel_task(call_secret.request(task))
            .await
            .expect("CancelTask");
        let answer = tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .expect("RunTask answers after the cancel")
            .unwrap();
        let status = answer.expect_err("a cancelled task gives no state");
        assert_eq!(status.code(), tonic::Code::Cancelled, "{status:?}");
        let at_answer = cpu_seconds(pid);
        // One sub-range (4 MiB) at most after the cancel, not the rest of
        // the 400 MB chunk; generous for a loaded machine.
        assert!(
            at_answer - at_cancel < 0.5,
            "the worker computed {:.2} s of CPU after the cancel",
            at_answer - at_cancel
        );
        // Then the worker idles: heartbeats only.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let later = cpu_seconds(pid);
        assert!(
            later - at_answer < 0.2,
            "the worker still burns CPU after the cancel: {:.2} s in 1 s",
            later - at_answer
        );
    });
}
