//! `rfm-coordinator --database-url`: real coordinator and worker processes on
//! loopback and a real (throwaway) PostgreSQL; `rfm submit` of the real UCI
//! file is published, and the latest segments equal the reference's.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{
    bin, latest_run, latest_segments_csv, only_failed_report, Proc, REAL, REFERENCE_SEGMENTS,
};
use rfm_store::testing;

fn worker(url: &str) -> Proc {
    let mut cmd = Command::new(bin("rfm-worker"));
    cmd.args(["--coordinator", url, "--listen", "127.0.0.1:0"])
        .args(["--threads", "1", "--heartbeat-interval", "200ms"]);
    Proc::spawn(cmd)
}

fn submit(url: &str, input: &std::path::Path, out: &std::path::Path) -> Proc {
    let mut cmd = Command::new(bin("rfm"));
    cmd.arg("submit")
        .arg(input)
        .args(["--coordinator", url, "--chunk-size", "8MiB", "--out"])
        .arg(out);
    Proc::spawn(cmd)
}

fn run_id_of(dir: &std::path::Path) -> String {
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).expect("run.json"))
            .expect("run.json is JSON");
    report["run_id"].as_str().expect("run_id").to_string()
}

#[test]
fn submitted_jobs_are_published_and_failed_jobs_recorded() {
    let db = testing::database();
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "127.0.0.1:0", "--database-url", &db.url])
        .env_remove("DATABASE_URL")
        .env_remove("RFM_DATABASE_URL");
    let coordinator = Proc::spawn(cmd);
    let url = coordinator.coordinator_url();
    let _workers = [worker(&url), worker(&url)];
    coordinator.wait_for("registered at", 2, Duration::from_secs(20));

    let out = tmp.path().join("uci");
    let mut client = submit(&url, std::path::Path::new(REAL), &out);
    let status = client.wait_exit(Duration::from_secs(180));
    assert!(status.success(), "rfm submit: {}", client.stderr());
    let run_id = run_id_of(&out);
    assert!(
        client
            .stdout()
            .contains(&format!("published: run {run_id} to host 127.0.0.1")),
        "{}",
        client.stdout()
    );

    let (latest, state, customers) = latest_run(&db.url);
    assert_eq!(
        (latest.as_str(), state.as_str(), customers),
        (run_id.as_str(), "published", 4338)
    );
    let reference = std::fs::read_to_string(REFERENCE_SEGMENTS).expect("reference segments");
    assert_eq!(latest_segments_csv(&db.url), reference);
    assert_eq!(
        std::fs::read_to_string(out.join("segments.csv")).unwrap(),
        reference
    );

    // A job over the malformed limit is recorded failed; the latest run stays.
    let bad = tmp.path().join("bad.csv");
    testing::write_csv_over_the_malformed_limit(&bad);
    let bad_out = tmp.path().join("bad");
    let mut client = submit(&url, &bad, &bad_out);
    let status = client.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(3), "{}", client.stderr());
    let failed_id = run_id_of(&bad_out);
    let mut store = rfm_store::Store::connect(&db.url).unwrap();
    let row = store
        .client()
        .query_one(
            "SELECT status, malformed, error FROM rfm_runs WHERE run_id = $1",
            &[&failed_id],
        )
        .expect("the failed run is recorded");
    let (status, malformed, error): (String, i64, Option<String>) =
        (row.get(0), row.get(1), row.get(2));
    assert_eq!((status.as_str(), malformed), ("failed", 1));
    assert!(error.unwrap_or_default().contains("malformed"));
    assert_eq!(latest_run(&db.url).0, run_id);
}

#[test]
fn a_load_cut_off_fails_the_run_keeps_the_files_and_the_coordinator_recovers() {
    let db = testing::database();
    let tmp = tempfile::tempdir().unwrap();
    let extract = std::path::Path::new(REAL).with_file_name("online_retail_ii_2009-12_extract.csv");
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "127.0.0.1:0"])
        .env_remove("RFM_DATABASE_URL")
        .env("DATABASE_URL", &db.url);
    let coordinator = Proc::spawn(cmd);
    let url = coordinator.coordinator_url();
    let _workers = [worker(&url), worker(&url)];
    coordinator.wait_for("registered at", 2, Duration::from_secs(20));

    let out_a = tmp.path().join("a");
    let mut client = submit(&url, &extract, &out_a);
    assert!(
        client.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        client.stderr()
    );
    let run_a = run_id_of(&out_a);

    // The next load waits on a lock; its connection is then terminated.
    let mut locker = db.client();
    let mut lock = locker.transaction().unwrap();
    lock.batch_execute("LOCK TABLE rfm_customers IN SHARE MODE")
        .unwrap();
    let out_b = tmp.path().join("b");
    let mut client = submit(&url, std::path::Path::new(REAL), &out_b);
    let killed = db.terminate_copy_waiting_on_lock(Duration::from_secs(120));
    lock.rollback().unwrap();
    assert!(killed, "the load was never seen waiting");
    let status = client.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(6), "{}", client.stderr());
    let err = client.stderr();
    assert!(
        err.contains("not published") && err.contains("loading customers"),
        "{err}"
    );
    for f in ["customers.csv", "segments.csv", "run.json"] {
        assert!(
            out_b.join(f).exists(),
            "{f} is written though publishing failed"
        );
    }
    // The results kept are whole: the reference segments, and the header
    // and one line per customer of customers.csv as the coordinator sent it.
    assert_eq!(
        std::fs::read(out_b.join("segments.csv")).unwrap(),
        std::fs::read(REFERENCE_SEGMENTS).unwrap()
    );
    let customers = std::fs::read_to_string(out_b.join("customers.csv")).unwrap();
    assert!(customers.starts_with("customer_id,recency,frequency,monetary,"));
    assert_eq!(customers.lines().count(), 4_338 + 1);
    // Beside them, the failed report, and nothing else beside the folders.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_b.join("run.json")).unwrap()).unwrap();
    assert_eq!(report["status"], "failed", "{report}");
    assert!(
        report["error"]
            .as_str()
            .is_some_and(|e| e.contains("not published")),
        "{report}"
    );
    let mut beside: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(beside, ["a", "b"], "no staging folder left");
    let run_b = run_id_of(&out_b);
    let mut store = rfm_store::Store::connect(&db.url).unwrap();
    let status_of = |store: &mut rfm_store::Store, id: &str| -> String {
        store
            .client()
            .query_one("SELECT status FROM rfm_runs WHERE run_id = $1", &[&id])
            .unwrap()
            .get(0)
    };
    assert_eq!(status_of(&mut store, &run_b), "failed");
    assert_eq!(latest_run(&db.url).0, run_a);

    // The coordinator reconnects: the next run is published.
    let out_c = tmp.path().join("c");
    let mut client = submit(&url, &extract, &out_c);
    assert!(
        client.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        client.stderr()
    );
    let run_c = run_id_of(&out_c);
    assert_eq!(status_of(&mut store, &run_c), "published");
    assert_eq!(latest_run(&db.url).0, run_c);

    // The database is gone when a job is submitted: refused at once with the
    // database exit code, nothing computed; the folder holds the failed
    // run.json alone.
    drop(store);
    db.cut_off();
    let out_d = tmp.path().join("d");
    let mut client = submit(&url, &extract, &out_d);
    let status = client.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(6), "{}", client.stderr());
    assert!(
        client.stderr().contains("run database"),
        "{}",
        client.stderr()
    );
    let report = only_failed_report(&out_d, &client.stderr());
    assert_eq!(report["stage"], "database", "{report}");
    db.reopen();
}

#[test]
fn an_unreachable_database_stops_the_coordinator_at_start_with_exit_6() {
    let port = testing::unused_port();
    let started = Instant::now();
    let mut cmd = Command::new(bin("rfm-coordinator"));
    // An unreachable server is tried again for --database-wait (60 s by
    // default); 3 s here: two more tries, then exit 6.
    cmd.args(["--listen", "127.0.0.1:0", "--database-wait", "3s"])
        .env_remove("DATABASE_URL")
        .env(
            "RFM_DATABASE_URL",
            format!("postgresql://rfm:secret@127.0.0.1:{port}/rfm"),
        );
    let mut coordinator = Proc::spawn(cmd);
    let status = coordinator.wait_exit(Duration::from_secs(15));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(status.code(), Some(6), "{}", coordinator.stderr());
    let err = coordinator.stderr();
    assert!(
        err.contains("127.0.0.1") && err.contains(&port.to_string()),
        "{err}"
    );
    assert!(
        err.contains("trying again"),
        "an unreachable server is tried again: {err}"
    );
    assert!(!err.contains("secret"), "{err}");
    assert!(!err.contains("listening on"), "{err}");
}

#[test]
fn the_coordinator_publishes_over_verify_full_and_a_wrong_ca_stops_it_with_exit_6() {
    let server = testing::tls_server();
    let db = server.database();
    let tmp = tempfile::tempdir().unwrap();
    let url_with = |ca: &std::path::Path| {
        format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            db.url,
            ca.display()
        )
    };
    let database_url = url_with(server.ca_file());
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "127.0.0.1:0"])
        .env_remove("DATABASE_URL")
        .env("RFM_DATABASE_URL", &database_url);
    let coordinator = Proc::spawn(cmd);
    let url = coordinator.coordinator_url();
    let _worker = worker(&url);
    coordinator.wait_for("registered at", 1, Duration::from_secs(20));
    let out = tmp.path().join("extract");
    let input = std::path::Path::new(REAL).with_file_name("online_retail_ii_2009-12_extract.csv");
    let mut client = submit(&url, &input, &out);
    let status = client.wait_exit(Duration::from_secs(120));
    assert!(status.success(), "rfm submit: {}", client.stderr());
    let run_id = run_id_of(&out);
    assert!(
        client
            .stdout()
            .contains(&format!("published: run {run_id} to host localhost")),
        "{}",
        client.stdout()
    );
    let (latest, state, _) = latest_run(&database_url);
    assert_eq!(
        (latest.as_str(), state.as_str()),
        (run_id.as_str(), "published")
    );
    let encrypted: i64 = db
        .admin_client()
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.datname = $1 AND a.application_name = 'rfm' AND s.ssl",
            &[&db.name()],
        )
        .unwrap()
        .get(0);
    assert!(encrypted >= 1, "the coordinator's sessions use TLS");

    // A CA that did not sign the server's certificate: exit 6 at start, at
    // once (a setting to fix, not a server still starting: no retry).
    let other_ca = tmp.path().join("other-ca.pem");
    testing::TestPki::new(&["localhost"]).write_ca(&other_ca);
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "127.0.0.1:0"])
        .env_remove("DATABASE_URL")
        .env("RFM_DATABASE_URL", url_with(&other_ca));
    let mut refused = Proc::spawn(cmd);
    let status = refused.wait_exit(Duration::from_secs(15));
    let err = refused.stderr();
    assert_eq!(status.code(), Some(6), "{err}");
    assert!(
        err.contains("host localhost")
            && err.contains(&format!(
                "not accepted by sslrootcert={}",
                other_ca.display()
            )),
        "{err}"
    );
    assert!(!err.contains("trying again"), "{err}");
    assert!(!err.contains("listening on"), "{err}");
}

/// `url` (postgresql://USER@HOST:PORT/DB…) and its HOST:PORT, with HOST:PORT
/// replaced by `addr`.
fn redirected(url: &str, addr: std::net::SocketAddr) -> (String, std::net::SocketAddr) {
    let at = url.find('@').expect("a URL with a user") + 1;
    let end = at + url[at..].find('/').expect("a URL with a database");
    let upstream = url[at..end]
        .replace("localhost", "127.0.0.1")
        .parse()
        .expect("HOST:PORT");
    (format!("{}{addr}{}", &url[..at], &url[end..]), upstream)
}

/// A free loopback port (nothing listens on it once this returns).
fn free_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[test]
fn the_coordinator_waits_for_a_database_that_starts_after_it() {
    let db = testing::database();
    let addr = free_port();
    let (url, upstream) = redirected(&db.url, addr);
    let coordinator = |wait: &str| {
        let mut cmd = Command::new(bin("rfm-coordinator"));
        cmd.args(["--listen", "127.0.0.1:0", "--database-url", &url])
            .args(["--database-wait", wait])
            .env_remove("DATABASE_URL")
            .env_remove("RFM_DATABASE_URL");
        Proc::spawn(cmd)
    };

    // Nothing listens and no wait: the coordinator gives up at once (exit 6).
    let mut impatient = coordinator("0s");
    let started = Instant::now();
    let status = impatient.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(6), "{}", impatient.stderr());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        impatient.stderr().contains("cannot use the run database"),
        "{}",
        impatient.stderr()
    );

    // The database's port opens 3 s after the coordinator started (as
    // PostgreSQL starting after it under docker-compose): it keeps trying,
    // then connects and serves.
    let patient = coordinator("60s");
    patient.wait_for("trying again", 1, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(3));
    let _postgres = crate::support::proxy::Proxy::start(addr, upstream, Duration::ZERO, None, None);
    patient.wait_for("publishing runs to", 1, Duration::from_secs(30));
    let url = patient.coordinator_url();
    let health = Command::new(bin("rfm"))
        .args(["health", &url])
        .output()
        .unwrap();
    assert!(
        health.status.success(),
        "{}",
        String::from_utf8_lossy(&health.stderr)
    );
}
