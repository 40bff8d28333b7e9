//! `rfm run --database-url`, `rfm runs` and `rfm diff` against a real
//! PostgreSQL server (a throwaway one unless RFM_TEST_DATABASE_URL or DATABASE_URL says otherwise).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rfm_store::testing;

fn real_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/real")
        .join(name)
}

fn rfm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rfm"))
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run rfm")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run_id_of(dir: &Path) -> String {
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).expect("run.json"))
            .expect("json");
    report["run_id"].as_str().expect("run_id").to_string()
}

/// The run ids of two run folders, newest first: by start time, then by
/// run id (the one order of rfm-runs).
fn newest_first(dirs: &[&Path; 2]) -> (String, String) {
    let key = |dir: &Path| {
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
        let started = report["started_at"].as_str().unwrap().to_string();
        (started, run_id_of(dir))
    };
    let (x, y) = (key(dirs[0]), key(dirs[1]));
    let (newer, older) = if x > y { (x, y) } else { (y, x) };
    (newer.1, older.1)
}

#[test]
fn run_publishes_and_runs_and_diff_show_it() {
    let db = testing::database();
    let tmp = tempfile::tempdir().unwrap();
    let out_a = tmp.path().join("a");
    let out_b = tmp.path().join("b");
    let extract = real_data("online_retail_ii_2009-12_extract.csv");
    let uci = real_data("online_retail.csv");

    let o = rfm(&[
        "run",
        extract.to_str().unwrap(),
        "--out",
        out_a.to_str().unwrap(),
        "-q",
        "--database-url",
        &db.url,
    ]);
    assert!(o.status.success(), "rfm run: {}", text(&o.stderr));
    // DATABASE_URL from the environment works as well.
    let o = Command::new(env!("CARGO_BIN_EXE_rfm"))
        .args([
            "run",
            uci.to_str().unwrap(),
            "--out",
            out_b.to_str().unwrap(),
        ])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(o.status.success(), "rfm run: {}", text(&o.stderr));
    let (a, b) = (run_id_of(&out_a), run_id_of(&out_b));
    // It says where it published, as `rfm submit` does.
    let said = text(&o.stdout);
    assert!(
        said.contains(&format!("published: run {b} to host ")),
        "{said}"
    );

    let o = rfm(&["runs", "--database-url", &db.url]);
    assert!(o.status.success(), "rfm runs: {}", text(&o.stderr));
    let listing = text(&o.stdout);
    let line_of = |id: &str| listing.lines().find(|l| l.contains(id)).map(str::to_string);
    // The latest run started last (the same second: the greater run id).
    let (latest, other) = newest_first(&[&out_a, &out_b]);
    let line_latest = line_of(&latest).expect("latest run listed");
    assert!(
        line_latest.starts_with('*') && line_latest.contains("published"),
        "{listing}"
    );
    let line_other = line_of(&other).expect("other run listed");
    assert!(
        !line_other.starts_with('*') && line_other.contains("published"),
        "{listing}"
    );
    assert!(line_of(&b).unwrap().contains("4,338"), "{listing}");

    let o = rfm(&["runs", "--json", "--database-url", &db.url]);
    let runs: serde_json::Value = serde_json::from_slice(&o.stdout).expect("runs --json");
    assert_eq!(runs.as_array().map(Vec::len), Some(2));

    // The latest segments equal the segments.csv the run wrote.
    let csv = testing::latest_segments_csv(&db.url);
    assert_eq!(
        csv,
        std::fs::read_to_string(out_b.join("segments.csv")).unwrap()
    );

    let o = rfm(&["diff", &a, &b, "--database-url", &db.url]);
    assert!(o.status.success(), "rfm diff: {}", text(&o.stderr));
    let shown = text(&o.stdout);
    assert!(
        shown.contains("(new)") && shown.contains("Champions"),
        "{shown}"
    );
    let o = rfm(&["diff", &a, "no-such-run", "--database-url", &db.url]);
    assert_eq!(o.status.code(), Some(6));
    assert!(text(&o.stderr).contains("no-such-run"));

    // Without a database, the run folders give the same history and movement.
    let root = tmp.path().to_str().unwrap();
    let json = |args: &[&str]| -> serde_json::Value {
        let o = Command::new(env!("CARGO_BIN_EXE_rfm"))
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("RFM_DATABASE_URL")
            .output()
            .unwrap();
        assert!(o.status.success(), "rfm {args:?}: {}", text(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let local = json(&["runs", "--results-root", root, "--json"]);
    let ids: Vec<&str> = local
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [latest.as_str(), other.as_str()], "newest first");
    assert_eq!(local[0]["latest"], true);
    assert_eq!(local[1]["latest"], false);
    let listed_b = local
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run_id"] == b.as_str());
    assert_eq!(listed_b.unwrap()["customers"], 4338);
    let from_db = json(&["diff", &a, &b, "--json", "--database-url", &db.url]);
    let from_files = json(&["diff", &a, &b, "--json", "--results-root", root]);
    assert_eq!(from_files, from_db);
    let total: i64 = from_files
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m["to"].is_null())
        .map(|m| m["customers"].as_i64().unwrap())
        .sum();
    assert_eq!(
        total, 4338,
        "every customer of the later run is in one group"
    );
}

#[test]
fn an_unreachable_database_fails_fast_with_exit_6_before_computing() {
    let port = testing::unused_port();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("postgresql://rfm:secret@127.0.0.1:{port}/rfm");
    let uci = real_data("online_retail.csv");
    let started = Instant::now();
    let o = rfm(&[
        "run",
        uci.to_str().unwrap(),
        "--out",
        tmp.path().to_str().unwrap(),
        "--database-url",
        &url,
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(o.status.code(), Some(6), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("127.0.0.1") && err.contains(&port.to_string()),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
    assert!(
        !tmp.path().join("customers.csv").exists(),
        "nothing is computed"
    );
    let o = rfm(&["runs", "--database-url", &url]);
    assert_eq!(o.status.code(), Some(6));
}

#[test]
fn run_publishes_over_verify_full_and_tls_failures_exit_6_before_computing() {
    let server = testing::tls_server();
    let db = server.database();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let extract = real_data("online_retail_ii_2009-12_extract.csv");
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        db.url,
        server.ca_file().display()
    );
    let o = rfm(&[
        "run",
        extract.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--database-url",
        &url,
    ]);
    assert!(o.status.success(), "rfm run: {}", text(&o.stderr));
    let id = run_id_of(&out);
    assert!(
        text(&o.stdout).contains(&format!("published: run {id} to host localhost")),
        "{}",
        text(&o.stdout)
    );
    let customers_file = std::fs::read_to_string(out.join("customers.csv")).unwrap();
    let published: i64 = db
        .client()
        .query_one("SELECT count(*) FROM rfm_latest_customers", &[])
        .unwrap()
        .get(0);
    assert_eq!(published as usize, customers_file.lines().count() - 1);
    let o = rfm(&["runs", "--database-url", &url]);
    assert!(o.status.success(), "rfm runs: {}", text(&o.stderr));
    assert!(text(&o.stdout).contains(&id), "{}", text(&o.stdout));

    // A CA that did not sign the server's certificate; verify-full without
    // any CA (no ~/.postgresql/root.crt either): exit 6, nothing computed.
    let other_ca = tmp.path().join("other-ca.pem");
    testing::TestPki::new(&["localhost"]).write_ca(&other_ca);
    let home = tempfile::tempdir().unwrap();
    for (params, says) in [
        (
            format!("sslmode=verify-full&sslrootcert={}", other_ca.display()),
            format!("not accepted by sslrootcert={}", other_ca.display()),
        ),
        (
            "sslmode=verify-full".to_string(),
            "add sslrootcert=PATH".to_string(),
        ),
    ] {
        let failed = tmp.path().join("failed");
        let o = Command::new(env!("CARGO_BIN_EXE_rfm"))
            .args([
                "run",
                extract.to_str().unwrap(),
                "--out",
                failed.to_str().unwrap(),
                "--database-url",
                &format!("{}?{params}", db.url),
            ])
            .env_remove("DATABASE_URL")
            .env("HOME", home.path())
            .output()
            .unwrap();
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(6), "{err}");
        assert!(err.contains(&says), "{err}");
        assert!(
            !failed.join("customers.csv").exists(),
            "nothing is computed"
        );
    }
}

#[test]
fn a_run_over_the_malformed_limit_is_recorded_failed() {
    let db = testing::database();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("bad.csv");
    testing::write_csv_over_the_malformed_limit(&input);
    let out = tmp.path().join("out");
    let o = rfm(&[
        "run",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
        "--database-url",
        &db.url,
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let o = rfm(&["runs", "--json", "--database-url", &db.url]);
    let runs: serde_json::Value = serde_json::from_slice(&o.stdout).expect("runs --json");
    let run = &runs[0];
    assert_eq!(run["run_id"], run_id_of(&out).as_str());
    assert_eq!(run["status"], "failed");
    assert_eq!(run["malformed"], 1);
    assert!(
        run["error"].as_str().unwrap_or("").contains("malformed"),
        "{run}"
    );
    assert_eq!(run["latest"], false);
}

#[test]
fn a_database_lost_during_the_load_fails_the_run_but_keeps_its_files() {
    let db = testing::database();
    let tmp = tempfile::tempdir().unwrap();
    let extract = real_data("online_retail_ii_2009-12_extract.csv");
    let uci = real_data("online_retail.csv");
    let out_a = tmp.path().join("a");
    let o = rfm(&[
        "run",
        extract.to_str().unwrap(),
        "--out",
        out_a.to_str().unwrap(),
        "-q",
        "--database-url",
        &db.url,
    ]);
    assert!(o.status.success(), "rfm run: {}", text(&o.stderr));

    // Make the next load wait on a lock, then terminate its connection.
    let mut locker = db.client();
    let mut lock = locker.transaction().unwrap();
    lock.batch_execute("LOCK TABLE rfm_customers IN SHARE MODE")
        .unwrap();
    let out_b = tmp.path().join("b");
    let child = Command::new(env!("CARGO_BIN_EXE_rfm"))
        .args([
            "run",
            uci.to_str().unwrap(),
            "--out",
            out_b.to_str().unwrap(),
            "-q",
            "--database-url",
            &db.url,
        ])
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let killed = db.terminate_copy_waiting_on_lock(Duration::from_secs(60));
    lock.rollback().unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(killed, "the load was never seen waiting");
    assert_eq!(o.status.code(), Some(6), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("not published") && err.contains("loading customers"),
        "{err}"
    );
    for f in ["customers.csv", "segments.csv", "run.json"] {
        assert!(
            out_b.join(f).exists(),
            "{f} is written even though publishing failed"
        );
    }
    let o = rfm(&["runs", "--json", "--database-url", &db.url]);
    let runs: serde_json::Value = serde_json::from_slice(&o.stdout).expect("runs --json");
    let by_id = |id: &str| {
        runs.as_array()
            .unwrap()
            .iter()
            .find(|r| r["run_id"] == id)
            .cloned()
            .unwrap()
    };
    let (a, b) = (by_id(&run_id_of(&out_a)), by_id(&run_id_of(&out_b)));
    assert_eq!(
        (a["status"].as_str(), a["latest"].as_bool()),
        (Some("published"), Some(true))
    );
    assert_eq!(
        (b["status"].as_str(), b["latest"].as_bool()),
        (Some("failed"), Some(false))
    );
}

/// Purchases with prices below the cent: rounded-cent sums differ from exact ones.
fn sub_cent_csv(customers: u32, shift: u32) -> String {
    let prices = ["0.005", "0.125", "0.0625", "0.375"];
    let mut csv = String::from(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n",
    );
    for c in 0..customers {
        for v in 0..1 + (c * 7 + shift) % 5 {
            let price = prices[((c + v * 3 + shift) % 4) as usize];
            csv.push_str(&format!(
                "{c}{v},A,x,{},2011-02-{:02} 10:00:00,{price},{},UK\n",
                1 + (c + v + shift) % 3,
                1 + (c * 3 + v * 5 + shift) % 28,
                12000 + c
            ));
        }
    }
    csv
}

#[test]
fn diff_from_folders_equals_diff_from_postgres_with_sub_cent_prices() {
    let db = testing::database();
    let tmp = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for (name, customers, shift) in [("a", 60, 0), ("b", 75, 2)] {
        let input = tmp.path().join(format!("{name}.csv"));
        std::fs::write(&input, sub_cent_csv(customers, shift)).unwrap();
        let out = tmp.path().join("runs").join(name);
        let o = rfm(&[
            "run",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
            "--database-url",
            &db.url,
        ]);
        assert!(o.status.success(), "rfm run: {}", text(&o.stderr));
        ids.push(run_id_of(&out));
    }
    let root = tmp.path().join("runs");
    let diff = |from: &[&str]| -> serde_json::Value {
        let mut args = vec!["diff", &ids[0], &ids[1], "--json"];
        args.extend_from_slice(from);
        let o = rfm(&args);
        assert!(o.status.success(), "rfm diff: {}", text(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let from_db = diff(&["--database-url", &db.url]);
    let from_files = diff(&["--results-root", root.to_str().unwrap()]);
    assert_eq!(from_files, from_db);
}

#[test]
fn run_publishes_through_its_embedded_coordinator_under_its_lease() {
    let db = testing::database();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let extract = real_data("online_retail_ii_2009-12_extract.csv");
    let child = Command::new(env!("CARGO_BIN_EXE_rfm"))
        .args([
            "run",
            extract.to_str().unwrap(),
            "-q",
            "--database-url",
            &db.url,
        ])
        .arg("--out")
        .arg(&out)
        .env_remove("DATABASE_URL")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "rfm run: {}", text(&o.stderr));
    let row = db
        .client()
        .query_one(
            "SELECT status, owner_kind, owner_pid FROM rfm_runs WHERE run_id = $1",
            &[&run_id_of(&out)],
        )
        .unwrap();
    let (status, kind, owner_pid): (String, String, i32) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(status, "published");
    assert_eq!(
        (kind.as_str(), owner_pid),
        ("rfm-coordinator", pid),
        "the run's owner is the coordinator embedded in this rfm run"
    );
}
