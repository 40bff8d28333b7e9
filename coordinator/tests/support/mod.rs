//! Shared helpers of the process-level tests: the workspace's binaries, child
//! processes with collected output, and the published segments read back from
//! PostgreSQL as the text of a `segments.csv`.

#![allow(dead_code)]

pub mod netns;
pub mod proxy;
pub mod reference;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

pub const REAL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/real/online_retail.csv"
);
pub const REFERENCE_SEGMENTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../core/tests/data/reference/online_retail.segments.csv"
);

/// One test at a time within a module that measures time or load: they
/// share two cores (nextest runs these modules in its `cluster` group).
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Path of a binary of the workspace; `rfm` and `rfm-worker` are built once
/// when a single-package run has not built them.
pub fn bin(name: &str) -> PathBuf {
    let coordinator = PathBuf::from(env!("CARGO_BIN_EXE_rfm-coordinator"));
    if name == "rfm-coordinator" {
        return coordinator;
    }
    static BUILD: Once = Once::new();
    let dir = coordinator.parent().expect("binary dir").to_path_buf();
    if ["rfm", "rfm-worker"].iter().all(|b| dir.join(b).exists()) {
        return dir.join(name);
    }
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .args(["build", "--quiet", "-p", "rfm-worker", "-p", "rfm-cli"])
            .args(["--features", "rfm-worker/task-delay"]);
        if dir.ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(
            status.success(),
            "cargo build -p rfm-worker -p rfm-cli failed"
        );
    });
    dir.join(name)
}

/// Makes every task of the worker `cmd` starts (or of the embedded worker of
/// its `rfm run`) wait `ms` before computing: the test knob of a build with
/// rfm-worker's `task-delay` feature, which this package's tests enable (a
/// release build ignores it).
pub fn task_delay(mut cmd: Command, ms: u64) -> Command {
    cmd.env(rfm_worker::TASK_DELAY_ENV, ms.to_string());
    cmd
}

/// Checks that `worker`, started with a [`task_delay`] above zero, honours
/// it: a binary built without the `task-delay` feature (by `cargo build`)
/// would run its tasks at full speed and the test would not test what it says.
pub fn assert_task_delay(worker: &Proc) {
    let needle = "test build: every task waits";
    let start = Instant::now();
    while !worker.stderr().contains(needle) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the rfm-worker binary ignores {}: build it for the tests with \
             `cargo build -p rfm-worker --features task-delay` (or run \
             `cargo nextest run --workspace`); stderr:\n{}",
            rfm_worker::TASK_DELAY_ENV,
            worker.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process whose stdout and stderr are collected; killed on drop.
pub struct Proc {
    pub child: Child,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

fn collect(stream: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut s = into.lock().unwrap_or_else(|e| e.into_inner());
            s.push_str(&line);
            s.push('\n');
        }
    });
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().expect("spawn a binary");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        collect(child.stderr.take().expect("stderr"), stderr.clone());
        collect(child.stdout.take().expect("stdout"), stdout.clone());
        Proc {
            child,
            stderr,
            stdout,
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn stdout(&self) -> String {
        self.stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until stderr holds `needle` `count` times.
    pub fn wait_for(&self, needle: &str, count: usize, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let s = self.stderr();
            if s.matches(needle).count() >= count {
                return s;
            }
            assert!(
                start.elapsed() < timeout,
                "no {count}x {needle:?} within {timeout:?}; stderr:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                std::thread::sleep(Duration::from_millis(50)); // let the readers drain
                return status;
            }
            assert!(
                start.elapsed() < timeout,
                "still running after {timeout:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The coordinator's URL from its "listening on ADDR" line.
    pub fn coordinator_url(&self) -> String {
        let log = self.wait_for("listening on ", 1, Duration::from_secs(20));
        let addr = log
            .lines()
            .find_map(|l| l.split("listening on ").nth(1))
            .expect("listening line")
            .trim()
            .to_string();
        format!("http://{addr}")
    }
}

impl Proc {
    /// Sends a signal (`-STOP`, `-CONT`, …) with kill(1).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill {sig} failed");
    }

    /// SIGKILL, and waits for the process to end.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A stopped child is continued first so that it can be killed and reaped.
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub use rfm_store::testing::latest_segments_csv;

/// A process's resident set (`VmRSS`), in bytes.
pub fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("a VmRSS line");
    kb * 1024
}

/// The report of a failed run in `out`, which holds nothing else (`why`
/// is shown when either is not so).
pub fn only_failed_report(out: &std::path::Path, why: &str) -> serde_json::Value {
    let names: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["run.json"], "only the failed report: {why}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(report["status"], "failed", "{report}: {why}");
    report
}

/// The latest published run: (run id, status, customers).
pub fn latest_run(url: &str) -> (String, String, i64) {
    let mut store = rfm_store::Store::connect(url).expect("connect to the test database");
    let row = store
        .client()
        .query_one(
            "SELECT r.run_id, r.status, r.customers,
                    (SELECT count(*) FROM rfm_latest_customers)
             FROM rfm_latest_run r",
            &[],
        )
        .expect("a published run");
    let customers: i64 = row.get(2);
    let rows: i64 = row.get(3);
    assert_eq!(
        customers, rows,
        "rfm_runs.customers equals the customer rows"
    );
    (row.get(0), row.get(1), customers)
}
