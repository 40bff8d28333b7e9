//! `rfm watch DIR` as a real process on a temporary folder: a dropped file
//! makes exactly one run (the DuckDB reference's customers), a file written
//! in pieces makes one run, a malformed file a failed run that leaves the
//! previous run latest, a schedule with nothing new a skipped run (in the
//! results root and in a real PostgreSQL), and signals stop watching.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

const UCI: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/real/online_retail.csv"
);
const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/data/reference");
/// Customers of the UCI file (SOURCES.md, the DuckDB reference).
const UCI_CUSTOMERS: u64 = 4338;
const DEBOUNCE: Duration = Duration::from_secs(1);

fn rfm() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rfm"));
    for (k, _) in std::env::vars() {
        if k.starts_with("RFM_") || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// A watcher of `dir` (poll 200 ms, debounce 1 s), its log in `log`.
struct Watcher {
    child: Child,
    log: PathBuf,
}

impl Watcher {
    fn start(dir: &Path, root: &Path, extra: &[&str]) -> Watcher {
        let log = root.with_extension("log");
        let child = rfm()
            .args(["watch", dir.to_str().unwrap(), "--results-root"])
            .arg(root)
            .args([
                "--poll-interval",
                "200ms",
                "--debounce",
                "1s",
                "--threads",
                "2",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start rfm watch");
        let w = Watcher { child, log };
        w.wait_for_log("watching", Duration::from_secs(20));
        w
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for_log(&self, fragment: &str, within: Duration) {
        let end = Instant::now() + within;
        while !self.log().contains(fragment) {
            assert!(
                Instant::now() < end,
                "no {fragment:?} in the log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` and returns the exit code.
    fn stop(mut self, signal: &str) -> Option<i32> {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success());
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < end, "rfm watch did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The run reports under `root`, oldest first (not the hidden folders a
/// run's files are staged in).
fn reports(root: &Path) -> Vec<Value> {
    let Ok(items) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut runs: Vec<Value> = items
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| std::fs::read(e.path().join("run.json")).ok())
        .map(|b| serde_json::from_slice(&b).expect("run.json is JSON"))
        .collect();
    runs.sort_by_key(|r| (r["started_at"].to_string(), r["run_id"].to_string()));
    runs
}

/// Waits until `root` holds `n` finished runs; returns them.
fn wait_for_runs(root: &Path, n: usize, within: Duration, w: &Watcher) -> Vec<Value> {
    let end = Instant::now() + within;
    loop {
        let runs = reports(root);
        if runs.len() >= n && runs.iter().all(|r| r["status"] != "running") {
            return runs;
        }
        assert!(
            Instant::now() < end,
            "{} runs of {n} after {within:?}: {runs:#?}\nlog:\n{}",
            runs.len(),
            w.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The run's customers.csv is the DuckDB reference's, byte for byte.
fn check_reference(root: &Path, run: &Value) {
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["customers"], UCI_CUSTOMERS);
    let dir = root.join(run["run_id"].as_str().unwrap());
    let digest = format!(
        "{:x}",
        Sha256::digest(std::fs::read(dir.join("customers.csv")).unwrap())
    );
    let want =
        std::fs::read_to_string(format!("{REFERENCE}/online_retail.customers.sha256")).unwrap();
    assert_eq!(digest, want.split_whitespace().next().unwrap());
}

/// `rfm runs --json` under `root`: (run id, status, latest) newest first.
fn listed(root: &Path) -> Vec<(String, String, bool)> {
    let o = rfm()
        .args(["runs", "--json", "--results-root"])
        .arg(root)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let runs: Value = serde_json::from_slice(&o.stdout).unwrap();
    runs.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["run_id"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
                r["latest"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_dropped_file_runs_once_and_a_malformed_one_fails_leaving_the_latest() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, root) = (tmp.path().join("in"), tmp.path().join("out"));
    std::fs::create_dir(&dir).unwrap();
    let w = Watcher::start(&dir, &root, &[]);

    // An empty folder: no run.
    std::thread::sleep(DEBOUNCE * 2);
    assert!(reports(&root).is_empty(), "{}", w.log());

    std::fs::copy(UCI, dir.join("online_retail.csv")).unwrap();
    let dropped = Instant::now();
    let runs = wait_for_runs(&root, 1, DEBOUNCE + Duration::from_secs(30), &w);
    let took = dropped.elapsed();
    check_reference(&root, &runs[0]);
    // Started after the debounce, not before.
    w.wait_for_log("succeeded: 4338 customers", Duration::from_secs(5));
    assert!(took >= DEBOUNCE, "{took:?}");
    // Exactly one: nothing more once the folder is quiet.
    std::thread::sleep(DEBOUNCE * 3);
    assert_eq!(reports(&root).len(), 1, "{}", w.log());
    let good = runs[0]["run_id"].as_str().unwrap().to_string();

    // A file whose header lacks a column: a failed run, with the reason.
    std::fs::write(
        dir.join("broken.csv"),
        "InvoiceNo,StockCode,Description,InvoiceDate,UnitPrice,CustomerID,Country\n\
         536365,85123A,X,12/1/2010 8:26,2.55,17850,United Kingdom\n",
    )
    .unwrap();
    let runs = wait_for_runs(&root, 2, DEBOUNCE + Duration::from_secs(30), &w);
    let failed = &runs[1];
    assert_eq!(failed["status"], "failed", "{failed:#}");
    assert_eq!(failed["stage"], "header");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("broken.csv") && error.contains("quantity"),
        "{error}"
    );
    w.wait_for_log("failed at header", Duration::from_secs(5));
    // The previous run stays the latest, and its results are read.
    let list = listed(&root);
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].1, "failed");
    assert_eq!(list[1], (good.clone(), "succeeded".into(), true));
    let o = rfm()
        .args(["segments", "--json", "--results-root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(o.status.success());
    let segments: Value = serde_json::from_slice(&o.stdout).unwrap();
    let total: u64 = segments
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["customers"].as_u64().unwrap())
        .sum();
    assert_eq!(total, UCI_CUSTOMERS, "{segments:#}");

    // Idle: SIGTERM stops watching cleanly.
    let log = w.log.clone();
    assert_eq!(w.stop("-TERM"), Some(0));
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("SIGTERM: stopped watching"), "{log}");
    for line in ["change seen", "started", "succeeded", "failed"] {
        assert!(log.contains(line), "{line:?} missing from\n{log}");
    }
}

#[test]
fn a_file_written_slowly_in_pieces_runs_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, root) = (tmp.path().join("in"), tmp.path().join("out"));
    std::fs::create_dir(&dir).unwrap();
    let w = Watcher::start(&dir, &root, &[]);
    let bytes = std::fs::read(UCI).unwrap();
    // Eight pieces 400 ms apart (less than the debounce): 2.8 s of writing.
    let mut file = std::fs::File::create(dir.join("online_retail.csv")).unwrap();
    for piece in bytes.chunks(bytes.len().div_ceil(8)) {
        file.write_all(piece).unwrap();
        file.flush().unwrap();
        std::thread::sleep(Duration::from_millis(400));
    }
    drop(file);
    let runs = wait_for_runs(&root, 1, DEBOUNCE + Duration::from_secs(30), &w);
    std::thread::sleep(DEBOUNCE * 3);
    let runs_after = reports(&root);
    assert_eq!(runs_after.len(), 1, "{runs_after:#?}\n{}", w.log());
    check_reference(&root, &runs[0]);
    assert_eq!(w.log().matches(" started ").count(), 1, "{}", w.log());
}

#[test]
fn a_schedule_skips_when_nothing_changed_and_records_it_in_postgres() {
    let db = rfm_store::testing::database();
    let tmp = tempfile::tempdir().unwrap();
    let (dir, root) = (tmp.path().join("in"), tmp.path().join("out"));
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(UCI, dir.join("online_retail.csv")).unwrap();
    let w = Watcher::start(
        &dir,
        &root,
        &["--every", "3s", "--database-url", db.url.as_str()],
    );
    // First due: the folder is new, a run; second due: nothing changed, skipped.
    let runs = wait_for_runs(&root, 2, Duration::from_secs(60), &w);
    check_reference(&root, &runs[0]);
    assert_eq!(runs[1]["status"], "skipped", "{:#}", runs[1]);
    assert_eq!(runs[1]["error"], "no new or changed files");
    w.wait_for_log("skipped: no new or changed files", Duration::from_secs(5));
    // `rfm runs` lists the skipped run; the published one stays the latest.
    let list = listed(&root);
    assert_eq!(list[0].1, "skipped");
    assert!(list[1].2, "{list:?}");

    // In the database: the run published (the reference's segments), the
    // skipped one recorded with its reason, the latest views unchanged.
    let mut client = db.client();
    let rows = client
        .query(
            "SELECT run_id, status, error FROM rfm_runs ORDER BY id",
            &[],
        )
        .unwrap();
    let rows: Vec<(String, String, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(rows.len() >= 2, "{rows:?}");
    assert_eq!(rows[0].0, runs[0]["run_id"].as_str().unwrap());
    assert_eq!(rows[0].1, "published");
    assert_eq!(rows[1].1, "skipped");
    assert_eq!(rows[1].2.as_deref(), Some("no new or changed files"));
    let latest: String = client
        .query_one("SELECT run_id FROM rfm_latest_run", &[])
        .unwrap()
        .get(0);
    assert_eq!(latest, rows[0].0);
    // The published segments are those of the run's folder (whose
    // customers.csv is the reference's).
    let folder = root.join(runs[0]["run_id"].as_str().unwrap());
    assert_eq!(
        rfm_store::testing::latest_segments_csv(&db.url),
        std::fs::read_to_string(folder.join("segments.csv")).unwrap()
    );
    // `rfm runs` from the database lists the skipped run too.
    let o = rfm()
        .args(["runs", "--json", "--database-url", db.url.as_str()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listed: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["status"] == "skipped"),
        "{listed:#}"
    );
    assert_eq!(w.stop("-INT"), Some(0));
}

#[test]
fn a_signal_during_a_run_records_it_failed_interrupted() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, root) = (tmp.path().join("in"), tmp.path().join("out"));
    std::fs::create_dir(&dir).unwrap();
    // 2 million generated lines in 1 MiB tasks on one thread: a run of
    // half a second (seconds where the worker's test delay is built in).
    let gen = tmp.path().join("big.csv");
    let o = rfm()
        .args(["gen", "--rows", "2000000", "--out"])
        .arg(&gen)
        .output()
        .unwrap();
    assert!(o.status.success());
    let mut watch = rfm();
    watch.env("RFM_WORKER_TASK_DELAY_MS", "50");
    let w = {
        let log = root.with_extension("log");
        let child = watch
            .args(["watch", dir.to_str().unwrap(), "--results-root"])
            .arg(&root)
            .args(["--poll-interval", "100ms", "--debounce", "200ms"])
            .args(["--threads", "1", "--chunk-size", "1MiB"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Watcher { child, log }
    };
    w.wait_for_log("watching", Duration::from_secs(20));
    std::fs::rename(&gen, dir.join("big.csv")).unwrap();
    w.wait_for_log(" started ", Duration::from_secs(20));
    // At once: without the worker's test delay built in, the run takes
    // well under a second.
    std::thread::sleep(Duration::from_millis(20));
    let log = w.log.clone();
    assert_eq!(
        w.stop("-TERM"),
        Some(143),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    let runs = reports(&root);
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["status"], "failed");
    assert_eq!(runs[0]["stage"], "interrupted");
    assert_eq!(runs[0]["error"], "interrupted");
}

#[test]
fn bad_watch_settings_are_usage_errors_naming_the_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    for (args, env, fragments) in [
        (
            vec!["--cron", "0 25 * * *"],
            None,
            vec!["--cron", "hour field \"25\": 25 is out of range 0-23"],
        ),
        (
            vec![],
            Some(("RFM_CRON", "*/0 * * * *")),
            vec!["RFM_CRON", "minute field \"*/0\": a step of 0"],
        ),
        (
            vec!["--every", "1h", "--cron", "0 2 * * *"],
            None,
            vec!["--every", "--cron"],
        ),
        (vec!["--every", "0s"], None, vec!["--every", "zero"]),
    ] {
        let mut cmd = rfm();
        cmd.args(["watch", dir]).args(&args);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let o = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        for f in fragments {
            assert!(err.contains(f), "{args:?}: {f:?} missing from {err}");
        }
    }
    // Not a folder.
    let file = tmp.path().join("a.csv");
    std::fs::write(&file, "x").unwrap();
    let o = rfm().arg("watch").arg(&file).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a folder"));
}
