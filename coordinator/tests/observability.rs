//! The HTTP ports of real `rfm-coordinator` and `rfm-worker` processes:
//! `/readyz` turns ready when a worker registers and back when it is lost,
//! `/metrics` counts a job run with `rfm submit`, `rfm jobs` / `job` /
//! `cancel` see it, and gRPC health answers SERVING on both servers; with
//! default settings two workers share the real file's tasks.

use crate::support::bin;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A server process killed on drop; its stderr lines arrive on a channel.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Server {
    fn spawn(mut cmd: Command) -> Server {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG")
            .spawn()
            .expect("server starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Server { child, lines }
    }

    /// The rest of the first stderr line holding `marker`.
    fn wait_for(&self, marker: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(i) = line.find(marker) {
                        return line[i + marker.len()..].trim().to_string();
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no {marker:?} on the server's stderr");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `path` from `addr`: (status code, body).
pub(crate) fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("HTTP port accepts");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// The value of an unlabelled metric.
fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{body}"))
}

fn grpc_serving(url: &str) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(url.to_string())
            .unwrap()
            .connect()
            .await
            .expect("gRPC port accepts");
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        let answer = client
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("health answers")
            .into_inner();
        answer.status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    })
}

#[test]
fn readiness_and_metrics_follow_workers_and_jobs() {
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .args(["--min-workers", "1", "--log-format", "text"])
        .args(["--worker-timeout", "1s", "--min-chunk-size", "256KiB"]);
    let coordinator = Server::spawn(cmd);
    let grpc = coordinator.wait_for("listening on ");
    let http = coordinator
        .wait_for("metrics and health on http://")
        .to_string();
    let url = format!("http://{grpc}");

    assert_eq!(get(&http, "/healthz").0, 200);
    let (code, body) = get(&http, "/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("0 live worker"), "{body}");
    assert!(grpc_serving(&url));
    let before = get(&http, "/metrics").1;
    assert_eq!(metric(&before, "rfm_workers_alive"), 0.0);

    let mut cmd = Command::new(bin("rfm-worker"));
    cmd.args(["--coordinator", &url, "--listen", "127.0.0.1:0"])
        .args(["--threads", "1", "--http-listen", "127.0.0.1:0"])
        .args(["--log-format", "json", "--heartbeat-interval", "200ms"]);
    let worker = Server::spawn(cmd);
    let worker_grpc = worker.wait_for("serving tasks and Flight on ");
    let worker_grpc = worker_grpc.split('"').next().unwrap().to_string();
    let worker_http = worker.wait_for("metrics and health on http://");
    // A JSON log line: the address ends at the message's closing quote.
    let worker_http = worker_http.split('"').next().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&http, "/readyz").0 != 200 {
        assert!(Instant::now() < deadline, "/readyz never turned 200");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get(&worker_http, "/healthz").0, 200);
    assert!(grpc_serving(&format!("http://{worker_grpc}")));

    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/sample.csv");
    let out = tempfile::tempdir().unwrap();
    let submit = Command::new(bin("rfm"))
        .args(["submit", sample, "--coordinator", &url, "--json"])
        .args(["--chunk-size", "256KiB", "--out"])
        .arg(out.path().join("run"))
        .output()
        .expect("rfm submit runs");
    assert!(
        submit.status.success(),
        "{}",
        String::from_utf8_lossy(&submit.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&submit.stdout).unwrap();
    let lines = report["lines_read"].as_f64().unwrap();
    assert_eq!(lines, 20_000.0);

    let after = get(&http, "/metrics").1;
    assert_eq!(metric(&after, "rfm_jobs_submitted_total"), 1.0, "{after}");
    assert_eq!(metric(&after, "rfm_jobs_completed_total"), 1.0);
    assert_eq!(metric(&after, "rfm_jobs_failed_total"), 0.0);
    assert_eq!(metric(&after, "rfm_jobs_running"), 0.0);
    // The finished job is kept, its result counted: a row and an id each.
    assert_eq!(metric(&after, "rfm_finished_jobs_kept"), 1.0);
    let customers = report["customers"].as_f64().unwrap();
    let result_bytes = metric(&after, "rfm_finished_results_bytes");
    let row = std::mem::size_of::<rfm_core::score::CustomerRow>() as f64;
    assert!(
        result_bytes >= customers * (row + 16.0)
            && result_bytes < customers * (row + 64.0) + 65536.0,
        "{customers} customers counted as {result_bytes} bytes"
    );
    assert_eq!(metric(&after, "rfm_lines_processed_total"), lines);
    let bytes = std::fs::metadata(sample).unwrap().len() as f64;
    let tasks = metric(&after, "rfm_tasks_completed_total");
    assert!(
        tasks >= 2.0,
        "a 256 KiB chunk size splits the sample: {tasks}"
    );
    let merged_bytes = metric(&after, "rfm_bytes_processed_total");
    assert!(
        merged_bytes <= bytes && merged_bytes > bytes * 0.99,
        "{merged_bytes} of {bytes}"
    );
    assert_eq!(metric(&after, "rfm_job_duration_seconds_count"), 1.0);
    assert!(after.contains("rfm_job_duration_seconds_bucket{le=\"+Inf\"} 1"));
    assert_eq!(metric(&after, "rfm_workers_alive"), 1.0);

    // The job API of the CLI: jobs, job ID, and an unknown id.
    let rfm = |args: &[&str]| {
        Command::new(bin("rfm"))
            .args(args)
            .args(["--coordinator", &url])
            .output()
            .expect("rfm runs")
    };
    let listed = rfm(&["jobs", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let job_id = report["run_id"].as_str().unwrap();
    assert_eq!(listed[0]["job_id"], job_id, "{listed}");
    assert_eq!(listed[0]["state"], "succeeded");
    assert_eq!(listed[0]["lines_done"].as_f64(), Some(lines));
    let one = rfm(&["job", job_id, "--json"]);
    let one: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(one["tasks_done"].as_f64(), Some(tasks));
    // Cancelling a job that has ended says so, exit 3.
    let ended = rfm(&["cancel", job_id]);
    let err = String::from_utf8_lossy(&ended.stderr);
    assert_eq!(ended.status.code(), Some(3), "{err}");
    assert!(
        err.contains("already ended (succeeded)") && err.contains("nothing to cancel"),
        "{err}"
    );
    let missing = rfm(&["cancel", "no-such-job"]);
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(3), "{err}");
    assert!(err.contains("no-such-job"), "{err}");

    let w = get(&worker_http, "/metrics").1;
    assert_eq!(metric(&w, "rfm_worker_tasks_completed_total"), tasks, "{w}");
    assert_eq!(metric(&w, "rfm_worker_lines_processed_total"), lines);
    assert_eq!(metric(&w, "rfm_worker_tasks_running"), 0.0);

    // A killed worker is lost after --worker-timeout: not ready any more.
    drop(worker);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&http, "/readyz").0 != 503 {
        assert!(Instant::now() < deadline, "/readyz stayed 200");
        std::thread::sleep(Duration::from_millis(100));
    }
    let last = get(&http, "/metrics").1;
    assert_eq!(metric(&last, "rfm_workers_alive"), 0.0);
    assert_eq!(metric(&last, "rfm_workers_lost"), 1.0);
}

#[test]
fn two_workers_share_the_real_file_with_default_settings() {
    let _serial = crate::cluster::serial();
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "127.0.0.1:0", "--log-format", "text"]);
    let coordinator = Server::spawn(cmd);
    let url = format!("http://{}", coordinator.wait_for("listening on "));
    let workers: Vec<(Server, String)> = (0..2)
        .map(|_| {
            let mut cmd = Command::new(bin("rfm-worker"));
            cmd.args(["--coordinator", &url, "--listen", "127.0.0.1:0"])
                .args(["--threads", "1", "--http-listen", "127.0.0.1:0"])
                .args(["--log-format", "text", "--heartbeat-interval", "200ms"]);
            let worker = Server::spawn(cmd);
            let http = worker.wait_for("metrics and health on http://");
            (worker, http)
        })
        .collect();
    for _ in 0..2 {
        coordinator.wait_for("registered at");
    }
    let out = tempfile::tempdir().unwrap();
    // No --chunk-size: the coordinator chooses it.
    let submit = Command::new(bin("rfm"))
        .args([
            "submit",
            crate::support::REAL,
            "--coordinator",
            &url,
            "--json",
        ])
        .arg("--out")
        .arg(out.path().join("run"))
        .output()
        .expect("rfm submit runs");
    assert!(
        submit.status.success(),
        "{}",
        String::from_utf8_lossy(&submit.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&submit.stdout).unwrap();
    let chunk = report["options"]["chunk_size"].as_u64().unwrap();
    let bytes = std::fs::metadata(crate::support::REAL).unwrap().len();
    // Two slots, at least two tasks each.
    assert!(
        chunk > 0 && bytes.div_ceil(chunk) >= 4,
        "chunk size {chunk} for {bytes} bytes"
    );
    let mut total = 0.0;
    for (_, http) in &workers {
        let done = metric(&get(http, "/metrics").1, "rfm_worker_tasks_completed_total");
        assert!(done >= 1.0, "every worker runs tasks: {done}");
        total += done;
    }
    assert!(total >= 4.0, "{total} tasks");
    assert_eq!(report["customers"], 4338);

    // Through the cluster too: the workers count date forms and lines after
    // --until, the coordinator adds them up.
    let submit_json = |args: &[&str]| -> serde_json::Value {
        let o = Command::new(bin("rfm"))
            .arg("submit")
            .args(args)
            .args([
                "--coordinator",
                &url,
                "--json",
                "--chunk-size",
                "4MiB",
                "--out",
            ])
            .arg(
                out.path()
                    .join(args[0].rsplit('/').next().unwrap())
                    .with_extension(args.len().to_string()),
            )
            .output()
            .expect("rfm submit runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let dmy = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/real/variants/uppercase_header_dmy_232.csv"
    );
    let r = submit_json(&[dmy]);
    let warning = r["warnings"][0].as_str().unwrap_or_default();
    assert!(
        warning.contains("ambiguous") && warning.contains("--date-format '%d/%m/%Y %H:%M'"),
        "{r}"
    );
    assert_eq!(r["first_purchase"], "2010-01-12");
    let r = submit_json(&[crate::support::REAL, "--until", "2011-06-30"]);
    assert_eq!(r["purchase_lines"], 172_635, "{r}");
    assert_eq!(r["excluded"]["after_until"], 225_249);
    assert_eq!(r["customers"], 2_960);
    assert_eq!(r["as_of"], "2011-07-01");
    assert!(
        r["files"][0]["date_form"]
            .as_str()
            .unwrap()
            .starts_with("ISO"),
        "{r}"
    );
}
