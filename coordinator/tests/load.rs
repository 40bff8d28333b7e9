//! Load on one coordinator: twenty `rfm submit` of the real UCI file at
//! once on three workers (twenty reference results), and two hundred small
//! jobs in a row (the coordinator's resident memory stays within what the
//! finished jobs it keeps for an hour account for).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::reference::assert_uci_reference;
use crate::support::{bin, serial, Proc, REAL};
use rfm_proto::v1::coordinator_client::CoordinatorClient;
use rfm_proto::v1::{JobEvent, JobRef};

/// A coordinator on loopback with `workers` one-thread workers.
fn cluster(workers: usize) -> (Proc, String, Vec<Proc>) {
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "127.0.0.1:0"])
        .env_remove("DATABASE_URL")
        .env_remove("RFM_DATABASE_URL");
    let coordinator = Proc::spawn(cmd);
    let url = coordinator.coordinator_url();
    let workers = (0..workers)
        .map(|_| {
            let mut cmd = Command::new(bin("rfm-worker"));
            cmd.args(["--coordinator", &url, "--listen", "127.0.0.1:0"])
                .args(["--threads", "1", "--heartbeat-interval", "500ms"]);
            Proc::spawn(cmd)
        })
        .collect::<Vec<_>>();
    coordinator.wait_for("registered at", workers.len(), Duration::from_secs(20));
    (coordinator, url, workers)
}

fn submit(url: &str, input: &Path, out: &Path, chunk_size: &str) -> Command {
    let mut cmd = Command::new(bin("rfm"));
    cmd.arg("submit")
        .arg(input)
        .args(["--coordinator", url, "--chunk-size", chunk_size, "--out"])
        .arg(out);
    cmd
}

#[test]
fn twenty_concurrent_submits_of_the_uci_file_give_twenty_reference_results() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let (_coordinator, url, _workers) = cluster(3);
    let started = Instant::now();
    let outs: Vec<_> = (0..20)
        .map(|i| tmp.path().join(format!("out{i}")))
        .collect();
    let mut clients: Vec<Proc> = outs
        .iter()
        .map(|out| Proc::spawn(submit(&url, Path::new(REAL), out, "8MiB")))
        .collect();
    for client in clients.iter_mut() {
        let status = client.wait_exit(Duration::from_secs(240));
        assert!(
            status.success(),
            "rfm submit: {status}\n{}",
            client.stderr()
        );
    }
    eprintln!(
        "20 concurrent jobs of the UCI file: {:?}",
        started.elapsed()
    );
    for out in &outs {
        assert_uci_reference(out);
    }
}

/// The coordinator's resident set (`VmRSS`), in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("a VmRSS line");
    kb * 1024
}

#[test]
fn two_hundred_jobs_in_a_row_do_not_grow_the_coordinator() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("small.csv");
    let o = Command::new(bin("rfm"))
        .args(["gen", "--rows", "2000", "--seed", "3", "--out"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let expected = tmp.path().join("expected");
    let o = Command::new(bin("rfm"))
        .arg("run")
        .arg(&input)
        .arg("--out")
        .arg(&expected)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let expected = std::fs::read(expected.join("customers.csv")).unwrap();

    let (coordinator, url, _workers) = cluster(2);
    let pid = coordinator.child.id();
    let started = Instant::now();
    let mut samples = Vec::new();
    for job in 1..=200 {
        let out = tmp.path().join(format!("out{}", job % 2));
        let o = submit(&url, &input, &out, "64KiB").output().unwrap();
        assert!(
            o.status.success(),
            "job {job}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            std::fs::read(out.join("customers.csv")).unwrap() == expected,
            "job {job}: customers.csv differs from rfm run's"
        );
        if job % 50 == 0 {
            samples.push((job, rss(pid)));
        }
    }
    eprintln!(
        "200 jobs in a row: {:?}; coordinator RSS after jobs {:?}",
        started.elapsed(),
        samples
            .iter()
            .map(|(j, b)| format!("{j}: {:.1} MiB", *b as f64 / 1048576.0))
            .collect::<Vec<_>>()
    );
    let after_50 = samples[0].1;
    let after_200 = samples[3].1;
    let growth = after_200.saturating_sub(after_50);
    let last_job = run_id_of(&tmp.path().join("out0"));
    let per_job = retained_per_job(&url, &last_job);
    let allowance = 150 * per_job * 3 / 2 + (8 << 20);
    eprintln!(
        "growth from job 50 to 200: {:.1} MiB ({} KiB a job); kept by design: {} KiB a job; allowed: {:.1} MiB",
        growth as f64 / 1048576.0,
        growth / 150 / 1024,
        per_job / 1024,
        allowance as f64 / 1048576.0
    );
    assert!(
        growth <= allowance,
        "the coordinator grew by {growth} bytes from job 50 to job 200, more than the \
         {allowance} bytes the 150 finished jobs it keeps account for"
    );
}

fn run_id_of(out: &Path) -> String {
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).expect("run.json"))
            .expect("run.json is JSON");
    report["run_id"].as_str().expect("run_id").to_string()
}

/// What the coordinator keeps of each finished job by design, for
/// `KEEP_FINISHED_JOBS` (an hour; pruned when a job is submitted): its result
/// (run report and merged state, asked of the coordinator for `job_id`) and
/// its event channel, a tokio broadcast ring of 1024 `JobEvent` slots
/// allocated at submission, with the strings of the events still in it.
fn retained_per_job(url: &str, job_id: &str) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(async {
        let mut client = CoordinatorClient::connect(url.to_string())
            .await
            .expect("connect to the coordinator");
        client
            .get_job_result(JobRef {
                job_id: job_id.to_string(),
            })
            .await
            .expect("the job's result")
            .into_inner()
    });
    let result_bytes = (result.report_json.len() + result.state_ipc.len()) as u64;
    // A slot: the event, its position and reader count, and its lock.
    let ring = 1024 * (std::mem::size_of::<JobEvent>() as u64 + 48);
    let event_strings = 16 << 10;
    result_bytes + ring + event_strings
}
