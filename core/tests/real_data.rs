//! The engine on the real UCI files, against the DuckDB reference's outputs
//! (its `segments.csv`, the sha256 of its `customers.csv` and its line counts,
//! committed under tests/data/reference), at several chunk sizes.

use crate::common::*;
use rfm_core::RunOptions;

struct Case {
    file: &'static str,
    name: &'static str,
    opts: fn() -> RunOptions,
}

const CASES: [Case; 7] = [
    Case {
        file: "online_retail.csv",
        name: "online_retail",
        opts: RunOptions::default,
    },
    Case {
        file: "online_retail_ii_2009-12_extract.csv",
        name: "online_retail_ii_2009-12_extract",
        opts: RunOptions::default,
    },
    Case {
        file: "variants/r_quoted_na_crlf_random20k.csv",
        name: "r_quoted_na_crlf_random20k",
        opts: RunOptions::default,
    },
    Case {
        file: "variants/mdyy_2digit_year_crlf_999.csv",
        name: "mdyy_2digit_year_crlf_999",
        opts: RunOptions::default,
    },
    Case {
        file: "variants/kaggle_mdy_intcust_bom_germany.csv",
        name: "kaggle_mdy_intcust_bom_germany",
        opts: RunOptions::default,
    },
    Case {
        file: "variants/semicolon_decimalcomma_bom_dmy_10k.csv",
        name: "semicolon_decimalcomma_bom_dmy_10k",
        opts: || options(b';', true, Some("%d/%m/%Y %H:%M")),
    },
    Case {
        file: "variants/uppercase_header_dmy_232.csv",
        name: "uppercase_header_dmy_232",
        opts: || options(b',', false, Some("%d/%m/%Y %H:%M")),
    },
];

fn check(case: &Case, chunk_size: u64) {
    let mut opts = (case.opts)();
    opts.chunk_size = chunk_size;
    let out = run_path(&real_data(case.file), &opts);
    let result = out.result.unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let want_segments = std::fs::read(reference(&format!("{}.segments.csv", case.name))).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&segments_csv(&result)),
        String::from_utf8_lossy(&want_segments),
        "{}: segments.csv differs from the reference (chunk size {chunk_size})",
        case.name
    );
    let want_sha =
        std::fs::read_to_string(reference(&format!("{}.customers.sha256", case.name))).unwrap();
    assert_eq!(
        sha256_hex(&customers_csv(&result)),
        want_sha.trim(),
        "{}: customers.csv differs from the reference (chunk size {chunk_size})",
        case.name
    );
    let stats: serde_json::Value = serde_json::from_slice(
        &std::fs::read(reference(&format!("{}.stats.json", case.name))).unwrap(),
    )
    .unwrap();
    let l = &out.ledger;
    assert_eq!(
        l.lines_read,
        stats["lines_read"].as_u64().unwrap(),
        "{}",
        case.name
    );
    assert_eq!(
        l.purchase_lines,
        stats["purchase_lines"].as_u64().unwrap(),
        "{}",
        case.name
    );
    assert_eq!(
        l.malformed,
        stats["malformed"].as_u64().unwrap(),
        "{}",
        case.name
    );
    let ex = &stats["excluded"];
    assert_eq!(
        l.excluded.missing_customer,
        ex["missing_customer"].as_u64().unwrap()
    );
    assert_eq!(
        l.excluded.cancellation,
        ex["cancellation"].as_u64().unwrap()
    );
    assert_eq!(
        l.excluded.quantity_le_0,
        ex["quantity_le_0"].as_u64().unwrap()
    );
    assert_eq!(l.excluded.price_le_0, ex["price_le_0"].as_u64().unwrap());
    assert_eq!(
        result.customers.len() as u64,
        stats["customers"].as_u64().unwrap()
    );
    assert_eq!(
        rfm_core::date::format_date(result.as_of),
        stats["as_of"].as_str().unwrap()
    );
}

#[test]
fn full_online_retail_matches_the_spec_figures() {
    let out = run_path(&real_data("online_retail.csv"), &RunOptions::default());
    let l = &out.ledger;
    assert_eq!(l.lines_read, 541_909);
    assert_eq!(l.purchase_lines, 397_884);
    assert_eq!(l.excluded.missing_customer, 135_080);
    assert_eq!(l.excluded.cancellation, 8_905);
    assert_eq!(l.excluded.quantity_le_0, 0);
    assert_eq!(l.excluded.price_le_0, 40);
    assert_eq!(l.malformed, 0);
    let r = out.result.unwrap();
    assert_eq!(r.customers.len(), 4_338);
    assert_eq!(rfm_core::date::format_date(r.as_of), "2011-12-10");
    let champions = r
        .segments
        .iter()
        .find(|s| s.segment.name() == "Champions")
        .unwrap();
    assert_eq!(champions.customers, 632);
    assert!(
        champions.revenue_share.starts_with("0.487"),
        "{}",
        champions.revenue_share
    );
}

#[test]
fn every_real_file_matches_the_reference() {
    for case in &CASES {
        check(case, rfm_core::engine::DEFAULT_CHUNK_SIZE);
    }
}

#[test]
fn real_files_match_the_reference_with_small_chunks() {
    for case in &CASES {
        check(case, 1 << 20);
        check(case, 65_537);
    }
}

#[test]
fn real_file_with_tiny_chunks_matches() {
    // Thousands of chunks of a few KiB: boundaries everywhere, quoted fields cut.
    check(&CASES[2], 4093);
}

#[test]
fn shipped_sample_is_what_the_generator_makes_and_matches_the_reference() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sample.csv");
    let shipped = std::fs::read(&path).unwrap();
    let mut made = Vec::new();
    rfm_core::gen::generate(20_000, 1, &mut made).unwrap();
    assert!(
        shipped == made,
        "data/sample.csv is `rfm gen --rows 20000 --seed 1`"
    );
    let r = run_path(&path, &RunOptions::default()).result.unwrap();
    let want = std::fs::read(reference("sample.segments.csv")).unwrap();
    assert_eq!(segments_csv(&r), want);
    let sha = std::fs::read_to_string(reference("sample.customers.sha256")).unwrap();
    assert_eq!(sha256_hex(&customers_csv(&r)), sha.trim());
}
