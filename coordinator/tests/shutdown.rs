//! Stopping the cluster's processes, for real: SIGINT/SIGTERM to a
//! coordinator publishing to PostgreSQL (idle, mid-job, past its drain
//! timeout, twice), SIGTERM to a worker mid-task, and SIGSTOP of the
//! coordinator under a running `rfm submit` (HTTP/2 keepalive).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rfm_store::testing;

use crate::cluster::{assert_real_file_reference, cluster, serial};
use crate::observability::get;
use crate::support::{bin, latest_run, Proc, REAL};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/sample.csv");

/// A graceful stop leaves no panic and no backtrace behind.
fn assert_clean(who: &str, stderr: &str) {
    for sign in ["panicked", "backtrace", "Cannot start a runtime"] {
        assert!(!stderr.contains(sign), "{who} printed {sign:?}:\n{stderr}");
    }
}

fn run_id_of(dir: &Path) -> String {
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).expect("run.json"))
            .expect("run.json is JSON");
    report["run_id"].as_str().expect("run_id").to_string()
}

/// The address of a server's HTTP port from its "metrics and health on" line.
fn http_address(server: &Proc) -> String {
    let log = server.wait_for("metrics and health on http://", 1, Duration::from_secs(20));
    log.lines()
        .find_map(|l| l.split("metrics and health on http://").nth(1))
        .expect("the HTTP line")
        .trim()
        .to_string()
}

#[test]
fn sigint_and_sigterm_stop_an_idle_coordinator_with_a_database_cleanly() {
    let _serial = serial();
    let db = testing::database();
    for signal in ["-INT", "-TERM"] {
        let mut cmd = Command::new(bin("rfm-coordinator"));
        cmd.args(["--listen", "127.0.0.1:0", "--database-url", &db.url]);
        let mut coordinator = Proc::spawn(cmd);
        coordinator.coordinator_url();
        coordinator.signal(signal);
        let status = coordinator.wait_exit(Duration::from_secs(20));
        let stderr = coordinator.stderr();
        assert_eq!(status.code(), Some(0), "kill {signal}:\n{stderr}");
        assert_clean("the coordinator", &stderr);
        assert!(stderr.contains("shutting down gracefully"), "{stderr}");
    }
}

#[test]
fn a_coordinator_stopped_mid_job_finishes_it_and_refuses_new_jobs() {
    let _serial = serial();
    let db = testing::database();
    let tmp = tempfile::tempdir().unwrap();
    for signal in ["-TERM", "-INT"] {
        let mut c = cluster(
            &[
                "--database-url",
                &db.url,
                "--http-listen",
                "127.0.0.1:0",
                "--drain-timeout",
                "90s",
            ],
            2,
            200,
        );
        let http = http_address(&c.coordinator);
        assert_eq!(get(&http, "/readyz").0, 200);
        let out = tmp.path().join(format!("running{signal}"));
        let mut running = c.submit(Path::new(REAL), &out, "1MiB");
        c.wait_tasks_done(3, Duration::from_secs(30));
        c.coordinator.signal(signal);
        c.coordinator
            .wait_for("shutting down gracefully", 1, Duration::from_secs(10));

        let (code, body) = get(&http, "/readyz");
        assert_eq!(code, 503, "{body}");
        assert!(body.contains("shutting down"), "{body}");

        let mut late = c.submit(
            Path::new(SAMPLE),
            &tmp.path().join(format!("late{signal}")),
            "1MiB",
        );
        assert_eq!(
            late.wait_exit(Duration::from_secs(20)).code(),
            Some(5),
            "{}",
            late.stderr()
        );
        assert!(
            late.stderr()
                .contains("is shutting down and takes no new jobs"),
            "{}",
            late.stderr()
        );

        let status = running.wait_exit(Duration::from_secs(120));
        assert!(status.success(), "kill {signal}: {}", running.stderr());
        assert_real_file_reference(&out);
        let run_id = run_id_of(&out);
        assert!(
            running
                .stdout()
                .contains(&format!("published: run {run_id}")),
            "{}",
            running.stdout()
        );
        let (latest, state, customers) = latest_run(&db.url);
        assert_eq!(
            (latest.as_str(), state.as_str(), customers),
            (run_id.as_str(), "published", 4338)
        );

        let status = c.coordinator.wait_exit(Duration::from_secs(30));
        let stderr = c.coordinator.stderr();
        assert_eq!(status.code(), Some(0), "kill {signal}:\n{stderr}");
        assert_clean("the coordinator", &stderr);
        for worker in c.workers.iter_mut() {
            worker.kill9();
        }
    }
}

#[test]
fn a_job_still_running_at_the_drain_timeout_fails_clearly() {
    let _serial = serial();
    let db = testing::database();
    let tmp = tempfile::tempdir().unwrap();
    let mut c = cluster(
        &["--database-url", &db.url, "--drain-timeout", "1s"],
        1,
        600,
    );
    let out = tmp.path().join("out");
    let mut submit = c.submit(Path::new(REAL), &out, "1MiB");
    c.wait_tasks_done(1, Duration::from_secs(30));
    c.coordinator.signal("-TERM");
    let stopped = Instant::now();
    assert_eq!(
        submit.wait_exit(Duration::from_secs(30)).code(),
        Some(5),
        "{}",
        submit.stderr()
    );
    assert!(stopped.elapsed() < Duration::from_secs(15));
    let err = submit.stderr();
    assert!(
        err.contains("the coordinator shut down before the job finished (--drain-timeout 1.0 s)"),
        "{err}"
    );
    let run_id = run_id_of(&out);
    assert!(!out.join("customers.csv").exists());
    let status = c.coordinator.wait_exit(Duration::from_secs(30));
    let stderr = c.coordinator.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_clean("the coordinator", &stderr);
    let mut store = rfm_store::Store::connect(&db.url).unwrap();
    let row = store
        .client()
        .query_one(
            "SELECT status, error FROM rfm_runs WHERE run_id = $1",
            &[&run_id],
        )
        .expect("the run is recorded");
    let (status, error): (String, Option<String>) = (row.get(0), row.get(1));
    assert_eq!(status, "failed");
    assert!(
        error.unwrap_or_default().contains("coordinator shut down"),
        "the recorded run says why it failed"
    );
}

#[test]
fn a_second_signal_stops_the_coordinator_at_once() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let mut c = cluster(&["--drain-timeout", "60s"], 1, 600);
    let mut submit = c.submit(Path::new(REAL), &tmp.path().join("out"), "1MiB");
    c.wait_tasks_done(1, Duration::from_secs(30));
    c.coordinator.signal("-INT");
    c.coordinator
        .wait_for("shutting down gracefully", 1, Duration::from_secs(10));
    c.coordinator.signal("-INT");
    let second = Instant::now();
    let status = c.coordinator.wait_exit(Duration::from_secs(10));
    assert!(second.elapsed() < Duration::from_secs(5));
    let stderr = c.coordinator.stderr();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("second stop signal (SIGINT) while draining: exiting at once"),
        "{stderr}"
    );
    assert_clean("the coordinator", &stderr);
    assert_eq!(
        submit.wait_exit(Duration::from_secs(30)).code(),
        Some(5),
        "{}",
        submit.stderr()
    );
}

#[test]
fn a_worker_stopped_mid_task_finishes_it_before_it_leaves() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let mut c = cluster(&[], 2, 250);
    let out = tmp.path().join("out");
    let mut submit = c.submit(Path::new(REAL), &out, "1MiB");
    c.wait_tasks_done(2, Duration::from_secs(30));
    c.workers[0].signal("-TERM");
    let status = c.workers[0].wait_exit(Duration::from_secs(30));
    let worker_log = c.workers[0].stderr();
    assert_eq!(status.code(), Some(0), "{worker_log}");
    assert!(
        worker_log.contains("shutting down gracefully"),
        "{worker_log}"
    );
    assert!(!worker_log.contains("drain timeout"), "{worker_log}");
    assert_clean("the worker", &worker_log);

    assert!(
        submit.wait_exit(Duration::from_secs(120)).success(),
        "{}",
        submit.stderr()
    );
    assert_real_file_reference(&out);
    let events = submit.stderr();
    assert!(
        !events.contains("retry:"),
        "the worker's running task was finished, not run again:\n{events}"
    );
    let log = c.coordinator.stderr();
    assert!(log.contains("left (it shut down)"), "{log}");
    assert!(!log.contains("lost"), "{log}");
    let workers = Command::new(bin("rfm"))
        .args(["workers", "--coordinator", &c.url, "--json"])
        .output()
        .unwrap();
    let workers: serde_json::Value = serde_json::from_slice(&workers.stdout).unwrap();
    let state_of = |address: &str| {
        workers
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["address"] == address)
            .map(|w| w["state"].as_str().unwrap().to_string())
    };
    let address = |log: &str| {
        log.lines()
            .find_map(|l| l.split("serving tasks and Flight on ").nth(1))
            .expect("the serving line")
            .trim()
            .to_string()
    };
    assert_eq!(
        state_of(&address(&worker_log)).as_deref(),
        Some("left"),
        "{workers}"
    );
    assert_eq!(
        state_of(&address(&c.workers[1].stderr())).as_deref(),
        Some("alive"),
        "{workers}"
    );
}

#[test]
fn submit_fails_within_the_keepalive_when_the_coordinator_is_stopped() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let c = cluster(&[], 1, 300);
    let mut submit = c.submit_with(
        Path::new(REAL),
        &tmp.path().join("out"),
        "1MiB",
        &["--keepalive-interval", "1s", "--keepalive-timeout", "1s"],
    );
    c.wait_tasks_done(1, Duration::from_secs(30));
    c.coordinator.signal("-STOP");
    let stopped = Instant::now();
    let status = submit.wait_exit(Duration::from_secs(30));
    let took = stopped.elapsed();
    let err = submit.stderr();
    assert_eq!(status.code(), Some(5), "{err}");
    // Two seconds of pings unanswered (or three of a silent event stream),
    // plus slack for a loaded machine.
    assert!(took < Duration::from_secs(8), "took {took:?}: {err}");
    assert!(
        err.contains(&format!("coordinator at {} stopped answering for", c.url)),
        "{err}"
    );
    c.coordinator.signal("-CONT");
}
