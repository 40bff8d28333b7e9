//! `rfm run` through the real binary on inputs at the edges of the spec: files
//! and chunks with no purchase line, amounts at the bound of the exact range,
//! customer ids in two byte forms or holding control characters. Expected
//! figures are the DuckDB reference's outputs for the same inputs
//! (`reference_duckdb.py`), written into the tests.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{rfm, UCI};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The reference's `customers.csv` of the first 300 data lines of the UCI file (sha256).
const FIRST_300_CUSTOMERS_SHA256: &str =
    "f4739049586879729818ab36cbafc1a7965cdcaad2749fab6fcf895742cd8711";
/// The reference's `segments.csv` of the same lines.
const FIRST_300_SEGMENTS: &str = "\
segment,customers,customers_share,revenue,revenue_share,avg_recency,avg_frequency,avg_monetary
About to Sleep,1,0.045455,350.40,0.025889,1.00,1.00,350.40
Can't Lose Them,1,0.045455,366.63,0.027089,1.00,3.00,366.63
Champions,4,0.181818,1905.20,0.140766,1.00,2.50,476.30
Hibernating,9,0.409091,3818.05,0.282097,1.00,1.00,424.23
Loyal Customers,3,0.136364,5658.71,0.418095,1.00,1.33,1886.24
Need Attention,2,0.090909,778.78,0.057540,1.00,1.00,389.39
Potential Loyalists,2,0.090909,656.74,0.048523,1.00,1.00,328.37
";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `rfm run INPUT --out OUT EXTRA…`, which must succeed; returns OUT.
fn run_ok(input: &Path, out: &Path, extra: &[&str]) -> PathBuf {
    let mut args = vec![
        "run",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = rfm(&args);
    assert!(
        o.status.success(),
        "{args:?}: exit {:?}: {}",
        o.status.code(),
        stderr(&o)
    );
    out.to_path_buf()
}

/// `rfm run INPUT --out OUT`, which must fail with `code` and write no result
/// file; returns stderr and the failed run's report.
fn run_failing(input: &Path, out: &Path, extra: &[&str], code: i32) -> (String, Value) {
    let mut args = vec![
        "run",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = rfm(&args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for f in ["customers.csv", "segments.csv"] {
        assert!(!out.join(f).exists(), "{f} written by a failed run");
    }
    (err, report(out))
}

fn report(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap()
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// The UCI header and its first `n` data lines, each with its `\n`.
fn uci_head(n: usize) -> Vec<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(UCI)
        .unwrap()
        .take(200_000)
        .read_to_end(&mut head)
        .unwrap();
    head.split_inclusive(|&b| b == b'\n')
        .take(n + 1)
        .map(<[u8]>::to_vec)
        .collect()
}

/// Checks a run's results are the reference's for the first 300 UCI lines.
fn assert_first_300_results(out: &Path) {
    let segments = read(out.join("segments.csv"));
    assert_eq!(String::from_utf8_lossy(&segments), FIRST_300_SEGMENTS);
    assert_eq!(
        sha256_hex(&read(out.join("customers.csv"))),
        FIRST_300_CUSTOMERS_SHA256,
        "customers.csv differs from the reference's"
    );
}

#[test]
fn a_file_of_only_returns_beside_a_normal_file_is_ordinary_data() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("daily");
    std::fs::create_dir(&input).unwrap();
    let lines = uci_head(300);
    std::fs::write(input.join("a.csv"), lines.concat()).unwrap();
    let mut returns = lines[0].clone();
    returns.extend_from_slice(
        b"C536379,D,Discount,-1,2010-12-01 09:41:00,27.50,14527.0,United Kingdom\n",
    );
    std::fs::write(input.join("b.csv"), &returns).unwrap();

    let out = run_ok(&input, &d.path().join("out"), &[]);
    assert_first_300_results(&out);
    let r = report(&out);
    assert_eq!(r["lines_read"], 301);
    assert_eq!(r["purchase_lines"], 291);
    assert_eq!(r["excluded"]["cancellation"], 10);
    assert_eq!(r["customers"], 22);

    // The file of returns alone: an input error naming it, with its counts.
    let alone = d.path().join("returns.csv");
    std::fs::write(&alone, &returns).unwrap();
    let (err, r) = run_failing(&alone, &d.path().join("out-returns"), &[], 3);
    assert!(
        err.contains("no purchase line in")
            && err.contains("returns.csv: 1 line read, 1 cancellation"),
        "{err}"
    );
    assert_eq!(r["status"], "failed");
    assert_eq!(r["excluded"]["cancellation"], 1);
}

#[test]
fn a_chunk_of_only_missing_customers_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let lines = uci_head(300);
    let mut text = lines[..151].concat();
    // 2,000 lines (about 170 KB) without a customer: whole 32 KiB chunks of them.
    let no_customer: &[u8] =
        b"536544,21773,DECORATIVE ROSE BATHROOM BOTTLE,1,2010-12-01 14:32:00,2.51,,United Kingdom\n";
    text.extend_from_slice(&no_customer.repeat(2000));
    text.extend_from_slice(&lines[151..].concat());
    let input = d.path().join("with-gap.csv");
    std::fs::write(&input, text).unwrap();

    let default = run_ok(&input, &d.path().join("default"), &[]);
    let small = run_ok(&input, &d.path().join("small"), &["--chunk-size", "32KiB"]);
    assert_first_300_results(&default);
    for f in ["customers.csv", "segments.csv"] {
        assert_eq!(read(small.join(f)), read(default.join(f)), "{f}");
    }
    let (a, b) = (report(&default), report(&small));
    for key in [
        "lines_read",
        "purchase_lines",
        "excluded",
        "malformed",
        "customers",
    ] {
        assert_eq!(a[key], b[key], "{key}");
    }
    assert_eq!(a["lines_read"], 2300);
    assert_eq!(a["excluded"]["missing_customer"], 2000);
}

#[test]
fn a_header_and_a_blank_line_is_an_input_error() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("blank.csv");
    std::fs::write(
        &input,
        "InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\n",
    )
    .unwrap();
    let (err, r) = run_failing(&input, &d.path().join("out"), &[], 3);
    assert!(
        err.contains("no purchase line in")
            && err.contains("blank.csv: no data line after the header"),
        "{err}"
    );
    assert_eq!(r["lines_read"], 0);
}

const MONEY_HEADER: &str = "InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n";

#[test]
fn totals_beyond_the_exact_range_fail_the_run() {
    // Each customer is within the range; their total (1.8e20) is not, and
    // beyond i128 at 18 decimals it used to wrap to a negative revenue.
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("huge.csv");
    std::fs::write(
        &input,
        format!(
            "{MONEY_HEADER}1,1,2011-01-01 10:00:00,90000000000000000000,A1,UK\n\
             2,1,2011-01-02 10:00:00,90000000000000000000,B2,UK\n"
        ),
    )
    .unwrap();
    let (err, r) = run_failing(&input, &d.path().join("out"), &[], 3);
    assert!(
        err.contains("money overflow: the total revenue of the 2 customers")
            && err.contains("at most 20 digits before the decimal point"),
        "{err}"
    );
    assert_eq!(r["status"], "failed");
    assert_eq!(r["revenue"], Value::Null);
}

#[test]
fn amounts_just_inside_the_exact_range_work_end_to_end() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("bound.csv");
    std::fs::write(
        &input,
        format!(
            "{MONEY_HEADER}1,1,2011-01-01 10:00:00,99999999999999999999.98,A1,UK\n\
             2,1,2011-01-02 10:00:00,0.01,B2,UK\n"
        ),
    )
    .unwrap();
    let root = d.path().join("results");
    let o = rfm(&[
        "run",
        input.to_str().unwrap(),
        "--results-root",
        root.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["revenue"], "99999999999999999999.99");
    let out = root.join(r["run_id"].as_str().unwrap());
    // The reference's outputs for this file.
    assert_eq!(
        String::from_utf8(read(out.join("customers.csv"))).unwrap(),
        "customer_id,recency,frequency,monetary,first_purchase,last_purchase,country,r,f,m,rfm_score,segment\n\
         A1,2,1,99999999999999999999.98,2011-01-01 10:00:00,2011-01-01 10:00:00,UK,1,1,2,112,Hibernating\n\
         B2,1,1,0.01,2011-01-02 10:00:00,2011-01-02 10:00:00,UK,2,2,1,221,Hibernating\n"
    );
    assert_eq!(
        String::from_utf8(read(out.join("segments.csv"))).unwrap(),
        "segment,customers,customers_share,revenue,revenue_share,avg_recency,avg_frequency,avg_monetary\n\
         Hibernating,2,1.000000,99999999999999999999.99,1.000000,1.50,1.00,50000000000000000000.00\n"
    );

    // The Parquet export holds the value too.
    let parquet = d.path().join("bound.parquet");
    let o = rfm(&[
        "export",
        "--results-root",
        root.to_str().unwrap(),
        "--out",
        parquet.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        parquet_monetary(&parquet),
        ["99999999999999999999.98", "0.01"]
    );
}

/// The `monetary` column of an exported Parquet file, as text.
fn parquet_monetary(path: &Path) -> Vec<String> {
    use arrow::array::{Array, Decimal128Array};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut values = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let column = batch.column_by_name("monetary").unwrap();
        let money = column.as_any().downcast_ref::<Decimal128Array>().unwrap();
        values.extend((0..money.len()).map(|i| money.value_as_string(i)));
    }
    values
}

/// Ids in two byte forms (`Ren` + `C3 A9` / `E9`, `Zo` + `C3 AB` / `EB`), one
/// invalid UTF-8 id (`C3 28`, read as ISO-8859-1 `Ã(`), a trimmed id, and six
/// ids with a control character (NUL, ESC, DEL, tab, quoted line break, US).
const IDS_CSV: &[u8] =
    b"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
1001,A,x,2,2011-01-01 10:00:00,2.50,Ren\xc3\xa9,France
1004,A,x,1,2011-01-01 09:00:00,4.00,12346,United Kingdom
1002,A,x,1,2011-01-02 10:00:00,1.00,Ren\xe9,France
1005,B,x,1,2011-01-02 09:00:00,4.00,\xe9,France
1003,A,x,3,2011-01-03 10:00:00,1.25,Ren\xe9,Belgium
1006,B,x,2,2011-01-04 09:00:00,4.00,\xc3\xa9,France
1007,B,x,1,2011-01-03 09:00:00,1.00,z,France
1013,B,x,1,2011-01-03 09:00:00,1.00,\xc3\x28,France
1014,B,x,5,2011-01-02 09:00:00,1.00,Zo\xc3\xab,France
1017,B,x,5,2011-01-04 09:00:00,1.10,Zo\xeb,Spain
1015,B,x,1,2011-01-03 09:00:00,7.00, \t12346\t ,United Kingdom
1008,A,x,1,2011-01-03 09:00:00,1.00,12\x0046,United Kingdom
1009,A,x,1,2011-01-03 09:00:00,1.00,\x1b[31m,United Kingdom
1010,A,x,1,2011-01-03 09:00:00,1.00,12346\x7f,United Kingdom
1011,A,x,1,2011-01-03 09:00:00,1.00,\"12\t346\",United Kingdom
1016,A,x,1,2011-01-03 09:00:00,1.00,\"a\nb\",United Kingdom
1018,A,x,1,2011-01-03 09:00:00,1.00,\"\x1f\",United Kingdom
";

/// The reference's `customers.csv` of [`IDS_CSV`] (the reference cannot read
/// a NUL byte, so it ran without that line; a malformed line changes no customer).
const IDS_CUSTOMERS: &[u8] = b"customer_id,recency,frequency,monetary,first_purchase,last_purchase,country,r,f,m,rfm_score,segment
12346,2,2,11.00,2011-01-01 09:00:00,2011-01-03 09:00:00,United Kingdom,1,2,4,124,Hibernating
Ren\xc3\xa9,2,3,9.75,2011-01-01 10:00:00,2011-01-03 10:00:00,France,1,5,2,152,Can't Lose Them
Zo\xc3\xab,1,2,10.50,2011-01-02 09:00:00,2011-01-04 09:00:00,France,4,3,3,433,Potential Loyalists
z,2,1,1.00,2011-01-03 09:00:00,2011-01-03 09:00:00,France,2,1,1,211,Hibernating
\xc3\x83(,2,1,1.00,2011-01-03 09:00:00,2011-01-03 09:00:00,France,3,1,1,311,About to Sleep
\xc3\xa9,1,2,12.00,2011-01-02 09:00:00,2011-01-04 09:00:00,France,5,4,5,545,Champions
";

#[test]
fn two_byte_forms_of_an_id_are_one_customer_and_control_characters_are_malformed() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("ids.csv");
    std::fs::write(&input, IDS_CSV).unwrap();
    let lenient = ["--max-malformed-share", "0.5"];
    // 64-byte chunks: the byte forms of one id meet only when states merge.
    let small = run_ok(
        &input,
        &d.path().join("small"),
        &[&lenient[..], &["--chunk-size", "64"]].concat(),
    );
    let default = run_ok(&input, &d.path().join("default"), &lenient);
    assert_eq!(
        String::from_utf8_lossy(&read(small.join("customers.csv"))),
        String::from_utf8_lossy(IDS_CUSTOMERS)
    );
    for f in ["customers.csv", "segments.csv"] {
        assert_eq!(read(small.join(f)), read(default.join(f)), "{f}");
    }
    let r = report(&small);
    assert_eq!(r["lines_read"], 17);
    assert_eq!(r["purchase_lines"], 11);
    assert_eq!(r["malformed"], 6);
    assert_eq!(r["customers"], 6);
    let samples = r["malformed_samples"].as_array().unwrap();
    let problems: Vec<&str> = samples
        .iter()
        .map(|s| s["problem"].as_str().unwrap())
        .collect();
    for (i, code) in ["U+0000", "U+001B", "U+007F", "U+0009", "U+000A"]
        .iter()
        .enumerate()
    {
        assert!(
            problems[i].contains("control character") && problems[i].contains(code),
            "sample {i}: {problems:?}"
        );
    }
    assert_eq!(samples[0]["line"], 13);
}

#[test]
fn ids_in_two_byte_forms_publish_and_an_overflowing_run_publishes_nothing() {
    let db = rfm_store::testing::database();
    let d = tempfile::tempdir().unwrap();
    let ids = d.path().join("ids.csv");
    std::fs::write(&ids, IDS_CSV).unwrap();
    let database = ["--database-url", db.url.as_str(), "-q"];
    run_ok(
        &ids,
        &d.path().join("ids-out"),
        &[&database[..], &["--max-malformed-share", "0.5"]].concat(),
    );
    let json = |args: &[&str]| -> Value {
        let o = rfm(&[args, &["--database-url", db.url.as_str(), "--json"]].concat());
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let customers = json(&["customers"]);
    let mut published: Vec<&str> = customers
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["customer_id"].as_str().unwrap())
        .collect();
    published.sort_unstable();
    assert_eq!(published, ["12346", "René", "Zoë", "z", "Ã(", "é"]);
    let rene = json(&["customer", "René"]);
    assert_eq!(rene["customer"]["frequency"], 3);
    assert_eq!(rene["customer"]["monetary"], "9.75");

    let huge = d.path().join("huge.csv");
    std::fs::write(
        &huge,
        format!(
            "{MONEY_HEADER}1,1,2011-01-01 10:00:00,90000000000000000000,A1,UK\n\
             2,1,2011-01-02 10:00:00,90000000000000000000,B2,UK\n"
        ),
    )
    .unwrap();
    let (err, _) = run_failing(&huge, &d.path().join("huge-out"), &database, 3);
    assert!(err.contains("money overflow"), "{err}");
    let runs = json(&["runs"]);
    // Both runs may have started in the same second: the order among them
    // is then by run id, so find the failed one by its status.
    let failed = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "failed")
        .expect("the failed run is listed");
    assert_eq!(failed["latest"], false);
    assert!(
        failed["error"].as_str().unwrap().contains("money overflow"),
        "{failed}"
    );
    // The latest published run is still the one of the ids file.
    assert_eq!(json(&["customers"]), customers);
}
