//! Selections on the real UCI run: `rfm export --segment/--where`, `rfm
//! customers --where/--format` and the dashboard's search are one language
//! and pick the same customers; the Champions are the reference's 632.
//! `rfm customer` reads ids as the input writes them and names NTILE ties.

use std::collections::BTreeSet;
use std::path::Path;

use crate::support::{ok, rfm, REFERENCE, UCI};
use rfm_dashboard::{app::App, loader, source};

/// The customer ids of a customers.csv-shaped file, and its rows' segments.
fn ids_and_segments(csv_text: &[u8]) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut r = csv::Reader::from_reader(csv_text);
    let header = r.headers().unwrap().clone();
    assert_eq!(
        header.iter().collect::<Vec<_>>(),
        rfm_core::output::CUSTOMERS_HEADER
    );
    let mut ids = BTreeSet::new();
    let mut segments = BTreeSet::new();
    for row in r.records() {
        let row = row.unwrap();
        assert!(ids.insert(row[0].to_string()), "{} twice", &row[0]);
        segments.insert(row[11].to_string());
    }
    (ids, segments)
}

/// The reference's customer count of a segment (segments.csv).
fn reference_count(segment: &str) -> usize {
    let text = std::fs::read_to_string(format!("{REFERENCE}/online_retail.segments.csv")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{segment},")))
        .unwrap();
    line.split(',').nth(1).unwrap().parse().unwrap()
}

/// The ids the dashboard's customer table lists for `query` on the run under `root`.
fn dashboard_search(root: &Path, query: &str) -> BTreeSet<String> {
    let spec = source::SourceSpec::Results(root.to_path_buf());
    let src = source::open(&spec).expect("open source");
    let mut app = App::new(src.describe(), true);
    let mut work = app.start();
    while let Some(command) = work.pop() {
        let loaded = loader::execute(src.as_ref(), command);
        work.extend(app.apply(loaded));
    }
    app.customers.query = query.to_string();
    app.refresh_customers();
    let run = app.current.as_ref().expect("a run is open");
    app.customers
        .visible
        .iter()
        .map(|&i| run.customers[i].customer_id.clone())
        .collect()
}

#[test]
fn one_query_language_selects_the_same_customers_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("results");
    let r = root.to_str().unwrap();
    ok(rfm(&[
        "run",
        UCI,
        "--results-root",
        r,
        "--threads",
        "2",
        "-q",
    ]));
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_string();

    // The Champions, by segment name: exactly the reference's 632.
    let champions = file("champions.csv");
    let o = ok(rfm(&[
        "export",
        "--results-root",
        r,
        "--segment",
        "Champions",
        "--out",
        &champions,
    ]));
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(said.contains("632 customers of run"), "{said}");
    let (champion_ids, segments) = ids_and_segments(&std::fs::read(&champions).unwrap());
    assert_eq!(champion_ids.len(), reference_count("Champions"));
    assert_eq!(champion_ids.len(), 632);
    assert_eq!(segments, BTreeSet::from(["Champions".to_string()]));

    // The segment rule as a query (R = 5 and F ≥ 4) picks the same set, in
    // the CLI and in the dashboard's search.
    let rule = file("rule.csv");
    ok(rfm(&[
        "export",
        "--results-root",
        r,
        "--where",
        "r=5 f>=4",
        "--out",
        &rule,
    ]));
    let (rule_ids, _) = ids_and_segments(&std::fs::read(&rule).unwrap());
    assert_eq!(rule_ids, champion_ids);
    assert_eq!(dashboard_search(&root, "r=5 f>=4"), champion_ids);

    // A narrower query: the same in both, and a subset of the Champions.
    let query = "r=5 f>=4 monetary>10000 country=united-kingdom";
    let o = ok(rfm(&[
        "customers",
        "--results-root",
        r,
        "--where",
        query,
        "--format",
        "csv",
    ]));
    let (rich, _) = ids_and_segments(&o.stdout);
    assert!(!rich.is_empty() && rich.len() < 632, "{}", rich.len());
    assert!(rich.is_subset(&champion_ids));
    assert_eq!(dashboard_search(&root, query), rich);

    // Parquet takes the same selection.
    let pq = file("at-risk.parquet");
    let o = ok(rfm(&[
        "export",
        "--results-root",
        r,
        "--where",
        "segment=at-risk",
        "--out",
        &pq,
    ]));
    let said = String::from_utf8_lossy(&o.stderr);
    let at_risk = reference_count("At Risk");
    assert!(
        said.contains(&format!("{at_risk} customers of run")),
        "{said}"
    );
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&pq).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, at_risk);

    // JSON and table of the same query agree on the count.
    let o = ok(rfm(&[
        "customers",
        "--results-root",
        r,
        "--where",
        query,
        "--format",
        "json",
    ]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), rich.len());

    // A bad term: a usage error naming it, with the grammar.
    let o = rfm(&["customers", "--results-root", r, "--where", "r=5 spend>10"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("\"spend>10\""), "{err}");
    assert!(err.contains("\"spend\" is not a field"), "{err}");
    assert!(
        err.contains("OP     = = | : | != | < | <= | > | >="),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let o = rfm(&[
        "export",
        "--results-root",
        r,
        "--where",
        "f>=x",
        "--out",
        &rule,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("\"f>=x\""));
}

#[test]
fn the_help_documents_the_query_language() {
    let help = String::from_utf8(ok(rfm(&["customers", "--help"])).stdout).unwrap();
    for part in [
        "--where <QUERY>",
        "--format <FORMAT>",
        "r=5 f>=4",
        "monetary>1000",
        "segment=at-risk",
        "operators: = : != < <= > >=",
        "docs/SELECTIONS.md",
    ] {
        assert!(
            help.contains(part),
            "rfm customers --help lacks {part:?}:\n{help}"
        );
    }
    let help = String::from_utf8(ok(rfm(&["export", "--help"])).stdout).unwrap();
    for part in [
        "--where <QUERY>",
        "--segment <SEGMENT>",
        "--segment Champions --out champions.csv",
    ] {
        assert!(
            help.contains(part),
            "rfm export --help lacks {part:?}:\n{help}"
        );
    }
}

#[test]
fn customer_reads_ids_as_written_and_names_ties() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("results");
    let r = root.to_str().unwrap();
    ok(rfm(&[
        "run",
        UCI,
        "--results-root",
        r,
        "--threads",
        "2",
        "-q",
    ]));

    // The CSV writes 12347.0 (pandas): the same customer as 12347.
    let o = ok(rfm(&["customer", "12347.0", "--results-root", r, "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["customer"]["customer_id"], "12347");
    assert_eq!(v["customer"]["monetary"], "4310.00");
    assert_eq!(v["ties"]["frequency"], serde_json::json!([]));

    // 4,338 customers: NTILE(5) buckets of 868, 868, 868, 867, 867. The
    // 1,493 one-invoice customers fill F 1 (868) and 625 of F 2's places, by
    // customer id: 15758 is on the F 2 side of that tie.
    let o = ok(rfm(&["customer", "15758", "--results-root", r]));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("1 invoice "), "{text}");
    assert!(!text.contains("1 invoices"), "{text}");
    assert!(
        text.contains("tie: the 1,493 customers with 1 invoice are split F 1 (868) / F 2 (625) by customer id"),
        "{text}"
    );
    assert!(text.contains("Potential Loyalists"), "{text}");
    let o = ok(rfm(&["customer", "15758", "--results-root", r, "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["ties"]["frequency"],
        serde_json::json!([{"score": 1, "customers": 868}, {"score": 2, "customers": 625}])
    );
    // Not an id: a usage error.
    let o = rfm(&["customer", "NA", "--results-root", r]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
