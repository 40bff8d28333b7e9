//! `rfm-coordinator --watch DIR`: a real coordinator and worker process and a
//! real (throwaway) PostgreSQL. A file dropped into the folder makes exactly
//! one published run (the reference's segments); a malformed file a failed
//! run in the database, the latest run unchanged; `--every` with nothing new
//! records a skipped run; SIGTERM stops watching. With `--results-root` and
//! parse options, a European export gives the reference and run folders;
//! `--cron "* * * * *"` runs at the next minute boundary.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{bin, latest_run, latest_segments_csv, Proc, REAL, REFERENCE_SEGMENTS};
use rfm_store::testing;

fn worker(url: &str) -> Proc {
    let mut cmd = Command::new(bin("rfm-worker"));
    cmd.args(["--coordinator", url, "--listen", "127.0.0.1:0"])
        .args(["--threads", "1", "--heartbeat-interval", "200ms"]);
    Proc::spawn(cmd)
}

/// A coordinator watching `dir` (poll 200 ms, debounce 1 s) with one worker.
fn watching(dir: &std::path::Path, db: &str, extra: &[&str]) -> (Proc, Proc) {
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "127.0.0.1:0", "--database-url", db])
        .arg("--watch")
        .arg(dir)
        .args(["--poll-interval", "200ms", "--debounce", "1s"])
        .args(extra)
        .env_remove("DATABASE_URL")
        .env_remove("RFM_DATABASE_URL");
    let coordinator = Proc::spawn(cmd);
    let url = coordinator.coordinator_url();
    let worker = worker(&url);
    coordinator.wait_for("registered at", 1, Duration::from_secs(20));
    (coordinator, worker)
}

/// The runs in the database, oldest first: (run id, status, error).
fn runs(db: &str) -> Vec<(String, String, Option<String>)> {
    let mut store = rfm_store::Store::connect(db).expect("connect");
    store
        .client()
        .query(
            "SELECT run_id, status, error FROM rfm_runs ORDER BY id",
            &[],
        )
        .expect("runs")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// Waits until `n` runs have ended; returns them.
fn wait_for_runs(db: &str, n: usize, coordinator: &Proc) -> Vec<(String, String, Option<String>)> {
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        let runs = runs(db);
        if runs.len() >= n && runs.iter().all(|r| r.1 != "running") {
            return runs;
        }
        assert!(
            Instant::now() < end,
            "{runs:?}\ncoordinator:\n{}",
            coordinator.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_dropped_file_is_published_once_and_a_malformed_one_recorded_failed() {
    let db = testing::database();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    let (mut coordinator, _worker) = watching(&dir, &db.url, &[]);
    coordinator.wait_for("watching", 1, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(2));
    assert!(runs(&db.url).is_empty(), "an empty folder runs nothing");

    std::fs::copy(REAL, dir.join("online_retail.csv")).unwrap();
    let published = wait_for_runs(&db.url, 1, &coordinator);
    assert_eq!(published[0].1, "published", "{published:?}");
    let (latest, _, customers) = latest_run(&db.url);
    assert_eq!(
        (latest.as_str(), customers),
        (published[0].0.as_str(), 4338)
    );
    let reference = std::fs::read_to_string(REFERENCE_SEGMENTS).expect("reference segments");
    assert_eq!(latest_segments_csv(&db.url), reference);
    // Exactly one run for the one change.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(runs(&db.url).len(), 1, "{}", coordinator.stderr());

    // A header without Quantity: a failed run with the reason; latest unchanged.
    std::fs::write(
        dir.join("broken.csv"),
        "InvoiceNo,StockCode,Description,InvoiceDate,UnitPrice,CustomerID,Country\n\
         536365,85123A,X,12/1/2010 8:26,2.55,17850,United Kingdom\n",
    )
    .unwrap();
    let all = wait_for_runs(&db.url, 2, &coordinator);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1].1, "failed");
    let error = all[1].2.clone().unwrap_or_default();
    assert!(
        error.contains("broken.csv") && error.contains("quantity"),
        "{error}"
    );
    assert_eq!(latest_run(&db.url).0, published[0].0);
    assert_eq!(latest_segments_csv(&db.url), reference);

    let log = coordinator.stderr();
    for line in [
        "change seen",
        "started",
        "succeeded: 4338 customers",
        "failed at header",
    ] {
        assert!(log.contains(line), "{line:?} missing from\n{log}");
    }
    coordinator.signal("-TERM");
    assert!(coordinator.wait_exit(Duration::from_secs(30)).success());
    assert!(coordinator.stderr().contains("stopped watching"));
}

#[test]
fn every_period_with_nothing_new_records_a_skipped_run() {
    let db = testing::database();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(REAL, dir.join("online_retail.csv")).unwrap();
    let (coordinator, _worker) = watching(&dir, &db.url, &["--every", "4s"]);
    let all = wait_for_runs(&db.url, 2, &coordinator);
    assert_eq!(all[0].1, "published", "{all:?}");
    assert_eq!(
        (all[1].1.as_str(), all[1].2.as_deref()),
        ("skipped", Some("no new or changed files"))
    );
    // The views read published runs only.
    assert_eq!(
        latest_run(&db.url),
        (all[0].0.clone(), "published".into(), 4338)
    );
    assert!(coordinator
        .stderr()
        .contains("skipped: no new or changed files"));
}

/// The UCI file as a European export: `;` between fields, `,` as the
/// decimal mark of UnitPrice.
fn european_copy(to: &std::path::Path) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(REAL)
        .expect("the UCI file");
    let mut writer = csv::WriterBuilder::new()
        .delimiter(b';')
        .from_path(to)
        .expect("the European copy");
    for (i, record) in reader.records().enumerate() {
        let record = record.expect("a record");
        let fields: Vec<String> = record
            .iter()
            .enumerate()
            .map(|(c, f)| {
                if i > 0 && c == 5 {
                    f.replace('.', ",")
                } else {
                    f.to_string()
                }
            })
            .collect();
        writer.write_record(&fields).expect("write");
    }
    writer.flush().expect("flush");
}

#[test]
fn run_folders_under_the_results_root_with_the_parse_options_given() {
    let db = testing::database();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    let root = tmp.path().join("runs");
    std::fs::create_dir(&dir).unwrap();
    european_copy(&dir.join("online_retail.csv"));
    let root_arg = root.to_str().unwrap();
    let (coordinator, _worker) = watching(
        &dir,
        &db.url,
        &[
            "--every",
            "4s",
            "--results-root",
            root_arg,
            "--delimiter",
            ";",
            "--decimal-comma",
        ],
    );
    let all = wait_for_runs(&db.url, 2, &coordinator);
    assert_eq!(all[0].1, "published", "{all:?}\n{}", coordinator.stderr());
    assert_eq!(all[1].1, "skipped", "{all:?}");

    // The published run's folder: the reference's segments, as `rfm run` writes them.
    let published = root.join(&all[0].0);
    let reference = std::fs::read_to_string(REFERENCE_SEGMENTS).expect("reference segments");
    assert_eq!(
        std::fs::read_to_string(published.join("segments.csv")).unwrap(),
        reference
    );
    let customers = std::fs::read_to_string(published.join("customers.csv")).unwrap();
    assert_eq!(customers.lines().count(), 4338 + 1);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(published.join("run.json")).unwrap()).unwrap();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["customers"], 4338);
    assert_eq!(report["options"]["delimiter"], ";", "{report}");

    // The skipped run: its run.json alone, with the reason.
    let skipped = root.join(&all[1].0);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(skipped.join("run.json")).unwrap()).unwrap();
    assert_eq!(report["status"], "skipped");
    assert_eq!(report["error"], "no new or changed files");
    assert!(!skipped.join("customers.csv").exists());

    // `rfm segments` reads the latest run there.
    let out = Command::new(bin("rfm"))
        .args(["segments", "--results-root", root_arg])
        .env_remove("RFM_RESULTS_ROOT")
        .output()
        .expect("rfm segments");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Champions"), "{text}");
}

/// Seconds since the epoch, now.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn cron_every_minute_starts_a_run_at_the_next_minute_boundary() {
    let db = testing::database();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(REAL, dir.join("online_retail.csv")).unwrap();
    let (coordinator, _worker) = watching(&dir, &db.url, &["--cron", "* * * * *"]);
    coordinator.wait_for("at cron '* * * * *' (UTC)", 1, Duration::from_secs(20));
    let watching_since = unix_now();
    let boundary = (watching_since / 60.0).floor() * 60.0 + 60.0;
    let all = wait_for_runs(&db.url, 1, &coordinator);
    assert_eq!(all[0].1, "published", "{all:?}\n{}", coordinator.stderr());
    let mut store = rfm_store::Store::connect(&db.url).expect("connect");
    let started: f64 = store
        .client()
        .query_one(
            "SELECT extract(epoch FROM started_at)::float8 FROM rfm_runs WHERE run_id = $1",
            &[&all[0].0],
        )
        .expect("the run's start")
        .get(0);
    // Not before the boundary (nothing runs on start with a schedule), and
    // at it: the run's report is made within seconds of the timer.
    assert!(
        started >= boundary - 1.0 && started < boundary + 10.0,
        "watching since {watching_since}, boundary {boundary}, run started {started}\n{}",
        coordinator.stderr()
    );
    assert!(
        coordinator.stderr().contains("started (1 added)"),
        "{}",
        coordinator.stderr()
    );
}
