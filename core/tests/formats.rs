//! The real UCI file as `.csv.gz`, `.csv.zst` and typed Parquet gives the
//! reference's results (segments.csv bytes, customers.csv sha256, line
//! counts); malformed lines keep their CSV line numbers; damaged files fail
//! with the file named.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::common::uci_parquet::{write_uci_parquet, write_uci_parquet_as, Typing};
use crate::common::*;
use rfm_core::engine;
use rfm_core::format::InputFormat;
use rfm_core::RunOptions;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(bytes, ruzstd::encoding::CompressionLevel::Fastest)
}

/// The UCI run's figures are the reference's.
fn check_reference(out: &Outcome, what: &str) {
    let result = out
        .result
        .as_ref()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let want = std::fs::read_to_string(reference("online_retail.segments.csv")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&segments_csv(result)),
        want,
        "{what}: segments.csv"
    );
    let sha = std::fs::read_to_string(reference("online_retail.customers.sha256")).unwrap();
    assert_eq!(
        sha256_hex(&customers_csv(result)),
        sha.trim(),
        "{what}: customers.csv"
    );
    let l = &out.ledger;
    assert_eq!(
        (
            l.lines_read,
            l.purchase_lines,
            l.excluded.missing_customer,
            l.excluded.cancellation,
            l.excluded.price_le_0,
            l.malformed
        ),
        (541_909, 397_884, 135_080, 8_905, 40, 0),
        "{what}: ledger"
    );
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn uci_gzip_and_zstd_give_the_reference_result() {
    let csv = std::fs::read(real_data("online_retail.csv")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Two gzip members (as `cat a.gz b.gz` makes), cut inside a record.
    let cut = csv.len() / 2 + 17;
    let mut two = gzip(&csv[..cut]);
    two.extend(gzip(&csv[cut..]));
    let gz = write(dir.path(), "online_retail.csv.gz", &two);
    check_reference(&run_path(&gz, &RunOptions::default()), "csv.gz");
    // Two zstd frames.
    let mut frames = zstd(&csv[..cut]);
    frames.extend(zstd(&csv[cut..]));
    let zst = write(dir.path(), "online_retail.csv.zst", &frames);
    let out = run_path(&zst, &RunOptions::default());
    assert_eq!(out.files[0].format, InputFormat::CsvZstd);
    check_reference(&out, "csv.zst");
}

#[test]
fn uci_parquet_gives_the_reference_result_whatever_the_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("online_retail.parquet");
    write_uci_parquet(&real_data("online_retail.csv"), &pq, 50_000);
    for chunk_size in [engine::DEFAULT_CHUNK_SIZE, 300_000] {
        let opts = RunOptions {
            chunk_size,
            ..RunOptions::default()
        };
        let out = run_path(&pq, &opts);
        assert_eq!(out.files[0].format, InputFormat::Parquet);
        check_reference(&out, &format!("parquet, chunk size {chunk_size}"));
    }
    let files = engine::open_inputs(pq.to_str().unwrap(), &Default::default()).unwrap();
    let chunks = engine::plan_chunks(&files, 300_000);
    assert!(chunks.len() > 1, "{chunks:?}");
}

#[test]
fn uci_parquet_with_exact_types_or_all_text_gives_the_reference_result() {
    let dir = tempfile::tempdir().unwrap();
    for typing in [Typing::Exact, Typing::Text] {
        let pq = dir.path().join(format!("online_retail_{typing:?}.parquet"));
        write_uci_parquet_as(&real_data("online_retail.csv"), &pq, 50_000, typing);
        let opts = RunOptions {
            chunk_size: 300_000,
            ..RunOptions::default()
        };
        let out = run_path(&pq, &opts);
        check_reference(&out, &format!("parquet, {typing:?} columns"));
        // Valid ISO dates (text) and timestamps both count as ISO dates.
        assert_eq!(out.ledger.dates[0].iso, 541_909, "{typing:?}");
    }
}

/// Runs `batch` written as Parquet and `csv` (the same rows as a CSV export
/// holds them, with the batch's columns) as CSV: the ledgers (counts,
/// malformed samples with their lines, texts and problems, date forms) and
/// the customers are the same. The Parquet file is written four ways:
/// text columns dictionary-encoded (read as dictionary keys), plain, with
/// dictionary pages that overflow into plain pages mid-chunk, and in row
/// groups of two rows, each with its own dictionaries (one state then
/// folds many dictionaries' customers and countries).
fn parquet_reads_as_csv(
    batch: arrow::array::RecordBatch,
    csv: &str,
) -> rfm_core::ledger::LineLedger {
    use parquet::file::properties::WriterProperties;
    let dir = tempfile::tempdir().unwrap();
    let header: Vec<&str> = batch
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    let text = write(
        dir.path(),
        "rows.csv",
        format!("{}\n{csv}", header.join(",")).as_bytes(),
    );
    let opts = RunOptions {
        max_malformed_share: 1.0,
        ..RunOptions::default()
    };
    let mut want = run_path(&text, &opts);
    // A sample's offset is a byte in the CSV file, a row in the Parquet one.
    for s in want.ledger.malformed_samples.iter_mut() {
        s.offset = 0;
    }
    let layouts = [
        ("dictionary", WriterProperties::builder().build()),
        (
            "plain",
            WriterProperties::builder()
                .set_dictionary_enabled(false)
                .build(),
        ),
        (
            "overflowing dictionary",
            WriterProperties::builder()
                .set_dictionary_page_size_limit(8)
                .set_data_page_row_count_limit(2)
                .set_write_batch_size(2)
                .build(),
        ),
        (
            "row groups of two rows",
            WriterProperties::builder()
                .set_max_row_group_row_count(Some(2))
                .build(),
        ),
    ];
    let mut ledger = None;
    for (layout, props) in layouts {
        let pq = dir.path().join(format!("rows {layout}.parquet"));
        let mut w = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&pq).unwrap(),
            batch.schema(),
            Some(props),
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let mut got = run_path(&pq, &opts);
        for s in got.ledger.malformed_samples.iter_mut() {
            s.offset = 0;
        }
        assert_eq!(got.ledger, want.ledger, "{layout}");
        assert_eq!(
            customers_csv(got.result.as_ref().unwrap()),
            customers_csv(want.result.as_ref().unwrap()),
            "{layout}"
        );
        ledger = Some(got.ledger);
    }
    ledger.unwrap()
}

#[test]
fn exact_typed_values_read_as_their_csv_text() {
    use arrow::array::*;
    use arrow::datatypes::Int32Type;
    use std::sync::Arc;
    let t = |s: &str| rfm_core::date::parse_auto(s.as_bytes()).unwrap();
    let day = t("2010-12-01 08:26:00");
    /// Invoice, quantity, seconds, price in cents, customer, country.
    type Row<'a> = (Option<&'a str>, i64, i64, i128, Option<&'a str>, &'a str);
    let rows: Vec<Row> = vec![
        (
            Some("536365"),
            6,
            day,
            255,
            Some("17850.0"),
            "United Kingdom",
        ),
        (
            Some("536366"),
            999_999_999_999_999_999,
            day,
            100_000,
            Some("17850"),
            "United Kingdom",
        ),
        (
            Some("536367"),
            1_000_000_000_000_000_000,
            day,
            100,
            Some("13047"),
            "France",
        ),
        (None, 1, day, 100, Some("13047"), "France"),
        (
            Some("536368"),
            1,
            253_402_300_800,
            100,
            Some("13047"),
            "France",
        ),
        (
            Some("536369"),
            1,
            day,
            10i128.pow(22),
            Some("13047"),
            "France",
        ),
        (
            Some("C536370"),
            -1,
            day,
            255,
            Some("17850"),
            "United Kingdom",
        ),
        (Some("536371"), 2, day, 0, Some("13047"), "France"),
        (Some("536372"), 0, day, 100, Some("13047"), "France"),
        (Some("536373"), 2, day, 125, None, "France"),
        (Some("536374"), 2, day, 125, Some("  NaN "), "France"),
        (
            Some("536375"),
            2,
            t("0000-01-01 00:00:00") - 1,
            125,
            Some("13047"),
            "France",
        ),
        (
            Some("536376"),
            3,
            t("2011-01-02 10:00:00"),
            -1,
            Some("13047"),
            "",
        ),
        (
            Some("536377"),
            3,
            t("2011-01-02 10:00:00"),
            7,
            Some("13047"),
            "France",
        ),
    ];
    let price = Decimal128Array::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())
        .with_precision_and_scale(38, 2)
        .unwrap();
    let country: DictionaryArray<Int32Type> = rows.iter().map(|r| r.5).collect();
    let batch = RecordBatch::try_from_iter([
        (
            "InvoiceNo",
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        (
            "Quantity",
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
        ),
        (
            "InvoiceDate",
            Arc::new(TimestampSecondArray::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
        ),
        ("UnitPrice", Arc::new(price)),
        (
            "CustomerID",
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.4).collect::<Vec<_>>(),
            )),
        ),
        ("Country", Arc::new(country)),
    ])
    .unwrap();
    let csv = "536365,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom
536366,999999999999999999,2010-12-01 08:26:00,1000.00,17850,United Kingdom
536367,1000000000000000000,2010-12-01 08:26:00,1.00,13047,France
,1,2010-12-01 08:26:00,1.00,13047,France
536368,1,10000-01-01 00:00:00,1.00,13047,France
536369,1,2010-12-01 08:26:00,100000000000000000000.00,13047,France
C536370,-1,2010-12-01 08:26:00,2.55,17850,United Kingdom
536371,2,2010-12-01 08:26:00,0.00,13047,France
536372,0,2010-12-01 08:26:00,1.00,13047,France
536373,2,2010-12-01 08:26:00,1.25,,France
536374,2,2010-12-01 08:26:00,1.25,  NaN ,France
536375,2,-001-12-31 23:59:59,1.25,13047,France
536376,3,2011-01-02 10:00:00,-0.01,13047,
536377,3,2011-01-02 10:00:00,0.07,13047,France
";
    let l = parquet_reads_as_csv(batch, csv);
    assert_eq!(
        (
            l.lines_read,
            l.purchase_lines,
            l.malformed,
            l.excluded.total()
        ),
        (14, 2, 6, 6),
        "{l:?}"
    );
    let problems: Vec<(Option<u64>, &str)> = l
        .malformed_samples
        .iter()
        .map(|s| (s.line, s.problem.split(' ').next().unwrap()))
        .collect();
    assert_eq!(
        problems,
        [
            (Some(3), "quantity"),
            (Some(4), "quantity"),
            (Some(5), "empty"),
            (Some(6), "date"),
            (Some(7), "price"),
        ]
    );
}

#[test]
fn float_and_text_values_read_as_their_csv_text() {
    use arrow::array::*;
    use std::sync::Arc;
    let ns = |s: &str| rfm_core::date::parse_auto(s.as_bytes()).unwrap() as i64 * 1_000_000_000;
    let day = ns("2010-12-01 08:26:00") + 999_999_999;
    /// Invoice, quantity, nanoseconds, price, customer, country.
    type Row<'a> = (&'a str, f64, Option<i64>, f64, &'a str, &'a str);
    let rows: Vec<Row> = vec![
        ("1", 6.0, Some(day), 2.55, "12346", "United Kingdom"),
        ("2", 6.5, Some(day), 2.55, "12346", "United Kingdom"),
        ("3", 1.0, Some(day), f64::NAN, "12346", "United Kingdom"),
        (
            "4",
            1.0,
            Some(day),
            f64::INFINITY,
            "12346",
            "United Kingdom",
        ),
        ("5", 1.0, Some(day), 2.0, "12\u{1b}[31m", "United Kingdom"),
        ("6", 1.0, None, 2.0, "12346", "United Kingdom"),
        ("7", -0.0, Some(day), 2.0, "12346", "United Kingdom"),
        ("8", 1.0, Some(day), -0.0, "12346", "United Kingdom"),
        ("9", 1e19, Some(day), 2.0, "12346", "United Kingdom"),
        (
            " 10 ",
            2.0,
            Some(-500_000_000),
            1e-7,
            " Ren\u{e9} ",
            "C\u{f4}te, \"d\"\nIvoire",
        ),
        ("11", 3.0, Some(day), 0.1 + 0.2, "12346", "France"),
        ("12", 1e18, Some(day), 1e-20, "12346", "France"),
    ];
    let batch = RecordBatch::try_from_iter([
        (
            "Invoice",
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        (
            "Quantity",
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
        ),
        (
            "InvoiceDate",
            Arc::new(TimestampNanosecondArray::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
        ),
        (
            "Price",
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            )),
        ),
        (
            "Customer ID",
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.4).collect::<Vec<_>>(),
            )),
        ),
        (
            "Country",
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.5).collect::<Vec<_>>(),
            )),
        ),
    ])
    .unwrap();
    let csv = "1,6,2010-12-01 08:26:00,2.55,12346,United Kingdom
2,6.5,2010-12-01 08:26:00,2.55,12346,United Kingdom
3,1,2010-12-01 08:26:00,NaN,12346,United Kingdom
4,1,2010-12-01 08:26:00,inf,12346,United Kingdom
5,1,2010-12-01 08:26:00,2,12\u{1b}[31m,United Kingdom
6,1,,2,12346,United Kingdom
7,0,2010-12-01 08:26:00,2,12346,United Kingdom
8,1,2010-12-01 08:26:00,0,12346,United Kingdom
9,10000000000000000000,2010-12-01 08:26:00,2,12346,United Kingdom
 10 ,2,1969-12-31 23:59:59,0.0000001, Ren\u{e9} ,\"C\u{f4}te, \"\"d\"\"\nIvoire\"
11,3,2010-12-01 08:26:00,0.30000000000000004,12346,France
12,1000000000000000000,2010-12-01 08:26:00,0.00000000000000000001,12346,France
";
    let l = parquet_reads_as_csv(batch, csv);
    assert_eq!(
        (
            l.lines_read,
            l.purchase_lines,
            l.malformed,
            l.excluded.total()
        ),
        (12, 3, 7, 2),
        "{l:?}"
    );
    assert!(
        l.malformed_samples[3].problem.contains("U+001B"),
        "{:?}",
        l.malformed_samples
    );
}

const SMALL: &str = "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
536365,A,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n\
536366,B,x6,2010-12-01 08:28:00,1.85,17850.0,United Kingdom\n\
536367,\"C,\nD\",2,2010-12-01 08:34:00,1.69,13047,France\n\
536368,E,3,2010-12-01 08:34:00,abc,13047,France\n";

#[test]
fn malformed_lines_keep_their_csv_line_numbers_when_compressed() {
    let dir = tempfile::tempdir().unwrap();
    let plain = write(dir.path(), "s.csv", SMALL.as_bytes());
    let gz = write(dir.path(), "s.csv.gz", &gzip(SMALL.as_bytes()));
    let zst = write(dir.path(), "s.csv.zst", &zstd(SMALL.as_bytes()));
    let opts = RunOptions {
        max_malformed_share: 1.0,
        ..RunOptions::default()
    };
    let want = run_path(&plain, &opts).ledger;
    assert_eq!(
        want.malformed_samples
            .iter()
            .map(|s| s.line)
            .collect::<Vec<_>>(),
        [Some(3), Some(6)]
    );
    for p in [gz, zst] {
        let got = run_path(&p, &opts).ledger;
        assert_eq!(got, want, "{}", p.display());
    }
}

#[test]
fn parquet_text_columns_are_classified_as_csv_lines() {
    use arrow::array::{RecordBatch, StringArray};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("s.parquet");
    // SMALL's rows as text columns, the header names as aliases (Price, Customer ID).
    let rows: Vec<Vec<&str>> = vec![
        vec!["536365", "6", "2010-12-01 08:26:00", "2.55", "17850.0"],
        vec!["536366", "x6", "2010-12-01 08:28:00", "1.85", "17850.0"],
        vec!["C536367", "2", "2010-12-01 08:34:00", "1.69", "13047"],
        vec!["536368", "3", "2010-12-01 08:34:00", "abc", "13047"],
        vec!["536369", "3", "2010-12-01 08:34:00", "1.5", "NaN"],
    ];
    let names = ["Invoice", "Quantity", "InvoiceDate", "Price", "Customer ID"];
    let schema = Arc::new(arrow::datatypes::Schema::new(
        names
            .iter()
            .map(|n| arrow::datatypes::Field::new(*n, arrow::datatypes::DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let cols = (0..names.len())
        .map(|i| {
            Arc::new(StringArray::from(
                rows.iter().map(|r| r[i]).collect::<Vec<_>>(),
            )) as arrow::array::ArrayRef
        })
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&pq).unwrap(), schema, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let opts = RunOptions {
        max_malformed_share: 1.0,
        ..RunOptions::default()
    };
    let out = run_path(&pq, &opts);
    let l = &out.ledger;
    assert_eq!(
        (
            l.lines_read,
            l.purchase_lines,
            l.malformed,
            l.excluded.cancellation,
            l.excluded.missing_customer
        ),
        (5, 1, 2, 1, 1)
    );
    let lines: Vec<_> = l.malformed_samples.iter().map(|s| s.line).collect();
    assert_eq!(lines, [Some(3), Some(5)], "row + 2, as in a CSV export");
    assert!(
        l.malformed_samples[1].problem.contains("\"abc\""),
        "{:?}",
        l.malformed_samples
    );
}

/// Opening and running `path`; the error's text.
fn failure(path: &Path) -> String {
    let opts = RunOptions::default();
    let err = match engine::open_inputs(path.to_str().unwrap(), &opts.parse) {
        Err(e) => e,
        Ok(files) => engine::run_local(&files, &opts).expect_err("a damaged file fails"),
    };
    assert_eq!(err.kind(), rfm_core::ErrorKind::Input, "{err}");
    err.to_string()
}

#[test]
fn damaged_files_fail_naming_the_file() {
    let csv = std::fs::read(real_data("online_retail.csv")).unwrap();
    let head = &csv[..2_000_000];
    let dir = tempfile::tempdir().unwrap();
    let gz = gzip(head);
    let p = write(dir.path(), "cut.csv.gz", &gz[..gz.len() * 2 / 3]);
    let msg = failure(&p);
    assert!(
        msg.contains("cut.csv.gz") && msg.contains("csv.gz"),
        "{msg}"
    );
    let zst = zstd(head);
    let p = write(dir.path(), "cut.csv.zst", &zst[..zst.len() * 2 / 3]);
    let msg = failure(&p);
    assert!(
        msg.contains("cut.csv.zst") && msg.contains("csv.zst"),
        "{msg}"
    );
    // Not gzip at all.
    let p = write(dir.path(), "plain.csv.gz", head);
    assert!(failure(&p).contains("plain.csv.gz"));

    let pq = dir.path().join("whole.parquet");
    write_uci_parquet(&real_data("online_retail.csv"), &pq, 100_000);
    let mut bytes = std::fs::read(&pq).unwrap();
    let n = bytes.len();
    // The footer: its metadata just before the length and the magic.
    for b in &mut bytes[n - 200..n - 8] {
        *b ^= 0x5a;
    }
    let p = write(dir.path(), "corrupt.parquet", &bytes);
    let msg = failure(&p);
    assert!(
        msg.contains("corrupt.parquet") && msg.contains("parquet"),
        "{msg}"
    );
}

#[test]
fn a_parquet_file_without_a_role_column_fails_like_a_csv_header_without_it() {
    use arrow::array::{Int64Array, RecordBatch};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("noprice.parquet");
    let names = ["InvoiceNo", "Quantity", "InvoiceDate", "CustomerID"];
    let schema = Arc::new(arrow::datatypes::Schema::new(
        names
            .iter()
            .map(|n| arrow::datatypes::Field::new(*n, arrow::datatypes::DataType::Int64, false))
            .collect::<Vec<_>>(),
    ));
    let cols = names
        .iter()
        .map(|_| Arc::new(Int64Array::from(vec![1, 2])) as arrow::array::ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&pq).unwrap(), schema, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let err = engine::open_inputs(pq.to_str().unwrap(), &Default::default()).unwrap_err();
    assert!(
        matches!(err, rfm_core::Error::MissingColumn { role: "price", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("noprice.parquet"), "{err}");
}

#[test]
fn generated_parquet_and_compressed_csv_give_the_csv_result() {
    let dir = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    for format in [
        InputFormat::Csv,
        InputFormat::CsvGzip,
        InputFormat::CsvZstd,
        InputFormat::Parquet,
    ] {
        let p = dir.path().join(format!("g.{}", format.name()));
        let f = std::fs::File::create(&p).unwrap();
        rfm_core::gen_formats::generate_as(300_000, 5, Default::default(), format, f).unwrap();
        let out = run_path(&p, &RunOptions::default());
        results.push((
            format,
            sha256_hex(&customers_csv(out.result.as_ref().unwrap())),
            out.ledger,
        ));
    }
    for (format, sha, ledger) in &results[1..] {
        assert_eq!(sha, &results[0].1, "{format}");
        let mut ledger = ledger.clone();
        if *format == InputFormat::Parquet {
            // Typed timestamps are counted as ISO dates, the CSV's slash dates not.
            assert_eq!(ledger.dates[0].iso, 300_000);
            ledger.dates = results[0].2.dates.clone();
        }
        assert_eq!(ledger, results[0].2, "{format}");
    }
}
