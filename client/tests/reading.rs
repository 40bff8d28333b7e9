//! `rfm run` reading inputs, through the real binary: a `**` glob over a
//! directory with a loop of links ends with each file read once, and records
//! over `--max-record-size` are malformed lines.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/sample.csv");

/// `rfm run ARGS…`, killed (and the test failed) after `limit`.
fn rfm_within(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rfm"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rfm runs");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            let o = child.wait_with_output().unwrap();
            panic!(
                "rfm {args:?} did not end within {limit:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn run_ok(input: &str, out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["run", input, "--out", out.to_str().unwrap(), "--quiet"];
    args.extend_from_slice(extra);
    let o = rfm_within(&args, Duration::from_secs(120));
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap()
}

#[test]
fn a_double_star_glob_over_a_link_loop_reads_each_file_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("2011/12")).unwrap();
    std::fs::copy(SAMPLE, data.join("2011/12/sample.csv")).unwrap();
    // Links back up the tree: followed, `**` would walk forever.
    std::os::unix::fs::symlink("..", data.join("2011/12/up")).unwrap();
    std::os::unix::fs::symlink("../..", data.join("2011/12/top")).unwrap();
    std::os::unix::fs::symlink("../../2011", data.join("2011/12/again")).unwrap();

    let direct = run_ok(SAMPLE, &tmp.path().join("direct"), &[]);
    let spec = format!("{}/**/*.csv", data.display());
    let globbed = run_ok(&spec, &tmp.path().join("globbed"), &[]);
    assert_eq!(
        globbed["files"].as_array().map(Vec::len),
        Some(1),
        "{globbed}"
    );
    assert_eq!(globbed["lines_read"], direct["lines_read"]);
    assert_eq!(
        std::fs::read(tmp.path().join("globbed/customers.csv")).unwrap(),
        std::fs::read(tmp.path().join("direct/customers.csv")).unwrap()
    );
}

#[test]
fn records_over_the_max_record_size_are_malformed_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(SAMPLE).unwrap();
    let long = format!(
        "536365,85123A,{},6,12/1/2010 8:26,2.55,17850,United Kingdom\n",
        "D".repeat(8 << 10)
    );
    bytes.extend_from_slice(long.as_bytes());
    let input = tmp.path().join("long.csv");
    std::fs::write(&input, bytes).unwrap();
    let base = run_ok(SAMPLE, &tmp.path().join("base"), &[]);
    let report = run_ok(
        input.to_str().unwrap(),
        &tmp.path().join("limited"),
        &["--max-record-size", "4KiB", "--max-malformed-share", "1"],
    );
    let malformed = |r: &serde_json::Value| r["malformed"].as_u64().unwrap();
    assert_eq!(malformed(&report), malformed(&base) + 1, "{report}");
    let o = rfm_within(
        &["run", input.to_str().unwrap(), "--max-record-size", "0"],
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--max-record-size"));
}
