//! Input formats through the `rfm` binary: `rfm gen --format` writes each
//! format and `rfm run` reads it to the CSV's result; `--format` overrides
//! the extension; damaged compressed or Parquet files fail with exit 3,
//! naming the file, leaving only a failed run.json.

use crate::support::{ok, rfm};
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn results(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    (
        std::fs::read(dir.join("customers.csv")).unwrap(),
        std::fs::read(dir.join("segments.csv")).unwrap(),
    )
}

#[test]
fn every_generated_format_gives_the_csv_result() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let mut want = None;
    for ext in ["csv", "csv.gz", "csv.zst", "parquet"] {
        let input = t.join(format!("g.{ext}"));
        ok(rfm(&[
            "gen",
            "--rows",
            "150000",
            "--seed",
            "9",
            "--out",
            s(&input),
        ]));
        let out = t.join(format!("out-{ext}"));
        ok(rfm(&["run", s(&input), "--out", s(&out), "-q"]));
        let got = results(&out);
        match &want {
            None => want = Some(got),
            Some(w) => assert!(&got == w, "{ext} differs from the CSV's results"),
        }
    }
    // The format named, whatever the extension.
    let input = t.join("export.dat");
    ok(rfm(&[
        "gen",
        "--rows",
        "150000",
        "--seed",
        "9",
        "--out",
        s(&input),
        "--format",
        "parquet",
    ]));
    assert_eq!(&std::fs::read(&input).unwrap()[..4], b"PAR1");
    let out = t.join("out-dat");
    ok(rfm(&[
        "run",
        s(&input),
        "--format",
        "parquet",
        "--out",
        s(&out),
        "-q",
    ]));
    assert!(results(&out) == want.unwrap());
}

#[test]
fn an_unknown_format_is_a_usage_error_listing_the_formats() {
    let o = rfm(&["run", "x.csv", "--format", "json"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("csv, csv.gz, csv.zst, parquet, xlsx"), "{err}");
}

/// A failed run: exit 3, the file named (with no embedded worker's name
/// before it), only a failed run.json left.
fn check_failed(input: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec!["run", s(input), "--out", s(out)];
    args.extend_from_slice(extra);
    let o = rfm(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let name = input.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(name), "{err}");
    // The embedded cluster's worker is no part of the user's error.
    assert!(!err.contains("worker 127.0.0.1"), "{err}");
    let names: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["run.json"], "{err}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(report["status"], "failed", "{report}");
    assert!(
        report["error"].as_str().unwrap_or_default().contains(name),
        "{report}"
    );
}

#[test]
fn damaged_inputs_fail_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    for ext in ["csv.gz", "csv.zst"] {
        let whole = t.join(format!("whole.{ext}"));
        ok(rfm(&["gen", "--rows", "50000", "--out", s(&whole)]));
        let bytes = std::fs::read(&whole).unwrap();
        let cut = t.join(format!("cut.{ext}"));
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        check_failed(&cut, &t.join(format!("out-{ext}")), &[]);
    }
    let whole = t.join("whole.parquet");
    ok(rfm(&["gen", "--rows", "50000", "--out", s(&whole)]));
    let mut bytes = std::fs::read(&whole).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n - 300..n - 8] {
        *b = b.wrapping_add(77);
    }
    let corrupt = t.join("corrupt.parquet");
    std::fs::write(&corrupt, &bytes).unwrap();
    check_failed(&corrupt, &t.join("out-corrupt"), &[]);
    // A CSV read as Parquet is no Parquet file.
    let plain = t.join("plain.csv");
    ok(rfm(&["gen", "--rows", "100", "--out", s(&plain)]));
    check_failed(&plain, &t.join("out-plain"), &["--format", "parquet"]);
}

#[test]
fn a_parquet_file_without_a_price_fails_like_a_csv_header_without_it() {
    use arrow::array::{ArrayRef, Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let tmp = tempfile::tempdir().unwrap();
    let pq = tmp.path().join("noprice.parquet");
    let names = ["InvoiceNo", "Quantity", "InvoiceDate", "CustomerID"];
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Int64, false))
            .collect::<Vec<_>>(),
    ));
    let cols: Vec<ArrayRef> = names
        .iter()
        .map(|_| Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    let file = std::fs::File::create(&pq).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let out = tmp.path().join("out");
    check_failed(&pq, &out, &[]);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("required column price is missing"),
        "{report}"
    );
}

#[test]
fn a_directory_reads_every_format_in_it_and_no_hidden_or_other_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("exports");
    std::fs::create_dir(&dir).unwrap();
    let rows = 3000;
    let names = ["a.csv", "b.CSV.GZ", "c.csv.zst", "d.parquet", "e.xlsx"];
    for (seed, name) in names.iter().enumerate() {
        ok(rfm(&[
            "gen",
            "--rows",
            &rows.to_string(),
            "--seed",
            &seed.to_string(),
            "--out",
            s(&dir.join(name)),
        ]));
    }
    // Neither a hidden file (a copy in progress) nor another name is read:
    // either would fail the run.
    std::fs::write(dir.join(".b.csv.gz.partial.csv"), "not,a,header\n1,2,3\n").unwrap();
    std::fs::write(dir.join("notes.txt"), "no header here\n").unwrap();
    std::fs::create_dir(dir.join("old.csv")).unwrap();
    let out = tmp.path().join("out");
    ok(rfm(&["run", s(&dir), "--out", s(&out), "-q"]));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    let files: Vec<String> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            Path::new(f["file"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(files, names, "{report}");
    assert_eq!(report["lines_read"], rows * names.len() as u64, "{report}");
}
