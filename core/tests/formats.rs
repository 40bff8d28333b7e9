//! The real UCI file as `.csv.gz`, `.csv.zst` and typed Parquet gives the
//! reference's results (segments.csv bytes, customers.csv sha256, line
//! counts); malformed lines keep their CSV line numbers; damaged files fail
//! with the file named.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::common::uci_parquet::write_uci_parquet;
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
