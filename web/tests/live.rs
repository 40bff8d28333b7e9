//! The Live page against a real coordinator and worker (the workspace's
//! `rfm-coordinator`, `rfm-worker` and `rfm` binaries as processes on
//! loopback): `/api/live` and the server-sent events list the worker, and
//! the job of the real UCI file submitted with `rfm submit` shows with its
//! lines, tasks and the memory its result holds, in the snapshot, on the
//! page as served and as its script redraws it in headless Chromium;
//! without `--coordinator` the page says what to pass.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::browser::Browser;
use crate::common::{self, fixture, Server};

/// A binary of the workspace, built when missing.
fn bin(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_BIN_EXE_rfm-web"))
        .parent()
        .expect("binary dir")
        .to_path_buf();
    let names = ["rfm", "rfm-coordinator", "rfm-worker"];
    if !names.iter().all(|b| dir.join(b).exists()) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .args([
                "build",
                "--quiet",
                "-p",
                "rfm-cli",
                "-p",
                "rfm-coordinator",
                "-p",
                "rfm-worker",
            ]);
        if dir.ends_with("release") {
            cmd.arg("--release");
        }
        assert!(
            cmd.status().expect("cargo build").success(),
            "cargo build failed"
        );
    }
    dir.join(name)
}

/// A process whose stderr goes to a file, killed on drop.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(mut cmd: Command, log: PathBuf) -> Proc {
        let file = std::fs::File::create(&log).expect("log file");
        let child = cmd
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn");
        Proc { child, log }
    }

    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut text = String::new();
            if let Ok(mut f) = std::fs::File::open(&self.log) {
                let _ = f.read_to_string(&mut text);
            }
            if text.contains(needle) {
                return text;
            }
            assert!(Instant::now() < deadline, "no {needle:?} in:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_live_page_follows_the_coordinator() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "127.0.0.1:0"]);
    let coordinator = Proc::spawn(cmd, dir.path().join("coordinator.log"));
    let log = coordinator.wait_for("listening on ");
    let addr = log
        .lines()
        .find_map(|l| l.split("listening on ").nth(1))
        .expect("listening line")
        .trim()
        .to_string();
    let url = format!("http://{addr}");
    let mut cmd = Command::new(bin("rfm-worker"));
    cmd.args([
        "--coordinator",
        &url,
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "1",
    ])
    .args(["--heartbeat-interval", "200ms"]);
    let _worker = Proc::spawn(cmd, dir.path().join("worker.log"));
    coordinator.wait_for("registered at");

    let s = Server::start(&[
        "--results",
        fixture().root.to_str().unwrap(),
        "--coordinator",
        &url,
    ]);
    let (code, snap) = s.json("/api/live");
    assert_eq!(code, 200, "{snap}");
    let workers = snap["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 1, "{snap}");
    assert_eq!(workers[0]["state"], "alive");

    // A job of the real file, then its figures in the snapshot.
    let out = Command::new(bin("rfm"))
        .arg("submit")
        .arg(common::uci_file())
        .args(["--coordinator", &url, "--out"])
        .arg(dir.path().join("out"))
        .output()
        .expect("rfm submit");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, snap) = s.json("/api/live");
    let job = &snap["jobs"][0];
    assert_eq!(job["stage"], "succeeded", "{snap}");
    assert_eq!(job["lines_done"], common::LINES_READ, "{snap}");
    assert_eq!(job["tasks_done"], job["tasks_total"]);
    assert!(job["tasks_total"].as_u64().unwrap() >= 1);
    // The memory its result holds in the coordinator: 4,372 customers'
    // rows, about 0.5 MiB.
    let held = job["result_bytes"].as_u64().expect("result_bytes");
    assert!((200 << 10..2 << 20).contains(&held), "{snap}");

    // The page shows it, and the event stream sends snapshots.
    let page = s.get("/live").text();
    assert!(
        page.contains("id=\"live\"") && page.contains(">succeeded<"),
        "{page}"
    );
    let shown = rfm_proto::size::approx(held);
    assert!(
        page.contains(">Result</th>") && page.contains(&format!(">{shown}</td>")),
        "{shown} not on the page: {page}"
    );
    // In a browser, the page's script refills the tables from the event
    // stream: the same row, the result's size in its column.
    let b = Browser::start();
    b.go(&s.url("/live"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.attribute("#live", "data-updated").is_none() {
        assert!(Instant::now() < deadline, "no event applied to the page");
        std::thread::sleep(Duration::from_millis(100));
    }
    let cells = b.texts("#live-jobs tbody tr:first-child > *");
    assert_eq!(cells.len(), 10, "{cells:?}");
    assert_eq!(cells[1], "succeeded", "{cells:?}");
    assert_eq!(cells[8], shown, "the Result column: {cells:?}");
    let workers = b.texts("#live-workers tbody tr");
    assert!(
        workers.len() == 1 && workers[0].contains("alive"),
        "{workers:?}"
    );
    drop(b);
    let events = crate::common::first_event(&s.addr, "/live/events");
    let v: serde_json::Value = serde_json::from_str(&events).expect("event JSON");
    assert_eq!(v["workers"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["jobs"][0]["lines_done"], common::LINES_READ);

    // Without --coordinator: a page that says what to pass, a 404 API.
    let plain = Server::start(&["--results", fixture().root.to_str().unwrap()]);
    assert!(plain.get("/live").text().contains("--coordinator"));
    assert_eq!(plain.get("/api/live").status, 404);
}
