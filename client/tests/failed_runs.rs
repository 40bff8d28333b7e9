//! A failed `rfm run` or `rfm submit`, whatever the stage, leaves its folder
//! holding a complete failed `run.json` (status, stage, error, what is known of
//! the input) and no result file; a failure while writing leaves a previous
//! run's files as they were.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/sample.csv");

const GOOD: &str = "InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
                    1,2,12/1/2010 8:26,2.5,17850,UK\n";

fn rfm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rfm"))
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("rfm runs")
}

/// `rfm ARGS` with its file size limited to `blocks` (512-byte) blocks, so
/// that writing a large file fails: with `trap_xfsz` the write fails with
/// EFBIG, else the process is killed by SIGXFSZ in the middle of writing.
fn rfm_with_file_limit(args: &[&str], blocks: u32, trap_xfsz: bool) -> Output {
    let trap = if trap_xfsz { "trap '' XFSZ; " } else { "" };
    Command::new("sh")
        .arg("-c")
        .arg(format!("{trap}ulimit -f {blocks}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_rfm"))
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("sh runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn report_of(dir: &Path) -> serde_json::Value {
    let text = std::fs::read(dir.join("run.json")).expect("run.json is written");
    serde_json::from_slice(&text).expect("run.json is complete JSON")
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Checks a failed run's folder: exactly a failed run.json, with the stage,
/// an error holding `fragment`, the input, the run id; and the exit code.
fn check_failed(out: &Path, o: &Output, code: i32, stage: &str, fragment: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stage {stage}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(names_in(out), ["run.json"], "stage {stage}: {err}");
    let report = report_of(out);
    assert_eq!(report["status"], "failed", "{report}");
    assert_eq!(report["stage"], stage, "{report}");
    let error = report["error"].as_str().unwrap_or_default();
    assert!(error.contains(fragment), "stage {stage}: error {error:?}");
    assert!(!report["input"].as_array().unwrap().is_empty(), "{report}");
    assert!(!report["run_id"].as_str().unwrap().is_empty(), "{report}");
    assert!(
        !report["finished_at"].as_str().unwrap().is_empty(),
        "{report}"
    );
    assert!(
        err.contains("run.json") && err.contains(&format!("failed at {stage}")),
        "stage {stage}: {err}"
    );
}

#[test]
fn every_failed_stage_leaves_a_failed_report() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let no_customer = write(
        dir,
        "nocust.csv",
        "InvoiceNo,Quantity,InvoiceDate,UnitPrice\n1,2,12/1/2010 8:26,2.5\n",
    );
    let malformed = write(
        dir,
        "bad.csv",
        &format!("{GOOD}2,two,12/1/2010 8:26,2.5,17850,UK\n"),
    );
    let good = write(dir, "good.csv", GOOD);
    let database = format!("postgresql://rfm@127.0.0.1:{}/rfm", closed_port());
    let missing = dir.join("missing.csv");
    let p = |p: &Path| p.to_str().unwrap().to_string();
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<String>, i32, &str)> = vec![
        ("input", vec![p(&missing)], 3, "missing.csv"),
        ("header", vec![p(&no_customer)], 3, "required column customer"),
        ("malformed-limit", vec![p(&malformed)], 3, "1 of 2 lines are malformed"),
        ("as-of", vec![p(&good), "--as-of".into(), "2010-12-01".into()], 3, "not after the latest purchase"),
        ("database", vec![p(&good), "--database-url".into(), database], 6, "127.0.0.1"),
    ];
    for (stage, extra, code, fragment) in &cases {
        let out = dir.join(format!("out-{stage}"));
        let mut args = vec!["run".to_string()];
        args.extend(extra.iter().cloned());
        args.extend(["--out".to_string(), p(&out)]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = rfm(&args);
        check_failed(&out, &o, *code, stage, fragment);
        if *stage == "malformed-limit" {
            let report = report_of(&out);
            assert_eq!(report["malformed"], 1, "the ledger is kept: {report}");
            assert_eq!(report["lines_read"], 2, "{report}");
        }
    }

    // Writing: customers.csv exceeds the file size limit (run.json fits).
    let out = dir.join("out-writing");
    let o = rfm_with_file_limit(&["run", SAMPLE, "--out", &p(&out)], 8, true);
    check_failed(&out, &o, 4, "writing", "customers.csv");

    // Usage errors stop before a run exists: no folder at all.
    let out = dir.join("out-usage");
    let o = rfm(&["run", &p(&good), "--threads", "0", "--out", &p(&out)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!out.exists(), "no folder for a usage error");
}

#[test]
fn failed_submissions_leave_a_failed_report() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out-planning");
    let coordinator = format!("http://127.0.0.1:{}", closed_port());
    let o = rfm(&[
        "submit",
        SAMPLE,
        "--coordinator",
        &coordinator,
        "--out",
        out.to_str().unwrap(),
    ]);
    check_failed(&out, &o, 5, "planning", &coordinator);

    // A coordinator without workers: the tasks never run.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let coordinator = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        rfm_coordinator::start(
            rfm_coordinator::CoordinatorConfig {
                no_worker_grace: Duration::from_millis(300),
                ..Default::default()
            },
            listener,
        )
        .unwrap()
    });
    let out = d.path().join("out-tasks");
    let o = rfm(&[
        "submit",
        SAMPLE,
        "--coordinator",
        &coordinator.url(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    check_failed_quiet(&out, &o, 5, "tasks", "no live worker");
    runtime.block_on(coordinator.shutdown());
}

/// [`check_failed`] for a quiet run (nothing printed but the error).
fn check_failed_quiet(out: &Path, o: &Output, code: i32, stage: &str, fragment: &str) {
    assert_eq!(o.status.code(), Some(code), "{}", stderr(o));
    assert_eq!(names_in(out), ["run.json"]);
    let report = report_of(out);
    assert_eq!(
        (report["status"].as_str(), report["stage"].as_str()),
        (Some("failed"), Some(stage)),
        "{report}"
    );
    let error = report["error"].as_str().unwrap_or_default();
    assert!(error.contains(fragment), "{error}");
}

#[test]
fn a_failure_while_writing_leaves_the_previous_run_whole() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let o = rfm(&["run", SAMPLE, "--out", out.to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before: Vec<(String, Vec<u8>)> = names_in(&out)
        .into_iter()
        .map(|n| {
            let bytes = std::fs::read(out.join(&n)).unwrap();
            (n, bytes)
        })
        .collect();
    assert_eq!(before.len(), 3);
    let same_as_before = |why: &str| {
        let now: Vec<(String, Vec<u8>)> = names_in(&out)
            .into_iter()
            .map(|n| {
                let bytes = std::fs::read(out.join(&n)).unwrap();
                (n, bytes)
            })
            .collect();
        assert!(now == before, "{why}: the previous run's files changed");
    };

    // The write fails (file too large): an error, the previous run intact.
    let o = rfm_with_file_limit(&["run", SAMPLE, "--out", out.to_str().unwrap()], 8, true);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("customers.csv"), "{}", stderr(&o));
    same_as_before("write error");
    assert_eq!(names_in(d.path()), ["out"], "no temporary folder left");

    // The process dies while writing: the previous run intact as well.
    let o = rfm_with_file_limit(&["run", SAMPLE, "--out", out.to_str().unwrap()], 8, false);
    assert!(o.status.code().is_none(), "killed by SIGXFSZ: {o:?}");
    same_as_before("crash");
    // What the crash left is hidden and never taken for a run.
    let runs = rfm(&[
        "runs",
        "--results-root",
        d.path().to_str().unwrap(),
        "--json",
    ]);
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
}

#[test]
fn a_new_run_replaces_the_folder_whole() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let good = write(d.path(), "good.csv", GOOD);
    // A failed run first (run.json alone), then two successful runs.
    let o = rfm(&["run", "missing.csv", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(names_in(&out), ["run.json"]);
    let mut ids = Vec::new();
    for input in [SAMPLE, good.to_str().unwrap()] {
        let o = rfm(&["run", input, "--out", out.to_str().unwrap(), "-q"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            names_in(&out),
            ["customers.csv", "run.json", "segments.csv"]
        );
        let report = report_of(&out);
        assert_eq!(report["status"], "succeeded");
        assert!(!ids.contains(&report["run_id"]), "a new run.json");
        ids.push(report["run_id"].clone());
        assert_eq!(
            names_in(d.path()),
            ["good.csv", "out"],
            "nothing left aside"
        );
    }
    let customers = std::fs::read_to_string(out.join("customers.csv")).unwrap();
    assert_eq!(
        customers.lines().count(),
        2,
        "the last run's customers: {customers}"
    );

    // A folder holding anything else is refused before any work.
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let o = rfm(&["run", SAMPLE, "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("notes.txt"), "{}", stderr(&o));
    assert_eq!(std::fs::read(out.join("notes.txt")).unwrap(), b"mine");
    assert_eq!(report_of(&out)["run_id"], ids[1]);
}

/// Symbolic links planted at every temporary name rfm used to write under:
/// none of them redirects a write.
#[test]
fn links_at_predictable_temporary_names_redirect_nothing() {
    let d = tempfile::tempdir().unwrap();
    let victim = write(d.path(), "victim", "precious");
    let link = |at: &Path| std::os::unix::fs::symlink(&victim, at).unwrap();
    let untouched = |after: &str| {
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "precious",
            "{after} wrote through a link"
        );
    };

    // Export and gen wrote `OUT.partial`.
    let root = d.path().join("runs");
    let o = rfm(&[
        "run",
        SAMPLE,
        "--out",
        root.join("r1").to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let export = d.path().join("export.csv");
    link(&d.path().join("export.csv.partial"));
    let o = rfm(&[
        "export",
        "--results-root",
        root.to_str().unwrap(),
        "--out",
        export.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&export)
        .unwrap()
        .starts_with("customer_id,"));
    untouched("rfm export");
    assert!(!export.is_symlink());
    let generated = d.path().join("gen.csv");
    link(&d.path().join("gen.csv.partial"));
    let o = rfm(&["gen", "--rows", "100", "--out", generated.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read(&generated).unwrap().starts_with(b"InvoiceNo"));

    untouched("rfm gen");

    // A run wrote `.NAME.tmp-PID` in the output folder and probed it with
    // `.rfm-write-test-PID`: links for the next few thousand process ids.
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let next_pid: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .map_or(1, |s| s.trim().parse::<u32>().unwrap_or(0) + 1);
    for pid in next_pid..next_pid + 3000 {
        for name in [
            format!(".customers.csv.tmp-{pid}"),
            format!(".segments.csv.tmp-{pid}"),
            format!(".run.json.tmp-{pid}"),
            format!(".rfm-write-test-{pid}"),
        ] {
            link(&out.join(name));
        }
    }
    let o = rfm(&["run", SAMPLE, "--out", out.to_str().unwrap(), "-q"]);
    // The folder holds things that are not run files: refused, untouched.
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(!out.join("customers.csv").exists());
    untouched("rfm run");
}
