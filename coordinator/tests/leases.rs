//! Run leases and interrupts with real processes and a real (throwaway)
//! PostgreSQL: a coordinator killed with SIGKILL mid-job leaves a run the
//! next start marks `abandoned` (never the latest); SIGTERM/SIGINT of
//! `rfm run --database-url` and of `rfm submit` record the run `failed`
//! ("interrupted") and exit 143/130; a run whose owner still renews its lease
//! survives a concurrent start.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{assert_task_delay, bin, latest_run, task_delay, Proc, REAL};
use rfm_store::testing::{self, TestDatabase};

fn extract() -> std::path::PathBuf {
    Path::new(REAL).with_file_name("online_retail_ii_2009-12_extract.csv")
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string()
}

fn rfm(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin("rfm"));
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("RFM_DATABASE_URL");
    cmd
}

/// `rfm run` of the real UCI file in 1 MiB tasks on one thread, each task
/// waiting `delay_ms` first: long enough to interrupt.
fn slow_run(db: &TestDatabase, out: &Path, delay_ms: u64, extra: &[&str]) -> Proc {
    let mut cmd = rfm(&["run", REAL, "--chunk-size", "1MiB", "--threads", "1", "-q"]);
    cmd.args(["--database-url", &db.url, "--out"])
        .arg(out)
        .args(extra);
    Proc::spawn(task_delay(cmd, delay_ms))
}

fn coordinator(db: &TestDatabase, extra: &[&str]) -> Proc {
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "127.0.0.1:0", "--database-url", &db.url])
        .args(extra)
        .env_remove("DATABASE_URL")
        .env_remove("RFM_DATABASE_URL");
    Proc::spawn(cmd)
}

fn worker(url: &str, delay_ms: u64) -> Proc {
    let mut cmd = Command::new(bin("rfm-worker"));
    cmd.args(["--coordinator", url, "--listen", "127.0.0.1:0"])
        .args(["--threads", "1", "--heartbeat-interval", "200ms"]);
    let worker = Proc::spawn(task_delay(cmd, delay_ms));
    assert_task_delay(&worker);
    worker
}

type RunRow = (String, String, Option<String>);

/// (run id, status, error) of every run; an error before the schema exists.
fn try_rows(db: &TestDatabase) -> Result<Vec<RunRow>, String> {
    Ok(db
        .client()
        .query(
            "SELECT run_id, status, error FROM rfm_runs ORDER BY id",
            &[],
        )
        .map_err(|e| e.to_string())?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

fn rows(db: &TestDatabase) -> Vec<RunRow> {
    try_rows(db).expect("read rfm_runs")
}

/// The run id of the one `running` run, once there is one.
fn wait_running(db: &TestDatabase, process: &Proc, timeout: Duration) -> String {
    let start = Instant::now();
    loop {
        let rows = try_rows(db).unwrap_or_default();
        if let Some((id, ..)) = rows.into_iter().find(|(_, s, _)| s == "running") {
            return id;
        }
        assert!(
            start.elapsed() < timeout,
            "no running run within {timeout:?}; stderr:\n{}",
            process.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn row_of(db: &TestDatabase, run_id: &str) -> (String, Option<String>) {
    rows(db)
        .into_iter()
        .find(|(id, ..)| id == run_id)
        .map(|(_, s, e)| (s, e))
        .unwrap_or_else(|| panic!("no run {run_id} in rfm_runs"))
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("run.json")).expect("run.json"))
        .expect("run.json is JSON")
}

/// Publishes a small run with `rfm run --database-url`; returns its run id.
fn publish_small_run(db: &TestDatabase, out: &Path) -> String {
    let o = rfm(&[
        "run",
        extract().to_str().unwrap(),
        "-q",
        "--database-url",
        &db.url,
    ])
    .arg("--out")
    .arg(out)
    .output()
    .expect("run rfm");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    report(out)["run_id"].as_str().unwrap().to_string()
}

#[test]
fn a_coordinator_killed_mid_job_leaves_a_run_the_next_start_marks_abandoned() {
    let db = testing::database();
    let tmp = tempfile::tempdir().unwrap();
    let previous = publish_small_run(&db, &tmp.path().join("previous"));

    let mut first = coordinator(&db, &["--run-lease", "1s", "--run-heartbeat", "200ms"]);
    let url = first.coordinator_url();
    let _worker = worker(&url, 60_000);
    first.wait_for("registered at", 1, Duration::from_secs(20));
    let mut cmd = rfm(&[
        "submit",
        REAL,
        "--coordinator",
        &url,
        "--chunk-size",
        "8MiB",
    ]);
    cmd.arg("--out").arg(tmp.path().join("killed"));
    let _client = Proc::spawn(cmd);
    let run = wait_running(&db, &first, Duration::from_secs(60));
    let pid = first.child.id();
    first.kill9();

    // Nobody has started since: the run is still `running`, and stays so
    // while its lease lasts.
    assert_eq!(row_of(&db, &run).0, "running");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(row_of(&db, &run).0, "running");

    let next = coordinator(&db, &[]);
    next.wait_for(
        &format!("run {run} marked abandoned"),
        1,
        Duration::from_secs(20),
    );
    let (status, error) = row_of(&db, &run);
    assert_eq!(status, "abandoned");
    let error = error.expect("the reason");
    assert!(error.starts_with("lease expired at 20"), "{error}");
    assert!(
        error.contains(&format!(
            "; owner {}/{pid} (rfm-coordinator, instance ",
            host()
        )),
        "{error}"
    );
    // The report in the database says so too.
    let reported: serde_json::Value = db
        .client()
        .query_one("SELECT report FROM rfm_runs WHERE run_id = $1", &[&run])
        .unwrap()
        .get(0);
    assert_eq!(reported["status"], "abandoned");
    assert_eq!(reported["error"], error.as_str());

    // `rfm runs` shows it; the previous published run stays the latest.
    let o = rfm(&["runs", "--database-url", &db.url]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listing = String::from_utf8_lossy(&o.stdout).to_string();
    let line = listing.lines().find(|l| l.contains(&run)).expect("listed");
    assert!(
        line.starts_with(' ') && line.contains(" abandoned "),
        "{listing}"
    );
    assert!(listing.contains(&format!("error: {error}")), "{listing}");
    let latest = listing
        .lines()
        .find(|l| l.starts_with('*'))
        .expect("a latest run");
    assert!(latest.contains(&previous), "{listing}");
    assert_eq!(latest_run(&db.url).0, previous);
}

#[test]
fn sigterm_and_sigint_of_rfm_run_record_the_run_failed_interrupted() {
    let db = testing::database();
    let tmp = tempfile::tempdir().unwrap();
    for (signal, code) in [("-TERM", 143), ("-INT", 130)] {
        let out = tmp.path().join(signal);
        let mut run = slow_run(&db, &out, 300, &[]);
        let run_id = wait_running(&db, &run, Duration::from_secs(60));
        // Well into the computation.
        std::thread::sleep(Duration::from_millis(700));
        run.signal(signal);
        let started = Instant::now();
        let status = run.wait_exit(Duration::from_secs(30));
        assert_eq!(status.code(), Some(code), "{signal}: {}", run.stderr());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{signal}: slow to stop"
        );
        assert_eq!(
            row_of(&db, &run_id),
            ("failed".to_string(), Some("interrupted".to_string())),
            "{signal}"
        );
        let report = report(&out);
        assert_eq!(report["run_id"], run_id.as_str());
        assert_eq!(report["status"], "failed");
        assert_eq!(report["error"], "interrupted");
        assert!(!out.join("customers.csv").exists(), "{signal}: no result");
    }
    assert!(
        db.client()
            .query_opt("SELECT 1 FROM rfm_latest_run", &[])
            .unwrap()
            .is_none(),
        "a failed run is never the latest"
    );
}

#[test]
fn a_run_whose_owner_renews_its_lease_survives_a_concurrent_start() {
    let db = testing::database();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("long");
    let lease = ["--run-lease", "1s", "--run-heartbeat", "200ms"];
    let mut long = slow_run(&db, &out, 150, &lease);
    let run_id = wait_running(&db, &long, Duration::from_secs(60));
    // Several leases long: only renewals keep it.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(long.child.try_wait().unwrap().is_none(), "still computing");

    // Another run starts (and marks expired runs abandoned) meanwhile.
    let other = publish_small_run(&db, &tmp.path().join("other"));
    assert_eq!(row_of(&db, &run_id).0, "running", "{}", long.stderr());

    let status = long.wait_exit(Duration::from_secs(300));
    assert!(status.success(), "{}", long.stderr());
    assert_eq!(row_of(&db, &run_id).0, "published");
    assert_eq!(row_of(&db, &other).0, "published");
    assert_eq!(latest_run(&db.url).0, run_id);
}

#[test]
fn sigterm_of_rfm_submit_cancels_the_job_and_records_the_run_failed_interrupted() {
    let db = testing::database();
    let tmp = tempfile::tempdir().unwrap();
    let coordinator = coordinator(&db, &[]);
    let url = coordinator.coordinator_url();
    let _worker = worker(&url, 60_000);
    coordinator.wait_for("registered at", 1, Duration::from_secs(20));
    let out = tmp.path().join("submitted");
    let mut cmd = rfm(&[
        "submit",
        REAL,
        "--coordinator",
        &url,
        "--chunk-size",
        "8MiB",
    ]);
    cmd.arg("--out").arg(&out);
    let mut client = Proc::spawn(cmd);
    let run_id = wait_running(&db, &coordinator, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(300));
    client.signal("-TERM");
    let status = client.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(143), "{}", client.stderr());
    let report = report(&out);
    assert_eq!(report["run_id"], run_id.as_str());
    assert_eq!(report["status"], "failed");
    assert_eq!(report["error"], "interrupted");

    // The coordinator cancelled the job and recorded the run failed.
    coordinator.wait_for(
        &format!("job {run_id}: interrupted"),
        1,
        Duration::from_secs(20),
    );
    let start = Instant::now();
    while row_of(&db, &run_id).0 == "running" {
        assert!(start.elapsed() < Duration::from_secs(20), "still running");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        row_of(&db, &run_id),
        ("failed".to_string(), Some("interrupted".to_string()))
    );
}
