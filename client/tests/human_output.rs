//! Figures as people read them, on the real UCI run: thousands separators
//! for counts and money in every table and summary (JSON keeps plain
//! numbers), segments in value order (Champions … Hibernating, as the
//! dashboard lists them), upper-case headers. The figures are the DuckDB
//! reference's (core/tests/data/reference/online_retail.segments.csv).

use std::process::{Command, Output};

use rfm_core::Segment;

const UCI: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/real/online_retail.csv"
);

fn rfm(args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rfm"));
    for (k, _) in std::env::vars() {
        if k.starts_with("RFM_") || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    let o: Output = cmd.args(args).output().expect("rfm runs");
    assert!(
        o.status.success(),
        "{args:?}: exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// The segment names in the order the text lists them.
fn segment_order(text: &str) -> Vec<Segment> {
    text.lines()
        .filter_map(|l| {
            Segment::ALL
                .into_iter()
                .find(|s| l.starts_with(&format!("{:<20}", s.name())))
        })
        .collect()
}

fn line_with<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starts with {start:?}:\n{text}"))
}

#[test]
fn tables_group_thousands_and_list_segments_by_value() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("results");
    let r = root.to_str().unwrap();
    let summary = rfm(&["run", UCI, "--results-root", r, "--threads", "2"]);
    let segments = rfm(&["segments", "--results-root", r]);
    for text in [&summary, &segments] {
        assert_eq!(segment_order(text), Segment::ALL, "{text}");
        let champions = line_with(text, "Champions ");
        for figure in ["632", "14.6%", "4,339,953.67", "48.7%", "6,867.02"] {
            assert!(champions.contains(figure), "{figure}: {champions}");
        }
        let hibernating = line_with(text, "Hibernating ");
        assert!(hibernating.contains("1,077"), "{hibernating}");
        assert!(
            text.contains("SEGMENT ") && text.contains(" REVENUE "),
            "{text}"
        );
    }
    assert!(
        line_with(&summary, "lines read").contains("541,909"),
        "{summary}"
    );

    // JSON keeps plain numbers.
    let json = rfm(&["segments", "--results-root", r, "--json"]);
    assert!(json.contains("\"4339953.67\""), "{json}");
    assert!(!json.contains("4,339"), "{json}");

    let runs = rfm(&["runs", "--results-root", r]);
    assert!(runs.contains("4,338"), "{runs}");

    let top = rfm(&[
        "customers",
        "--results-root",
        r,
        "--where",
        "r=5 f>=4",
        "--sort",
        "monetary",
        "--desc",
        "--limit",
        "1",
    ]);
    assert!(top.starts_with("CUSTOMER "), "{top}");
    assert!(line_with(&top, "14646").contains("280,206.02"), "{top}");
    // CSV keeps the published form.
    let csv = rfm(&[
        "customers",
        "--results-root",
        r,
        "--where",
        "14646",
        "--format",
        "csv",
    ]);
    assert!(csv.contains(",280206.02,"), "{csv}");
}
