//! Load on one coordinator: twenty `rfm submit` of the real UCI file at
//! once on three workers (twenty reference results), and two hundred small
//! jobs in a row (the coordinator's resident memory is flat from job 50 to
//! job 200: it keeps a bounded number of finished jobs, and frees a job's
//! event channel when the job ends), and results of many customers in a row
//! (the memory their results hold is bounded too).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::reference::assert_uci_reference;
use crate::support::{bin, rss, serial, Proc, REAL};
use rfm_coordinator::retention::DEFAULT_MAX_FINISHED_JOBS;

/// A coordinator on loopback with `workers` one-thread workers.
fn cluster(workers: usize) -> (Proc, String, Vec<Proc>) {
    cluster_with(workers, &[])
}

/// [`cluster`], the coordinator started with `args` besides.
fn cluster_with(workers: usize, args: &[&str]) -> (Proc, String, Vec<Proc>) {
    cluster_with_env(workers, args, &[])
}

/// What the coordinator logs (at debug level) when it returns the pages
/// kept for the next job, idle for `--keep-freed-memory`.
const IDLE_RETURN: &str = "idle: the memory kept for the next job returned";

/// [`cluster_with`], the coordinator's environment holding `env` besides.
fn cluster_with_env(
    workers: usize,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Proc, String, Vec<Proc>) {
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(args).envs(env.iter().copied());
    // Twenty jobs run at once; the small jobs ask for 64 KiB chunks.
    cmd.args(["--listen", "127.0.0.1:0", "--max-running-jobs", "20"])
        .args(["--min-chunk-size", "64KiB"])
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
    let mut first = String::new();
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
        if job == 1 {
            first = run_id_of(&out);
        }
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
    eprintln!(
        "growth from job 50 to 200: {:.1} MiB (allowed: {:.1} MiB)",
        growth as f64 / 1048576.0,
        RSS_ALLOWANCE as f64 / 1048576.0
    );
    assert!(
        growth <= RSS_ALLOWANCE,
        "the coordinator grew by {growth} bytes from job 50 to job 200 (more than \
         {RSS_ALLOWANCE}): memory grows with the number of jobs run"
    );

    // What bounds it: only the newest finished jobs are kept, and a dropped
    // one is reported as such.
    let last = run_id_of(&tmp.path().join("out0"));
    let kept = kept_jobs(&url, &last);
    assert_eq!(kept, DEFAULT_MAX_FINISHED_JOBS);
    assert_dropped(&url, &first, "after", "--max-finished-jobs");
}

/// How many jobs `rfm jobs` lists, checking `last` is among them.
fn kept_jobs(url: &str, last: &str) -> usize {
    let jobs = rfm_json(url, &["jobs"]);
    let kept = jobs.as_array().expect("a list of jobs");
    assert!(kept.iter().any(|j| j["job_id"] == last), "{jobs}");
    kept.len()
}

/// `rfm job ID` exits 3 saying the job was dropped from memory `why`,
/// naming `setting`.
fn assert_dropped(url: &str, id: &str, why: &str, setting: &str) {
    let o = Command::new(bin("rfm"))
        .args(["job", id, "--coordinator", url])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!(
            "job {id} finished and was dropped from memory {why}"
        )) && err.contains(setting),
        "{err}"
    );
}

#[test]
fn results_of_many_customers_in_a_row_are_kept_within_the_memory_set() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    // About 27,000 customers: a result of about 3.5 MB.
    let input = tmp.path().join("customers.csv");
    let o = Command::new(bin("rfm"))
        .args(["gen", "--rows", "541909", "--customer-per-invoice", "--out"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The pages a job frees are kept for the next one for a second; RSS is
    // read once the coordinator, idle that long, has returned them, so
    // what it measures is what the results kept hold.
    let (coordinator, url, _workers) = cluster_with_env(
        2,
        &[
            "--max-finished-results-size",
            RESULTS_KEPT,
            "--keep-freed-memory",
            "1s",
        ],
        &[("RUST_LOG", "info,rfm_coordinator=debug")],
    );
    let pid = coordinator.child.id();
    let rss_once_idle = || {
        let returned = coordinator.stderr().matches(IDLE_RETURN).count();
        coordinator.wait_for(IDLE_RETURN, returned + 1, Duration::from_secs(20));
        rss(pid)
    };
    let (mut first, mut last, mut at_20) = (String::new(), String::new(), 0);
    for job in 1..=60 {
        let out = tmp.path().join(format!("out{}", job % 2));
        let o = submit(&url, &input, &out, "16MiB").output().unwrap();
        assert!(
            o.status.success(),
            "job {job}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        last = run_id_of(&out);
        if job == 1 {
            first = last.clone();
        }
        if job == 20 {
            at_20 = rss_once_idle();
        }
    }
    let growth = rss_once_idle().saturating_sub(at_20);
    eprintln!(
        "coordinator RSS growth from job 20 to job 60: {:.1} MiB",
        growth as f64 / 1048576.0
    );
    // Each result kept would add about 3.5 MB: 40 of them, 140 MB. Kept
    // within the memory set, with the freed pages returned, what is left
    // is the allocator's own (0 to 10 MB from job 20 to 60 on a quiet
    // machine, up to 18 MB with both cores busy besides).
    assert!(
        growth <= 48 << 20,
        "the coordinator grew by {growth} bytes from job 20 to job 60: the results kept \
         are not bounded by --max-finished-results-size {RESULTS_KEPT}"
    );
    let kept = kept_jobs(&url, &last);
    assert!((1..=3).contains(&kept), "{kept} jobs kept");
    // `rfm jobs` says what each kept result holds: about 3.5 MB each, and
    // together within the limit (the newest job alone may exceed it).
    let jobs = rfm_json(&url, &["jobs"]);
    let sizes: Vec<u64> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["result_bytes"].as_u64().expect("result_bytes"))
        .collect();
    assert!(sizes.iter().all(|&b| b > 2 << 20 && b < 8 << 20), "{jobs}");
    assert!(kept == 1 || sizes.iter().sum::<u64>() <= 8 << 20, "{jobs}");
    let o = Command::new(bin("rfm"))
        .args(["jobs", "--coordinator", &url])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.lines().next().unwrap().contains(" RESULT "),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.starts_with(&last))
        .expect("the last job");
    assert!(row.contains("MiB"), "{table}");
    assert_dropped(
        &url,
        &first,
        "when newer results filled",
        &format!("--max-finished-results-size {RESULTS_KEPT}"),
    );
}

/// The memory for finished jobs' results in
/// `results_of_many_customers_in_a_row_are_kept_within_the_memory_set`.
const RESULTS_KEPT: &str = "8MiB";

/// RSS from job 50 to job 200 may grow by this much, not by anything
/// proportional to the jobs run: the allocator's steps (2 MiB; the growth
/// seen on a quiet machine is 0 to 2 MiB), the 14 small results kept from job
/// 50 to job 64, and on a loaded machine a few more runtime threads (a stack
/// and an allocator arena each: 8 MiB was seen with three builds running).
/// Each finished job's event ring alone made it about 30 MiB.
const RSS_ALLOWANCE: u64 = 12 << 20;

fn run_id_of(out: &Path) -> String {
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).expect("run.json"))
            .expect("run.json is JSON");
    report["run_id"].as_str().expect("run_id").to_string()
}

/// `rfm ARGS --coordinator URL --json`.
fn rfm_json(url: &str, args: &[&str]) -> serde_json::Value {
    let o = Command::new(bin("rfm"))
        .args(args)
        .args(["--coordinator", url, "--json"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "rfm {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("rfm --json prints JSON")
}
