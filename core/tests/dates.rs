//! Date forms and points in time on the real files: the day-first UCI
//! variants read without a format (ambiguous: a warning that names
//! `--date-format`), a day-first file with a day above 12 (the run fails
//! with that suggestion), and `--until` against the DuckDB reference run on
//! the UCI file cut to purchases before 2011-07-01 (its outputs committed
//! under tests/data/reference as `online_retail_until_2011-06-30.*`).

use crate::common::*;
use rfm_core::engine::RunSettings;
use rfm_core::report::RunReport;
use rfm_core::{Error, RunOptions};

/// The report of an outcome, as `run.json` would hold it.
fn report_of(out: &Outcome, opts: &RunOptions) -> RunReport {
    let mut report = RunReport::begin("test", &out.files, opts);
    report.set_ledger(&out.ledger);
    if let Ok(r) = &out.result {
        report.set_result(r);
    }
    report
}

#[test]
fn day_first_variants_without_a_format_are_read_month_first_with_a_warning() {
    for (file, opts, lines) in [
        (
            "variants/uppercase_header_dmy_232.csv",
            options(b',', false, None),
            232,
        ),
        (
            "variants/semicolon_decimalcomma_bom_dmy_10k.csv",
            options(b';', true, None),
            10_000,
        ),
    ] {
        let out = run_path(&real_data(file), &opts);
        let forms = &out.ledger.dates[0];
        assert_eq!(
            forms.ambiguous, lines,
            "{file}: every date fits both readings"
        );
        assert_eq!((forms.month_first, forms.day_first, forms.iso), (0, 0, 0));
        let report = report_of(&out, &opts);
        assert_eq!(report.warnings.len(), 1, "{file}");
        let w = &report.warnings[0];
        assert!(w.contains("ambiguous"), "{w}");
        assert!(w.contains("--date-format '%d/%m/%Y %H:%M'"), "{w}");
        assert!(w.contains(file), "the warning names the file: {w}");
        assert!(
            report.files[0]
                .date_form
                .as_deref()
                .is_some_and(|f| f.contains("ambiguous")),
            "{:?}",
            report.files[0].date_form
        );
        // Read month first: 1/12/2010 is 12 January.
        assert_eq!(report.first_purchase.as_deref(), Some("2010-01-12"));
    }
}

#[test]
fn day_first_variants_with_the_format_say_so_and_warn_nothing() {
    let opts = options(b',', false, Some("%d/%m/%Y %H:%M"));
    let out = run_path(&real_data("variants/uppercase_header_dmy_232.csv"), &opts);
    let report = report_of(&out, &opts);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(out.ledger.dates[0].formatted, 232);
    assert_eq!(
        report.files[0].date_form.as_deref(),
        Some("--date-format %d/%m/%Y %H:%M")
    );
    assert_eq!(report.first_purchase.as_deref(), Some("2010-12-01"));
    assert_eq!(report.latest_purchase.as_deref(), Some("2010-12-01"));
}

/// The 232-line day-first variant with its first day moved to the 13th.
fn day_above_12() -> Vec<u8> {
    let text = std::fs::read_to_string(real_data("variants/uppercase_header_dmy_232.csv")).unwrap();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        if i > 0 && i <= 20 {
            out.push_str(&line.replace("1/12/2010", "13/12/2010"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out.into_bytes()
}

#[test]
fn a_day_above_12_fails_the_run_and_names_the_format() {
    let out = run_bytes(&day_above_12(), &options(b',', false, None));
    let err = out.result.unwrap_err();
    assert!(
        matches!(err, Error::DayFirstDates { count: 20, .. }),
        "{err}"
    );
    assert_eq!(err.stage(), rfm_core::report::Stage::Input);
    assert_eq!(rfm_core::exit::of(err.kind()), rfm_core::exit::INPUT);
    let msg = err.to_string();
    assert!(msg.contains("input.csv"), "names the file: {msg}");
    assert!(msg.contains("13/12/2010 8:26"), "{msg}");
    assert!(msg.contains("--date-format '%d/%m/%Y %H:%M'"), "{msg}");

    let opts = options(b',', false, Some("%d/%m/%Y %H:%M"));
    let out = run_bytes(&day_above_12(), &opts);
    let r = out.result.expect("with the format the file reads");
    assert_eq!(out.ledger.malformed, 0);
    assert_eq!(rfm_core::date::format_date(r.latest_purchase), "2010-12-13");
}

#[test]
fn month_first_files_with_a_stray_day_first_date_keep_it_malformed() {
    let csv = b"InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID\n\
        1,1,12/13/2010 8:26,1.00,A\n\
        2,1,12/14/2010 8:26,1.00,B\n\
        3,1,13/12/2010 8:26,1.00,C\n";
    let mut opts = options(b',', false, None);
    opts.max_malformed_share = 1.0;
    let out = run_bytes(csv, &opts);
    assert!(out.result.is_ok());
    assert_eq!(out.ledger.malformed, 1);
    let report = report_of(&out, &opts);
    assert!(report.warnings.is_empty());
}

#[test]
fn until_equals_the_reference_on_the_file_cut_at_that_day() {
    let opts = RunSettings {
        delimiter: b',',
        decimal_comma: false,
        date_format: None,
        as_of: None,
        until: Some("2011-06-30"),
        max_malformed_share: 0.01,
        chunk_size: 8 << 20,
        max_record_size: 1 << 20,
    }
    .check()
    .unwrap();
    let out = run_path(&real_data("online_retail.csv"), &opts);
    let result = out.result.as_ref().expect("the run succeeds");
    let name = "online_retail_until_2011-06-30";
    let want_segments = std::fs::read(reference(&format!("{name}.segments.csv"))).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&segments_csv(result)),
        String::from_utf8_lossy(&want_segments)
    );
    let want_sha = std::fs::read_to_string(reference(&format!("{name}.customers.sha256"))).unwrap();
    assert_eq!(sha256_hex(&customers_csv(result)), want_sha.trim());
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reference(&format!("{name}.stats.json"))).unwrap())
            .unwrap();
    let l = &out.ledger;
    assert_eq!(l.purchase_lines, stats["purchase_lines"].as_u64().unwrap());
    assert_eq!(
        result.customers.len() as u64,
        stats["customers"].as_u64().unwrap()
    );
    assert_eq!(
        rfm_core::date::format_date(result.as_of),
        stats["as_of"].as_str().unwrap()
    );
    // Every line is still read; the purchases after June are counted apart
    // (the full file's 397,884 purchase lines, less those kept).
    assert_eq!(l.lines_read, 541_909);
    assert_eq!(l.malformed, 0);
    assert_eq!(l.excluded.after_until, 397_884 - 172_635);
    assert_eq!(l.excluded.missing_customer, 135_080);
    let report = report_of(&out, &opts);
    assert_eq!(report.options.until.as_deref(), Some("2011-06-30"));
    assert_eq!(report.latest_purchase.as_deref(), Some("2011-06-30"));
    assert_eq!(report.first_purchase.as_deref(), Some("2010-12-01"));
}
