//! `rfm segments`, `customers`, `customer`, `export` and `completions`
//! through the real binary, on runs of the real UCI file kept under a results
//! root (no database), checked against the DuckDB reference outputs.

use std::path::Path;

use crate::support::{ok, rfm, REFERENCE, UCI};
use serde_json::Value;
use sha2::{Digest, Sha256};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/sample.csv");
fn json(args: &[&str]) -> Value {
    serde_json::from_slice(&ok(rfm(args)).stdout).expect("JSON on stdout")
}

fn run_id(root: &Path, input: &str) -> String {
    let o = ok(rfm(&[
        "run",
        input,
        "--results-root",
        root.to_str().unwrap(),
        "--threads",
        "2",
        "--json",
    ]));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    report["run_id"].as_str().unwrap().to_string()
}

fn expect_failure(args: &[&str], code: i32, fragment: &str) {
    let o = rfm(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(fragment), "stderr lacks {fragment:?}: {err}");
}

#[test]
fn runs_under_the_results_root_are_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("results");
    let r = root.to_str().unwrap();
    let uci = run_id(&root, UCI);
    let sample = run_id(&root, SAMPLE);
    assert!(root.join(&uci).join("customers.csv").is_file());
    // Scoring's cut points travel with the report to run.json (`rfm customer`
    // below reads them from there): the reference's bounds.
    let report: Value =
        serde_json::from_slice(&std::fs::read(root.join(&uci).join("run.json")).unwrap()).unwrap();
    let cut = &report["cut_points"];
    assert_eq!(cut["recency"][4], serde_json::json!([5, 1, 13]), "{cut}");
    assert_eq!(cut["frequency"][4], serde_json::json!([5, 6, 209]), "{cut}");
    assert_eq!(
        cut["monetary"][0],
        serde_json::json!([1, "3.75", "250.15"]),
        "{cut}"
    );

    // The latest run started last; runs started in the same second are
    // ordered by run id (never by file times). --run picks the other one.
    let started = |id: &str| -> String {
        let text = std::fs::read_to_string(root.join(id).join("run.json")).unwrap();
        let report: Value = serde_json::from_str(&text).unwrap();
        report["started_at"].as_str().unwrap().to_string()
    };
    let latest_id = std::cmp::max((started(&uci), &uci), (started(&sample), &sample)).1;
    let latest = json(&["segments", "--results-root", r, "--json"]);
    let total: u64 = latest
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["customers"].as_u64().unwrap())
        .sum();
    assert_eq!(
        total == 4338,
        *latest_id == uci,
        "the latest run is {latest_id}"
    );
    let runs = json(&["runs", "--results-root", r, "--json"]);
    assert_eq!(runs[0]["run_id"], latest_id.as_str());
    assert_eq!(runs[0]["latest"], true);

    check_uci(&["--results-root", r, "--run", &uci], dir.path());

    // Bad input: a clear message and the documented exit code.
    expect_failure(
        &["customer", "99999", "--results-root", r],
        3,
        "customer \"99999\" is not in run",
    );
    expect_failure(
        &["segments", "--results-root", r, "--run", "nosuch"],
        3,
        "no run \"nosuch\"",
    );
    expect_failure(
        &["customers", "--results-root", r, "--segment", "Winners"],
        2,
        "is not a segment",
    );
    expect_failure(
        &["customers", "--results-root", r, "--sort", "height"],
        2,
        "height",
    );
    // An export into a missing folder: an output error naming the file, and
    // nothing left behind.
    let nowhere = dir.path().join("no-such-dir").join("x.parquet");
    expect_failure(
        &[
            "export",
            "--results-root",
            r,
            "--out",
            nowhere.to_str().unwrap(),
        ],
        4,
        "no-such-dir/x.parquet",
    );
    assert!(!dir.path().join("no-such-dir").exists());
    let missing = dir.path().join("nothing-here");
    expect_failure(
        &["segments", "--results-root", missing.to_str().unwrap()],
        3,
        "nothing-here",
    );
}

/// `head` followed by the options that select the run.
fn with<'a>(head: &[&'a str], from: &[&'a str]) -> Vec<&'a str> {
    head.iter().chain(from).copied().collect()
}

/// The UCI run read back through `from` (a results root or a database)
/// matches the DuckDB reference.
fn check_uci(from: &[&str], tmp: &Path) {
    // Segments, as the reference's segments.csv.
    let segments = json(&with(&["segments", "--json"], from));
    let reference =
        std::fs::read_to_string(format!("{REFERENCE}/online_retail.segments.csv")).unwrap();
    let got: Vec<String> = segments
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let f = |k: &str| match &s[k] {
                Value::String(t) => t.clone(),
                v => v.to_string(),
            };
            [
                "segment",
                "customers",
                "customers_share",
                "revenue",
                "revenue_share",
                "avg_recency",
                "avg_frequency",
                "avg_monetary",
            ]
            .map(f)
            .join(",")
        })
        .collect();
    let want: Vec<&str> = reference.lines().skip(1).collect();
    assert_eq!(got, want);

    // customer 12347 explained: the reference's figures and cut points.
    let v = json(&with(&["customer", "12347", "--json"], from));
    let c = &v["customer"];
    assert_eq!(c["recency"], 3);
    assert_eq!(c["frequency"], 7);
    assert_eq!(c["monetary"], "4310.00");
    assert_eq!(
        (&c["r"], &c["f"], &c["m"]),
        (&5.into(), &5.into(), &5.into())
    );
    assert_eq!(c["rfm_score"], "555");
    assert_eq!(c["segment"], "Champions");
    assert_eq!(c["country"], "Iceland");
    assert_eq!(v["segment_rule"], "R = 5 and F ≥ 4");
    let cp = &v["cut_points"];
    let point =
        |k: i32, lo: Value, hi: Value| serde_json::json!({"score": k, "min": lo, "max": hi});
    assert_eq!(cp["recency"][4], point(5, 1.into(), 13.into()));
    assert_eq!(cp["recency"][0], point(1, 180.into(), 374.into()));
    assert_eq!(cp["frequency"][4], point(5, 6.into(), 209.into()));
    assert_eq!(
        cp["monetary"][4],
        point(5, "2062.06".into(), "280206.02".into())
    );
    assert_eq!(cp["monetary"][0], point(1, "3.75".into(), "250.15".into()));
    let text = String::from_utf8(ok(rfm(&with(&["customer", "12347"], from))).stdout).unwrap();
    assert!(text.contains("R 5 = 1 – 13 days"), "{text}");
    assert!(text.contains("Champions: R = 5 and F ≥ 4"), "{text}");

    // Filters and sorting.
    let top = json(&with(
        &[
            "customers",
            "--segment",
            "champions",
            "--sort",
            "monetary",
            "--desc",
        ],
        &with(&["--limit", "2", "--json"], from),
    ));
    let ids: Vec<&str> = top
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["customer_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["14646", "18102"]);
    let iceland = json(&with(&["customers", "--search", "icel", "--json"], from));
    assert_eq!(iceland.as_array().unwrap().len(), 1);

    // Export: byte-identical to the reference's customers.csv.
    let out = tmp.join("export.csv");
    let out = out.to_str().unwrap();
    ok(rfm(&with(
        &["export", "--format", "csv", "--out", out],
        from,
    )));
    let digest = format!("{:x}", Sha256::digest(std::fs::read(out).unwrap()));
    let want =
        std::fs::read_to_string(format!("{REFERENCE}/online_retail.customers.sha256")).unwrap();
    let want = want.split_whitespace().next().unwrap();
    assert_eq!(digest, want);

    // Parquet (chosen by the file name): typed columns that, printed the way
    // customers.csv prints them, give the reference's bytes.
    let out = tmp.join("export.parquet");
    ok(rfm(&with(
        &["export", "--out", out.to_str().unwrap()],
        from,
    )));
    let csv = customers_csv_of_parquet(&out);
    assert_eq!(format!("{:x}", Sha256::digest(&csv)), want);
}

/// `rfm run` computes on the process's one pool, the coordinator's merges
/// and scoring included, with as many threads as `--threads` gives: every
/// size, the machine's own among them, gives the reference's bytes.
#[test]
fn every_thread_count_gives_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let want =
        std::fs::read_to_string(format!("{REFERENCE}/online_retail.customers.sha256")).unwrap();
    let want = want.split_whitespace().next().unwrap();
    let segments = std::fs::read(format!("{REFERENCE}/online_retail.segments.csv")).unwrap();
    for threads in [None, Some("1"), Some("3")] {
        let out = dir
            .path()
            .join(format!("out-{}", threads.unwrap_or("default")));
        let out = out.to_str().unwrap();
        let mut args = vec!["run", UCI, "--no-cache", "--out", out, "-q"];
        args.extend(threads.iter().flat_map(|t| ["--threads", *t]));
        ok(rfm(&args));
        let customers = std::fs::read(format!("{out}/customers.csv")).unwrap();
        assert_eq!(
            format!("{:x}", Sha256::digest(&customers)),
            want,
            "customers.csv with --threads {threads:?}"
        );
        assert!(
            std::fs::read(format!("{out}/segments.csv")).unwrap() == segments,
            "segments.csv with --threads {threads:?}"
        );
    }
}

/// The rows of an exported Parquet file, written as `customers.csv`.
fn customers_csv_of_parquet(path: &Path) -> Vec<u8> {
    use arrow::array::{
        Array, AsArray, Decimal128Array, Int32Array, Int64Array, TimestampSecondArray, UInt8Array,
    };
    use arrow::datatypes::DataType;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let schema = reader.schema().clone();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, rfm_core::output::CUSTOMERS_HEADER);
    assert_eq!(
        schema.field_with_name("monetary").unwrap().data_type(),
        &DataType::Decimal128(38, 2)
    );
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(rfm_core::output::CUSTOMERS_HEADER).unwrap();
    for batch in reader.build().unwrap() {
        let batch = batch.unwrap();
        let col = |i: usize| batch.column(i).as_ref();
        let text = |i: usize, row: usize| col(i).as_string::<i32>().value(row).to_string();
        let int = |i: usize, row: usize| match col(i).data_type() {
            DataType::Int32 => col(i)
                .as_any()
                .downcast_ref::<Int32Array>()
                .unwrap()
                .value(row) as i64,
            DataType::Int64 => col(i)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(row),
            DataType::UInt8 => col(i)
                .as_any()
                .downcast_ref::<UInt8Array>()
                .unwrap()
                .value(row) as i64,
            other => panic!("column {i} is {other}"),
        };
        let time = |i: usize, row: usize| {
            let a = col(i)
                .as_any()
                .downcast_ref::<TimestampSecondArray>()
                .unwrap();
            rfm_core::date::format_timestamp(a.value(row))
        };
        let money = col(3).as_any().downcast_ref::<Decimal128Array>().unwrap();
        for row in 0..batch.num_rows() {
            assert!(!money.is_null(row));
            w.write_record([
                text(0, row),
                int(1, row).to_string(),
                int(2, row).to_string(),
                money.value_as_string(row),
                time(4, row),
                time(5, row),
                text(6, row),
                int(7, row).to_string(),
                int(8, row).to_string(),
                int(9, row).to_string(),
                text(10, row),
                text(11, row),
            ])
            .unwrap();
        }
    }
    w.into_inner().unwrap()
}

#[test]
fn a_published_run_is_read_back_from_postgresql() {
    let db = rfm_store::testing::database();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    ok(rfm(&[
        "run",
        UCI,
        "--out",
        out.to_str().unwrap(),
        "-q",
        "--database-url",
        &db.url,
    ]));
    check_uci(&["--database-url", &db.url], tmp.path());
    let o = rfm(&["segments", "--database-url", &db.url, "--run", "nosuch"]);
    assert_eq!(
        o.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("nosuch"));
}

#[test]
fn completions_cover_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let script = String::from_utf8(ok(rfm(&["completions", shell])).stdout).unwrap();
        for word in ["segments", "customers", "export", "--results-root"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    expect_failure(&["completions", "cmd.exe"], 2, "cmd.exe");
}
