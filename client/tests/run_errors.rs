//! `rfm run` on bad input and bad options, through the real binary: a clear
//! message naming the file, line or flag, the documented exit code, no panic
//! and no result files.

use std::path::Path;
use std::process::{Command, Output};

fn rfm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rfm"))
        .args(args)
        .output()
        .expect("rfm runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `rfm run INPUT --out DIR EXTRA…` and checks the failure: exit code,
/// message fragments, no panic, no customers.csv / segments.csv.
fn expect_failure(input: &Path, extra: &[&str], code: i32, fragments: &[&str]) {
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out");
    let mut args = vec![
        "run",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = rfm(&args);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "exit code for {args:?}; stderr: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    for f in fragments {
        assert!(err.contains(f), "stderr lacks {f:?}: {err}");
    }
    assert!(
        !out.join("customers.csv").exists(),
        "no result files after a failure"
    );
    assert!(
        !out.join("segments.csv").exists(),
        "no result files after a failure"
    );
}

fn file_with(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

const GOOD: &[u8] = b"InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n1,2,12/1/2010 8:26,2.5,17850,UK\n";

#[test]
fn missing_file() {
    expect_failure(
        Path::new("/nonexistent/retail.csv"),
        &[],
        3,
        &["/nonexistent/retail.csv", "cannot read"],
    );
}

#[test]
fn empty_file_and_header_only() {
    let d = tempfile::tempdir().unwrap();
    expect_failure(
        &file_with(d.path(), "empty.csv", b""),
        &[],
        3,
        &["empty.csv", "empty"],
    );
    expect_failure(
        &file_with(
            d.path(),
            "header.csv",
            b"InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID\n",
        ),
        &[],
        3,
        &["header.csv", "no data lines"],
    );
}

#[test]
fn missing_column_names_it_and_the_header() {
    let d = tempfile::tempdir().unwrap();
    let p = file_with(
        d.path(),
        "nocust.csv",
        b"InvoiceNo,Quantity,InvoiceDate,UnitPrice\n1,2,12/1/2010 8:26,2.5\n",
    );
    expect_failure(
        &p,
        &[],
        3,
        &[
            "nocust.csv",
            "customer",
            "CustomerID",
            "InvoiceNo,Quantity,InvoiceDate,UnitPrice",
        ],
    );
}

#[test]
fn binary_garbage() {
    let d = tempfile::tempdir().unwrap();
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    expect_failure(
        &file_with(d.path(), "garbage.csv", &garbage),
        &[],
        3,
        &["garbage.csv", "missing"],
    );
}

#[test]
fn directory_without_csv() {
    let d = tempfile::tempdir().unwrap();
    file_with(d.path(), "notes.txt", b"hello");
    expect_failure(d.path(), &[], 3, &["no input files match"]);
}

#[test]
fn unwritable_out() {
    let d = tempfile::tempdir().unwrap();
    let input = file_with(d.path(), "ok.csv", GOOD);
    let blocker = file_with(d.path(), "file", b"x");
    let out = blocker.join("sub");
    let o = rfm(&[
        "run",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot write results"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn invalid_option_values_name_the_flag() {
    let d = tempfile::tempdir().unwrap();
    let input = file_with(d.path(), "ok.csv", GOOD);
    expect_failure(&input, &["--delimiter", "ab"], 2, &["--delimiter"]);
    expect_failure(&input, &["--as-of", "2011-13-01"], 2, &["--as-of"]);
    expect_failure(
        &input,
        &["--date-format", "%d/%m/%Q"],
        2,
        &["--date-format", "%Q"],
    );
    expect_failure(
        &input,
        &["--max-malformed-share", "1.5"],
        2,
        &["--max-malformed-share"],
    );
    expect_failure(&input, &["--chunk-size", "lots"], 2, &["--chunk-size"]);
    expect_failure(&input, &["--threads", "0"], 2, &["--threads"]);
    expect_failure(
        &input,
        &["--as-of", "2010-12-01"],
        3,
        &["not after the latest purchase date 2010-12-01"],
    );
}

#[test]
fn malformed_share_over_the_limit_writes_only_the_report() {
    let d = tempfile::tempdir().unwrap();
    let mut bytes = GOOD.to_vec();
    bytes.extend_from_slice(b"2,two,12/1/2010 8:26,2.5,17850,UK\n");
    let input = file_with(d.path(), "bad.csv", &bytes);
    let out = d.path().join("out");
    let o = rfm(&[
        "run",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("1 of 2 lines are malformed") && err.contains("bad.csv:3"),
        "{err}"
    );
    assert!(!out.join("customers.csv").exists());
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(report["status"], "failed");
    assert_eq!(report["malformed"], 1);
    assert_eq!(report["malformed_samples"][0]["line"], 3);
}

#[test]
fn successful_run_writes_all_three_files() {
    let d = tempfile::tempdir().unwrap();
    let input = file_with(d.path(), "ok.csv", GOOD);
    let out = d.path().join("out");
    let o = rfm(&[
        "run",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("Hibernating"), "{stdout}");
    for f in ["customers.csv", "segments.csv", "run.json"] {
        assert!(out.join(f).exists(), "{f}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary files left: {leftovers:?}"
    );
}

#[test]
fn a_run_lease_shorter_than_two_heartbeats_is_a_usage_error() {
    let d = tempfile::tempdir().unwrap();
    let input = file_with(d.path(), "good.csv", GOOD);
    expect_failure(
        &input,
        &["--run-lease", "5s", "--run-heartbeat", "5s"],
        2,
        &["--run-lease", "at least twice its heartbeat"],
    );
}
