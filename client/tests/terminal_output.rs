//! What `rfm` prints for people holds no control character from the data (a
//! CSV must not retitle, clear or colour the terminal: they are shown as
//! `\x1b`), and a huge bad value makes a short message and a small run.json.

use std::path::Path;
use std::process::{Command, Output};

fn rfm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rfm"))
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("rfm runs")
}

/// The control characters in `bytes` (C0 but line feed, DEL, and C1 as
/// UTF-8), with their offsets.
fn control_bytes(bytes: &[u8]) -> Vec<(usize, String)> {
    String::from_utf8_lossy(bytes)
        .char_indices()
        .filter(|(_, c)| c.is_control() && *c != '\n')
        .map(|(i, c)| (i, format!("{:?}", c)))
        .collect()
}

fn assert_clean(what: &str, bytes: &[u8]) {
    let found = control_bytes(bytes);
    assert!(
        found.is_empty(),
        "{what} holds control characters {found:?}:\n{}",
        String::from_utf8_lossy(bytes)
    );
}

const TITLE: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J";

/// 200 good lines (country with a colour sequence and a C1 CSI for one
/// customer) and one malformed line carrying a title change and a screen clear.
fn hostile_csv(dir: &Path) -> std::path::PathBuf {
    let mut text = String::from("InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n");
    for i in 0..200 {
        let country = if i == 0 {
            "UK\u{1b}[31mred\u{9b}1m"
        } else {
            "France"
        };
        let customer = if i == 0 { 11111 } else { 12000 + i % 50 };
        text.push_str(&format!(
            "{},1,12/1/2010 8:26,2.5,{customer},{country}\n",
            1000 + i
        ));
    }
    text.push_str(&format!(
        "9999,2{TITLE},12/1/2010 8:26,2.5,17850,UK{TITLE}\n"
    ));
    let path = dir.join("hostile.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn data_cannot_drive_the_terminal() {
    let d = tempfile::tempdir().unwrap();
    let input = hostile_csv(d.path());
    let root = d.path().join("runs");
    let out = root.join("r");
    let o = rfm(&[
        "run",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--max-malformed-share",
        "0.5",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_clean("the run summary", &o.stdout);
    assert_clean("the run's stderr", &o.stderr);
    let summary = String::from_utf8_lossy(&o.stdout);
    assert!(
        summary.contains("\\x1b]0;pwned\\x07\\x1b[2J"),
        "the sample is shown, escaped: {summary}"
    );

    // Tables of the run's results.
    let root = root.to_str().unwrap();
    for args in [
        vec!["customers", "--results-root", root],
        vec!["customer", "11111", "--results-root", root],
        vec!["segments", "--results-root", root],
        vec!["runs", "--results-root", root],
    ] {
        let o = rfm(&args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_clean(&format!("rfm {args:?}"), &o.stdout);
        if args[0].starts_with("customer") {
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(text.contains("UK\\x1b[31mred\\u{9b}1m"), "{text}");
        }
    }

    // Error messages: over the malformed limit (quoting the value), and a
    // header that quotes itself.
    let o = rfm(&[
        "run",
        input.to_str().unwrap(),
        "--out",
        d.path().join("x").to_str().unwrap(),
        "--max-malformed-share",
        "0.001",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert_clean("the malformed-limit error", &o.stderr);
    let header = d.path().join("header.csv");
    std::fs::write(
        &header,
        format!("InvoiceNo,Quantity,InvoiceDate{TITLE},UnitPrice,Country\n1,2,x,2.5,UK\n"),
    )
    .unwrap();
    let o = rfm(&[
        "run",
        header.to_str().unwrap(),
        "--out",
        d.path().join("y").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert_clean("the header error", &o.stderr);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("InvoiceDate\\x1b]0;pwned"), "{err}");
}

#[test]
fn a_huge_bad_value_makes_a_short_message_and_a_small_report() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("huge.csv");
    let mut text =
        String::from("InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n1,2,12/1/2010 8:26,2.5,17850,UK\n");
    text.push_str("2,2");
    text.push_str(&"9".repeat(5_000_000));
    text.push_str("x,12/1/2010 8:26,2.5,17850,UK\n");
    std::fs::write(&input, text).unwrap();
    let out = d.path().join("out");
    let o = rfm(&[
        "run",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        // A record this long is read as a record (the default limit, 1 MiB,
        // would make it one over-long malformed line before its fields).
        "--max-record-size",
        "16MiB",
    ]);
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.len() < 4_000, "a {} byte message", err.len());
    assert!(
        err.contains("(5000002 bytes)"),
        "the cut says how long: {err}"
    );
    let report = std::fs::metadata(out.join("run.json")).unwrap().len();
    assert!(report < 16_000, "a {report} byte run.json");
}
