//! The distributed engine with real processes on loopback: an
//! `rfm-coordinator`, `rfm-worker` processes (killed with SIGKILL, stopped with
//! SIGSTOP) and `rfm submit`, compared byte for byte with `rfm run` and with
//! the reference outputs of the real UCI file.

use crate::support::{
    assert_task_delay, bin, only_failed_report, task_delay, Proc, REAL, REFERENCE_SEGMENTS,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rfm_proto::v1::coordinator_client::CoordinatorClient;
use rfm_proto::v1::{JobRef, JobStatus};

/// One test at a time: they measure time and share two cores.
pub(crate) fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) struct Cluster {
    pub(crate) coordinator: Proc,
    pub(crate) url: String,
    pub(crate) workers: Vec<Proc>,
}

/// A coordinator with `workers` one-slot workers.
pub(crate) fn cluster(coordinator_args: &[&str], workers: usize, delay_ms: u64) -> Cluster {
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "127.0.0.1:0"]).args(coordinator_args);
    let coordinator = Proc::spawn(cmd);
    let url = coordinator.coordinator_url();
    let mut cluster = Cluster {
        coordinator,
        url,
        workers: Vec::new(),
    };
    for _ in 0..workers {
        cluster.add_worker(delay_ms);
    }
    cluster
        .coordinator
        .wait_for("registered at", workers, Duration::from_secs(15));
    cluster
}

impl Cluster {
    pub(crate) fn add_worker(&mut self, delay_ms: u64) {
        let mut cmd = Command::new(bin("rfm-worker"));
        cmd.args([
            "--coordinator",
            &self.url,
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "1",
        ])
        .args(["--heartbeat-interval", "200ms"]);
        let worker = Proc::spawn(task_delay(cmd, delay_ms));
        if delay_ms > 0 {
            assert_task_delay(&worker);
        }
        self.workers.push(worker);
    }

    pub(crate) fn submit(&self, input: &Path, out: &Path, chunk_size: &str) -> Proc {
        self.submit_with(input, out, chunk_size, &[])
    }

    /// [`Cluster::submit`] with more flags.
    pub(crate) fn submit_with(
        &self,
        input: &Path,
        out: &Path,
        chunk_size: &str,
        flags: &[&str],
    ) -> Proc {
        let mut cmd = Command::new(bin("rfm"));
        cmd.arg("submit")
            .arg(input)
            .args(["--coordinator", &self.url, "--chunk-size", chunk_size])
            .args(flags)
            .arg("--out")
            .arg(out);
        Proc::spawn(cmd)
    }

    /// The status of the (only) job, once the coordinator has planned it.
    pub(crate) fn job_status(&self) -> Option<JobStatus> {
        let log = self.coordinator.stderr();
        let job_id = log
            .lines()
            .find_map(|l| l.split_once("rfm-coordinator: job ").map(|(_, rest)| rest))
            .and_then(|l| l.split(':').next())?
            .to_string();
        let url = self.url.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut client = CoordinatorClient::connect(url).await.ok()?;
            client
                .get_job(JobRef { job_id })
                .await
                .ok()
                .map(|r| r.into_inner())
        })
    }

    /// Waits until the job has at least `done` finished tasks.
    pub(crate) fn wait_tasks_done(&self, done: u32, timeout: Duration) -> JobStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.job_status() {
                if s.tasks_done >= done {
                    return s;
                }
            }
            assert!(
                start.elapsed() < timeout,
                "fewer than {done} tasks done within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `rfm run` of the same input: the expected files; returns its summary.
fn rfm_run(input: &Path, out: &Path) -> String {
    let o = Command::new(bin("rfm"))
        .arg("run")
        .arg(input)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "rfm run failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn assert_same_results(got: &Path, expected: &Path) {
    for file in ["customers.csv", "segments.csv"] {
        let a = std::fs::read(got.join(file))
            .unwrap_or_else(|e| panic!("{}: {e}", got.join(file).display()));
        let b = std::fs::read(expected.join(file)).unwrap();
        assert!(
            a == b,
            "{file} differs between {} and {}",
            got.display(),
            expected.display()
        );
    }
}

pub(crate) fn assert_real_file_reference(out: &Path) {
    let segments = std::fs::read(out.join("segments.csv")).unwrap();
    assert_eq!(
        segments,
        std::fs::read(REFERENCE_SEGMENTS).unwrap(),
        "segments.csv differs from the reference"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(report["lines_read"], 541_909);
    assert_eq!(report["purchase_lines"], 397_884);
    assert_eq!(report["customers"], 4_338);
    assert_eq!(report["as_of"], "2011-12-10");
}

fn real_expected(tmp: &Path) -> PathBuf {
    real_expected_with_summary(tmp).0
}

fn real_expected_with_summary(tmp: &Path) -> (PathBuf, String) {
    let expected = tmp.join("expected-real");
    let summary = rfm_run(Path::new(REAL), &expected);
    assert_real_file_reference(&expected);
    (expected, summary)
}

/// A summary without its last line (the output directory and seconds).
fn without_last_line(summary: &str) -> &str {
    let body = summary.trim_end_matches('\n');
    &body[..body.rfind('\n').unwrap_or(0)]
}

#[test]
fn three_workers_give_the_results_of_rfm_run() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let mut c = cluster(&[], 2, 0);
    // The third worker advertises a name instead of the address it is seen from.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(bin("rfm-worker"));
    cmd.args(["--coordinator", &c.url, "--threads", "1"]).args([
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--advertise",
        &format!("localhost:{port}"),
    ]);
    c.workers.push(Proc::spawn(cmd));
    c.coordinator.wait_for(
        &format!("registered at localhost:{port}"),
        1,
        Duration::from_secs(10),
    );

    let (expected, run_summary) = real_expected_with_summary(tmp.path());
    let out = tmp.path().join("real");
    let mut submit = c.submit(Path::new(REAL), &out, "1MiB");
    assert!(
        submit.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        submit.stderr()
    );
    assert_same_results(&out, &expected);
    assert_real_file_reference(&out);
    let summary = submit.stdout();
    assert!(
        summary.contains("Champions") && summary.contains("results: "),
        "{summary}"
    );
    assert_eq!(without_last_line(&summary), without_last_line(&run_summary));
    assert!(
        submit.stderr().contains("tasks 46/46"),
        "{}",
        submit.stderr()
    );

    let generated = tmp.path().join("gen.csv");
    let o = Command::new(bin("rfm"))
        .args(["gen", "--rows", "1000000", "--seed", "7", "--out"])
        .arg(&generated)
        .output()
        .unwrap();
    assert!(o.status.success());
    let expected = tmp.path().join("expected-gen");
    rfm_run(&generated, &expected);
    let out = tmp.path().join("gen");
    let mut submit = c.submit(&generated, &out, "3MiB");
    assert!(
        submit.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        submit.stderr()
    );
    assert_same_results(&out, &expected);

    let workers = Command::new(bin("rfm"))
        .args(["workers", "--coordinator", &c.url])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&workers.stdout);
    assert_eq!(table.matches("alive").count(), 3, "{table}");
}

#[test]
fn a_killed_worker_has_its_tasks_run_again() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let expected = real_expected(tmp.path());
    let mut c = cluster(&["--worker-timeout", "1s"], 3, 150);
    let out = tmp.path().join("out");
    let mut submit = c.submit(Path::new(REAL), &out, "1MiB");
    c.wait_tasks_done(6, Duration::from_secs(20));
    c.workers[0].kill9();
    assert!(
        submit.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        submit.stderr()
    );
    assert_same_results(&out, &expected);
    let events = submit.stderr();
    assert!(
        events.contains("retry: task"),
        "the event stream shows no retry:\n{events}"
    );
    assert!(
        !events.contains("retries 0\n[succeeded]") && events.contains("[succeeded]"),
        "{events}"
    );
}

#[test]
fn states_held_by_a_killed_worker_run_again_with_the_tasks_folded_into_them() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let expected = real_expected(tmp.path());
    // One worker: while tasks remain to dispatch, every state it finishes
    // stays there, folded into its next task.
    let mut c = cluster(
        &["--worker-timeout", "1s", "--fold-states", "always"],
        1,
        150,
    );
    let out = tmp.path().join("out");
    let mut submit = c.submit(Path::new(REAL), &out, "1MiB");
    c.wait_tasks_done(6, Duration::from_secs(20));
    c.workers[0].kill9();
    c.add_worker(0);
    assert!(
        submit.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        submit.stderr()
    );
    assert_same_results(&out, &expected);
    let events = submit.stderr();
    assert!(
        events.contains("tasks folded into its state"),
        "no folded state was run again:\n{events}"
    );
    assert!(events.contains("tasks 46/46"), "{events}");
    // The rest was folded too: far fewer states crossed over Flight than
    // there were tasks.
    let log = c.coordinator.stderr();
    let states: usize = log
        .lines()
        .find_map(|l| {
            l.split_once("46 tasks merged as ")?
                .1
                .strip_suffix(" states")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no count of merged states:\n{log}"));
    assert!(states <= 10, "{states} states for 46 tasks");
}

/// The cuts the coordinator made: `(task, byte)` from its log lines.
fn cuts(log: &str) -> Vec<(usize, u64)> {
    log.lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once(": task ")?;
            let (task, rest) = rest.split_once(" cut at byte ")?;
            let (byte, _) = rest.split_once(' ')?;
            Some((task.parse().ok()?, byte.parse().ok()?))
        })
        .collect()
}

#[test]
fn a_slow_workers_task_is_cut_for_an_idle_worker_then_its_kept_part_runs_again_when_it_dies() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let expected = real_expected(tmp.path());
    // Two tasks of 24 MiB (six sub-ranges each): the worker that waits 4 s
    // before each task has its task cut while the other one is idle, twice
    // (it keeps 3 sub-ranges, then 1), and is killed before it computes.
    let mut c = cluster(&["--worker-timeout", "1s"], 1, 4_000);
    c.add_worker(0);
    c.coordinator
        .wait_for("registered at", 2, Duration::from_secs(15));
    let out = tmp.path().join("out");
    let mut submit = c.submit(Path::new(REAL), &out, "24MiB");
    let started = Instant::now();
    while cuts(&c.coordinator.stderr()).len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the slow worker's task was not cut twice while it waited:\n{}",
            c.coordinator.stderr()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    c.workers[0].kill9();
    assert!(
        submit.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        submit.stderr()
    );
    assert_same_results(&out, &expected);
    assert_real_file_reference(&out);
    let log = c.coordinator.stderr();
    let cuts = cuts(&log);
    const MIB: u64 = 1 << 20;
    let first = cuts[0];
    assert_eq!(cuts[1].0, first.0, "the same task cut again:\n{log}");
    assert_eq!(
        first.1 - cuts[1].1,
        8 * MIB,
        "the second cut keeps one of the three sub-ranges left:\n{log}"
    );
    let events = submit.stderr();
    assert!(events.contains("retry: task"), "{events}");
    // The task run again is the part its worker kept, not the whole.
    assert!(
        events.contains(&format!("..{})", cuts[1].1)),
        "the retried task is not the kept part:\n{events}"
    );
}

#[test]
fn a_stopped_worker_is_found_by_heartbeat_and_its_tasks_run_again() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let expected = real_expected(tmp.path());
    let c = cluster(&["--worker-timeout", "1s"], 3, 150);
    let out = tmp.path().join("out");
    let mut submit = c.submit(Path::new(REAL), &out, "1MiB");
    c.wait_tasks_done(4, Duration::from_secs(20));
    c.workers[1].signal("-STOP");
    assert!(
        submit.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        submit.stderr()
    );
    assert_same_results(&out, &expected);
    assert!(
        submit.stderr().contains("retry: task"),
        "{}",
        submit.stderr()
    );
    assert!(
        c.coordinator.stderr().contains("lost: no heartbeat"),
        "{}",
        c.coordinator.stderr()
    );
    c.workers[1].signal("-CONT");
}

#[test]
fn a_task_hung_on_a_live_worker_runs_elsewhere_after_the_task_timeout() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let mut c = cluster(&["--task-timeout", "1s"], 2, 0);
    // A third worker heartbeats but never finishes a task.
    c.add_worker(600_000);
    c.coordinator
        .wait_for("registered at", 3, Duration::from_secs(15));
    let out = tmp.path().join("out");
    let mut submit = c.submit(Path::new(REAL), &out, "4MiB");
    assert!(
        submit.wait_exit(Duration::from_secs(90)).success(),
        "{}",
        submit.stderr()
    );
    assert_real_file_reference(&out);
    let events = submit.stderr();
    assert!(
        events.contains("retry: task") && events.contains("--task-timeout"),
        "the event stream shows no timed-out attempt:\n{events}"
    );
    assert!(
        !c.coordinator.stderr().contains("lost"),
        "the hung worker still heartbeats: it is not lost\n{}",
        c.coordinator.stderr()
    );
}

#[test]
fn killing_every_worker_fails_the_job_within_grace_and_expiry() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let mut c = cluster(
        &["--worker-timeout", "1s", "--no-worker-grace", "2s"],
        2,
        300,
    );
    let out = tmp.path().join("out");
    let mut submit = c.submit(Path::new(REAL), &out, "1MiB");
    c.wait_tasks_done(1, Duration::from_secs(20));
    let killed = Instant::now();
    for w in c.workers.iter_mut() {
        w.kill9();
    }
    let status = submit.wait_exit(Duration::from_secs(10));
    let took = killed.elapsed();
    assert_eq!(status.code(), Some(5), "{}", submit.stderr());
    // Grace (2 s) after the loss is seen at once (connection reset) or at
    // the latest after the expiry (1 s); plus slack for a loaded machine.
    assert!(took < Duration::from_millis(3000 + 2500), "took {took:?}");
    let err = submit.stderr();
    assert!(err.contains("no live worker for 2.0 s"), "{err}");
    assert!(
        err.contains("w1 (127.0.0.1:") && err.contains("w2 (127.0.0.1:"),
        "the lost workers are not named: {err}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(report["status"], "failed");
    assert!(!out.join("customers.csv").exists());
}

#[test]
fn input_errors_fail_at_once_with_the_reason() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let c = cluster(&[], 1, 600);

    // A path that does not exist: refused before planning.
    let mut submit = c.submit(
        &tmp.path().join("missing.csv"),
        &tmp.path().join("o1"),
        "1MiB",
    );
    assert_eq!(submit.wait_exit(Duration::from_secs(10)).code(), Some(3));
    assert!(
        submit.stderr().contains("missing.csv: cannot read"),
        "{}",
        submit.stderr()
    );

    // A file the workers cannot read (gone after planning): the worker says so,
    // the job fails at once, nothing is retried, the worker stays alive.
    let input = tmp.path().join("vanishing.csv");
    std::fs::copy(Path::new(REAL), &input).unwrap();
    let started = Instant::now();
    let mut submit = c.submit(&input, &tmp.path().join("o2"), "8MiB");
    c.coordinator
        .wait_for("vanishing.csv", 1, Duration::from_secs(10));
    std::fs::remove_file(&input).unwrap();
    assert_eq!(
        submit.wait_exit(Duration::from_secs(10)).code(),
        Some(3),
        "{}",
        submit.stderr()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let err = submit.stderr();
    assert!(
        err.contains("error: worker 127.0.0.1:") && err.contains("cannot read"),
        "{err}"
    );
    assert!(!err.contains("retry:"), "{err}");
    let workers = Command::new(bin("rfm"))
        .args(["workers", "--coordinator", &c.url])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&workers.stdout).contains("alive"));

    // A malformed limit: fails with the reason, exit 3.
    let bad = tmp.path().join("bad.csv");
    std::fs::write(
        &bad,
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
         1,A,x,1,12/1/2010 8:26,1.0,17850,UK\n2,A,x,one,12/1/2010 8:26,1.0,17850,UK\n",
    )
    .unwrap();
    let mut submit = c.submit(&bad, &tmp.path().join("o3"), "1MiB");
    assert_eq!(
        submit.wait_exit(Duration::from_secs(10)).code(),
        Some(3),
        "{}",
        submit.stderr()
    );
    assert!(submit.stderr().contains("malformed"), "{}", submit.stderr());
}

#[test]
fn cluster_setup_errors_are_clear_and_do_not_hang() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    // A worker pointed at nothing.
    let mut cmd = Command::new(bin("rfm-worker"));
    cmd.args([
        "--coordinator",
        "http://127.0.0.1:1",
        "--listen",
        "127.0.0.1:0",
        "--register-timeout",
        "1s",
    ]);
    let mut worker = Proc::spawn(cmd);
    assert_eq!(worker.wait_exit(Duration::from_secs(10)).code(), Some(5));
    assert!(
        worker
            .stderr()
            .contains("cannot reach the coordinator at http://127.0.0.1:1"),
        "{}",
        worker.stderr()
    );

    // A worker speaking another protocol version.
    let c = cluster(&[], 0, 0);
    let mut cmd = Command::new(bin("rfm-worker"));
    cmd.args([
        "--coordinator",
        &c.url,
        "--listen",
        "127.0.0.1:0",
        "--protocol-version",
        "999",
    ]);
    let mut worker = Proc::spawn(cmd);
    assert_eq!(worker.wait_exit(Duration::from_secs(10)).code(), Some(5));
    assert!(
        worker.stderr().contains("protocol version mismatch"),
        "{}",
        worker.stderr()
    );

    // A worker pointed at another worker instead of the coordinator.
    let mut c = c;
    c.add_worker(0);
    let log = c
        .coordinator
        .wait_for("registered at", 1, Duration::from_secs(10));
    let worker_addr = log
        .lines()
        .find_map(|l| l.split("registered at ").nth(1))
        .and_then(|l| l.split(' ').next())
        .unwrap()
        .to_string();
    let mut cmd = Command::new(bin("rfm-worker"));
    cmd.args(["--coordinator", &worker_addr, "--listen", "127.0.0.1:0"]);
    let mut worker = Proc::spawn(cmd);
    assert_eq!(worker.wait_exit(Duration::from_secs(10)).code(), Some(5));
    assert!(
        worker
            .stderr()
            .contains("does not speak the rfm coordinator protocol"),
        "{}",
        worker.stderr()
    );

    // A client pointed at nothing.
    let o = Command::new(bin("rfm"))
        .args([
            "submit",
            REAL,
            "--coordinator",
            "http://127.0.0.1:1",
            "--out",
        ])
        .arg(tmp.path().join("o"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot reach the coordinator"));
}

#[test]
fn interrupting_submit_cancels_the_job_and_its_tasks() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let c = cluster(&[], 2, 300);
    let mut submit = c.submit(Path::new(REAL), &tmp.path().join("out"), "1MiB");
    c.wait_tasks_done(1, Duration::from_secs(20));
    submit.signal("-INT");
    assert_eq!(
        submit.wait_exit(Duration::from_secs(10)).code(),
        Some(130),
        "{}",
        submit.stderr()
    );
    assert!(
        submit.stderr().contains("SIGINT: stopping"),
        "{}",
        submit.stderr()
    );
    let status = c.job_status().unwrap();
    assert_eq!(status.stage, "cancelled");
    assert_eq!(status.error, "interrupted");
    assert!(status.tasks_done < status.tasks_total);
    let start = Instant::now();
    loop {
        let o = Command::new(bin("rfm"))
            .args(["workers", "--coordinator", &c.url, "--json"])
            .output()
            .unwrap();
        let workers: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let running: u64 = workers
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["running_tasks"].as_u64().unwrap())
            .sum();
        if running == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "tasks still running: {workers}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Ten times the UCI file (`rfm gen --rows 5419090`, 400 MB) on three workers.
#[test]
fn a_result_beyond_max_result_size_fails_with_nothing_written() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let c = cluster(&[], 1, 0);
    // The UCI file's customers.csv is about 300 kB: over a 64 KiB bound
    // the fetch stops, exit 4, and only the failed report is left.
    let out = tmp.path().join("bounded");
    let mut submit = c.submit_with(
        Path::new(REAL),
        &out,
        "8MiB",
        &["--max-result-size", "64KiB"],
    );
    let status = submit.wait_exit(Duration::from_secs(60));
    let err = submit.stderr();
    assert_eq!(status.code(), Some(4), "{err}");
    assert!(
        err.contains("customers.csv of more than 64KiB (--max-result-size)"),
        "{err}"
    );
    only_failed_report(&out, &err);
    // Nothing beside it either: the folder customers.csv went into as it
    // came is gone with the fetch.
    let beside: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(beside, ["bounded"], "{err}");
    // The same job under the default bound is whole.
    let out = tmp.path().join("whole");
    let mut submit = c.submit(Path::new(REAL), &out, "8MiB");
    assert!(
        submit.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        submit.stderr()
    );
    let segments = std::fs::read_to_string(out.join("segments.csv")).unwrap();
    assert_eq!(
        segments,
        std::fs::read_to_string(REFERENCE_SEGMENTS).unwrap()
    );
}

#[test]
fn ten_times_the_uci_file_gives_the_results_of_rfm_run() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let generated = tmp.path().join("gen10x.csv");
    let o = Command::new(bin("rfm"))
        .args(["gen", "--rows", "5419090", "--out"])
        .arg(&generated)
        .output()
        .unwrap();
    assert!(o.status.success());
    let expected = tmp.path().join("expected");
    rfm_run(&generated, &expected);
    let c = cluster(&[], 3, 0);
    let out = tmp.path().join("out");
    let mut submit = c.submit(&generated, &out, "16MiB");
    assert!(
        submit.wait_exit(Duration::from_secs(300)).success(),
        "{}",
        submit.stderr()
    );
    assert_same_results(&out, &expected);
}

#[test]
fn tokens_guard_the_coordinator() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let mut c = cluster(
        &["--token", "s3cret", "--worker-token", "w0rker-s3cret"],
        0,
        0,
    );

    let mut cmd = Command::new(bin("rfm-worker"));
    cmd.args(["--coordinator", &c.url, "--listen", "127.0.0.1:0"]);
    let mut stranger = Proc::spawn(cmd);
    assert_eq!(stranger.wait_exit(Duration::from_secs(10)).code(), Some(5));
    assert!(
        stranger.stderr().contains("requires a token"),
        "{}",
        stranger.stderr()
    );

    let mut cmd = Command::new(bin("rfm-worker"));
    cmd.args([
        "--coordinator",
        &c.url,
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "1",
    ])
    .env("RFM_WORKER_TOKEN", "w0rker-s3cret");
    c.workers.push(Proc::spawn(cmd));
    c.coordinator
        .wait_for("registered at", 1, Duration::from_secs(10));

    let submit = |flags: &[&str], out: &str| {
        let mut cmd = Command::new(bin("rfm"));
        cmd.args([
            "submit",
            REAL,
            "--coordinator",
            &c.url,
            "--chunk-size",
            "8MiB",
            "--out",
        ])
        .arg(tmp.path().join(out))
        .args(flags)
        .env_remove("RFM_TOKEN");
        cmd.output().unwrap()
    };
    let refused = submit(&["--token", "guess"], "o1");
    assert_eq!(refused.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("the token is not valid"), "{stderr}");
    assert!(
        stderr.contains("warning: the secret of --token is given on the command line"),
        "{stderr}"
    );
    let token_file = tmp.path().join("client.token");
    std::fs::write(&token_file, "s3cret\n").unwrap();
    let accepted = submit(&["--token-file", token_file.to_str().unwrap()], "o2");
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    assert_real_file_reference(&tmp.path().join("o2"));
}
