//! `rfm run` on the day-first real variants and at a point in time, through
//! the real binary (its embedded coordinator and worker): the ambiguous
//! 232-line variant warns and names `--date-format`; a day-first file with a
//! day above 12 fails with that suggestion; with the format both day-first
//! variants give the DuckDB reference's results; `--until 2011-06-30` gives
//! the reference's results on the UCI file cut to purchases before
//! 2011-07-01; `rfm diff` of it against the full run opens with its summary.

use std::path::{Path, PathBuf};

use crate::support::rfm;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn real(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/real")
        .join(name)
}

fn reference(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../core/tests/data/reference")
        .join(name)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn report(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap()
}

/// Checks a run folder against the reference outputs named `name`.
fn assert_reference(out: &Path, name: &str) {
    let segments = std::fs::read_to_string(out.join("segments.csv")).unwrap();
    let want = std::fs::read_to_string(reference(&format!("{name}.segments.csv"))).unwrap();
    assert_eq!(segments, want, "{name}: segments.csv");
    let customers = std::fs::read(out.join("customers.csv")).unwrap();
    let sha = std::fs::read_to_string(reference(&format!("{name}.customers.sha256"))).unwrap();
    assert_eq!(
        format!("{:x}", Sha256::digest(&customers)),
        sha.trim(),
        "{name}: customers.csv"
    );
}

#[test]
fn the_ambiguous_day_first_variant_warns_and_names_the_format() {
    let tmp = tempfile::tempdir().unwrap();
    let input = real("variants/uppercase_header_dmy_232.csv");
    let out = tmp.path().join("guess");
    let o = rfm(&[
        "run",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(stdout.contains("warning: "), "{stdout}");
    assert!(stdout.contains("ambiguous"), "{stdout}");
    assert!(
        stdout.contains("--date-format '%d/%m/%Y %H:%M'"),
        "{stdout}"
    );
    assert!(
        stdout.contains("purchases         2010-01-12 … 2010-01-12"),
        "{stdout}"
    );
    let r = report(&out);
    assert!(
        r["warnings"][0].as_str().unwrap().contains("ambiguous"),
        "{r}"
    );
    assert!(r["files"][0]["date_form"]
        .as_str()
        .unwrap()
        .contains("read month first"));
    assert_eq!(r["first_purchase"], "2010-01-12");

    // With the format: the reference's results, no warning.
    for (file, name, extra) in [
        (
            "variants/uppercase_header_dmy_232.csv",
            "uppercase_header_dmy_232",
            &[][..],
        ),
        (
            "variants/semicolon_decimalcomma_bom_dmy_10k.csv",
            "semicolon_decimalcomma_bom_dmy_10k",
            &["--delimiter", ";", "--decimal-comma"][..],
        ),
    ] {
        let out = tmp.path().join(name);
        let mut args = vec!["run", "--date-format", "%d/%m/%Y %H:%M", "--out"];
        args.push(out.to_str().unwrap());
        let input = real(file);
        args.push(input.to_str().unwrap());
        args.extend(extra);
        let o = rfm(&args);
        assert!(o.status.success(), "{name}: {}", text(&o.stderr));
        assert!(!text(&o.stdout).contains("warning"), "{}", text(&o.stdout));
        assert_reference(&out, name);
        let r = report(&out);
        assert_eq!(r["first_purchase"], "2010-12-01", "{name}");
        assert!(r.get("warnings").is_none(), "{r}");
    }
}

#[test]
fn a_day_above_12_fails_the_run_with_the_format_to_give() {
    let tmp = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(real("variants/uppercase_header_dmy_232.csv")).unwrap();
    // The last invoice's lines moved to 13 December.
    let made: String = original
        .lines()
        .map(|l| {
            if l.starts_with("536371,") || l.starts_with("536372,") {
                l.replace("1/12/2010", "13/12/2010")
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    assert!(made.contains("13/12/2010"));
    let input = tmp.path().join("dayfirst.csv");
    std::fs::write(&input, made).unwrap();
    let out = tmp.path().join("failed");
    let o = rfm(&[
        "run",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("dayfirst.csv"), "{err}");
    assert!(err.contains("--date-format '%d/%m/%Y %H:%M'"), "{err}");
    let r = report(&out);
    assert_eq!(
        (r["status"].as_str(), r["stage"].as_str()),
        (Some("failed"), Some("input"))
    );

    let out = tmp.path().join("read");
    let o = rfm(&[
        "run",
        input.to_str().unwrap(),
        "--date-format",
        "%d/%m/%Y %H:%M",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let r = report(&out);
    assert_eq!(r["malformed"], 0);
    assert_eq!(r["latest_purchase"], "2010-12-13");
}

#[test]
fn until_equals_the_reference_on_the_cut_file_and_diff_summarises() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("runs");
    let uci = real("online_retail.csv");
    let uci = uci.to_str().unwrap();
    let root_s = root.to_str().unwrap();
    let o = rfm(&["run", uci, "--results-root", root_s, "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let full: Value = serde_json::from_slice(&o.stdout).unwrap();
    // Runs are ordered by start time to the second: the June run starts later.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let o = rfm(&[
        "run",
        uci,
        "--until",
        "2011-06-30",
        "--results-root",
        root_s,
    ]);
    let summary = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        summary.contains("after --until        225,249"),
        "{summary}"
    );
    assert!(
        summary.contains("purchases         2010-12-01 … 2011-06-30"),
        "{summary}"
    );
    let then = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        // The results root also holds the hidden state cache (.cache).
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .find(|p| !p.ends_with(full["run_id"].as_str().unwrap()))
        .unwrap();
    assert_reference(&then, "online_retail_until_2011-06-30");
    let r = report(&then);
    assert_eq!(r["as_of"], "2011-07-01");
    assert_eq!(r["options"]["until"], "2011-06-30");
    assert_eq!(r["excluded"]["after_until"], 225_249);
    assert_eq!(r["purchase_lines"], 172_635);

    let then_id = r["run_id"].as_str().unwrap();
    let now_id = full["run_id"].as_str().unwrap();
    let o = rfm(&["diff", then_id, now_id, "--results-root", root_s]);
    let diff = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let first = diff.lines().next().unwrap();
    assert!(
        first.contains(" of 4338 customers changed segment; revenue that moved: "),
        "{diff}"
    );
    // Every customer of June is in December's run: 4,338 in all; the
    // unchanged rows are left out with --changed-only.
    let o = rfm(&[
        "diff",
        then_id,
        now_id,
        "--results-root",
        root_s,
        "--changed-only",
    ]);
    let changed = text(&o.stdout);
    assert_eq!(changed.lines().next(), Some(first));
    // Without ids: the two latest runs with results, also after a failed run.
    let failed = root.join("failed");
    let o = rfm(&[
        "run",
        uci,
        "--as-of",
        "2000-01-01",
        "--out",
        failed.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let o = rfm(&["diff", "--results-root", root_s]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout).lines().nth(1),
        Some(format!("segment movement from {now_id} to {then_id}").as_str()),
        "the full run started first, the June run last"
    );
    let same_rows = changed
        .lines()
        .skip(3)
        .filter(|l| l.get(..20).map(str::trim) == l.get(21..41).map(str::trim))
        .count();
    assert_eq!(same_rows, 0, "{changed}");
    assert!(changed.lines().count() < diff.lines().count());
}

#[test]
fn client_commands_default_to_the_local_coordinator_and_show_env_names() {
    for cmd in ["submit", "jobs", "job", "cancel", "workers"] {
        let o = rfm(&[cmd, "--help"]);
        let help = text(&o.stdout);
        assert!(
            help.contains("[default: http://127.0.0.1:50051]"),
            "rfm {cmd} --help:\n{help}"
        );
        assert!(
            !help.contains("=]"),
            "a stray = in rfm {cmd} --help:\n{help}"
        );
        assert!(help.contains("[env: RFM_COORDINATOR]"), "{help}");
    }
    let help = text(&rfm(&["run", "--help"]).stdout);
    assert!(help.contains("[env: RFM_THREADS]"), "{help}");
    assert!(
        help.contains("[env: RFM_DATABASE_URL, DATABASE_URL]"),
        "{help}"
    );
    assert!(help.contains("--until"), "{help}");
}

#[test]
fn a_malformed_database_url_is_a_usage_error_naming_the_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let input = real("variants/uppercase_header_dmy_232.csv");
    let o = rfm(&[
        "run",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--database-url",
        "postgresql://rfm@host:notaport/db",
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--database-url"), "{err}");
    assert!(!out.exists(), "no run folder for a usage error");
    let o = rfm(&[
        "runs",
        "--database-url",
        "postgresql://rfm@host:notaport/db",
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("invalid database URL"), "{err}");
}
