//! Every `rfm` subcommand on bad input and unreachable services: a message
//! that names the file, address or setting, the documented exit code (2
//! usage, 3 input, 4 output, 5 cluster, 6 database), no panic and nothing
//! half-written. Also `rfm gen`'s determinism and the local run history.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

fn rfm(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rfm"))
        .args(args)
        .current_dir(cwd)
        .env_remove("DATABASE_URL")
        .env_remove("RFM_CONFIG")
        .envs(
            std::env::vars()
                .filter(|(k, _)| k.starts_with("RFM_"))
                .map(|(k, _)| (k, String::new())),
        )
        .output()
        .expect("run rfm")
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn bad_input_gets_a_clear_message_and_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let coordinator = format!("http://127.0.0.1:{}", closed_port());
    let database = format!("postgresql://rfm@127.0.0.1:{}/rfm", closed_port());
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/sample.csv");
    let out = d.join("out");
    let out = out.to_str().unwrap();
    let missing_root = d.join("no-runs-here");
    let missing_root = missing_root.to_str().unwrap();
    let unwritable = d.join("no-such-dir").join("x.csv");
    let unwritable = unwritable.to_str().unwrap();
    let bad_toml = d.join("bad.toml");
    std::fs::write(&bad_toml, "[run]\nthreads = \"many\"\n").unwrap();

    #[rustfmt::skip]
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["gen", "--rows", "10", "--out", unwritable], 4, unwritable),
        (vec!["gen", "--rows", "ten", "--out", "x.csv"], 2, "--rows"),
        (vec!["run", "nothing.csv", "--out", out], 3, "nothing.csv"),
        (vec!["submit", sample, "--coordinator", &coordinator, "--out", out], 5, &coordinator),
        (vec!["submit", sample, "--coordinator", "::nonsense", "--out", out], 2, "--coordinator"),
        (vec!["workers", "--coordinator", &coordinator], 5, &coordinator),
        (vec!["health", &coordinator], 5, &coordinator),
        (vec!["health", "::nonsense"], 2, "::nonsense"),
        (vec!["jobs", "--coordinator", &coordinator], 5, &coordinator),
        (vec!["job", "some-job", "--coordinator", &coordinator], 5, &coordinator),
        (vec!["cancel", "some-job", "--coordinator", &coordinator], 5, &coordinator),
        (vec!["runs", "--database-url", &database], 6, "127.0.0.1"),
        (vec!["diff", "a", "b", "--database-url", &database], 6, "127.0.0.1"),
        (vec!["runs", "--results-root", missing_root], 3, missing_root),
        (vec!["diff", "a", "b", "--results-root", missing_root], 3, missing_root),
        (vec!["segments", "--results-root", missing_root], 3, missing_root),
        (vec!["customers", "--results-root", missing_root], 3, missing_root),
        (vec!["customer", "12347", "--results-root", missing_root], 3, missing_root),
        (vec!["export", "--results-root", missing_root, "--out", "x.parquet"], 3, missing_root),
        (vec!["export", "--format", "xlsx", "--out", "x.xlsx"], 2, "xlsx"),
        (vec!["config", "nosuch"], 2, "nosuch"),
        (vec!["--config", bad_toml.to_str().unwrap(), "run", sample, "--out", out], 2, "threads"),
        (vec!["completions", "cmd.exe"], 2, "cmd.exe"),
        (vec!["frobnicate"], 2, "frobnicate"),
    ];
    for (args, code, fragment) in &cases {
        let o = rfm(args, d);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(*code), "rfm {args:?}: {err}");
        assert!(
            err.contains(fragment),
            "rfm {args:?}: stderr lacks {fragment:?}: {err}"
        );
        assert!(!err.contains("panicked"), "rfm {args:?}: {err}");
    }
    // Nothing half-written anywhere: no temporary file, and a failed run's
    // folder holds its failed run.json alone.
    let mut left: Vec<String> = Vec::new();
    for entry in walk(d) {
        let name = entry.to_string_lossy().into_owned();
        if name.contains(".rfm-") || (name.contains("/out/") && !name.ends_with("/out/run.json")) {
            left.push(name);
        }
    }
    assert!(left.is_empty(), "left behind: {left:?}");
    if let Ok(text) = std::fs::read(d.join("out/run.json")) {
        let report: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(report["status"], "failed", "{report}");
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn gen_is_deterministic_per_seed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let made = |name: &str, seed: &str| {
        let o = rfm(
            &["gen", "--rows", "50000", "--seed", seed, "--out", name],
            d,
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(d.join(name)).unwrap()
    };
    let a = made("a.csv", "7");
    let b = made("b.csv", "7");
    let c = made("c.csv", "8");
    // (No assert_eq: a failure would print megabytes.)
    assert!(a == b, "same seed, same bytes");
    assert!(a != c, "another seed, other data");
    // Descriptions carry Latin-1 bytes, as the UCI export does: compare bytes.
    assert!(a.starts_with(
        b"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    ));
    let lines = a.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(lines, 50_001, "a header and the rows asked for");
    // Standard output too, identical to the file.
    let o = rfm(&["gen", "--rows", "50000", "--seed", "7", "--out", "-"], d);
    assert!(o.status.success());
    assert!(o.stdout == a, "standard output differs from the file");
}

#[test]
fn every_command_has_examples_in_its_help() {
    let dir = tempfile::tempdir().unwrap();
    let help = rfm(&["--help"], dir.path());
    let text = String::from_utf8_lossy(&help.stdout).into_owned();
    let commands: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 16, "{commands:?}");
    for c in commands {
        let o = rfm(&[c, "--help"], dir.path());
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("Examples:"),
            "rfm {c} --help has no examples:\n{out}"
        );
    }
    for server in ["rfm-coordinator", "rfm-worker", "rfm-dashboard", "rfm-web"] {
        let o = Command::new(crate::config::bin(server))
            .arg("--help")
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("Examples:"),
            "{server} --help has no examples:\n{out}"
        );
    }
}
