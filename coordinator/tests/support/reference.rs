//! The reference results of the real UCI file: the sha256 of its
//! `customers.csv`, its `segments.csv` and its line counts, as the core's
//! real-data tests check them.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::REFERENCE_SEGMENTS;

const REFERENCE_CUSTOMERS_SHA256: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../core/tests/data/reference/online_retail.customers.sha256"
);

/// Asserts that `out` (an `--out` directory) holds the UCI file's results.
pub fn assert_uci_reference(out: &Path) {
    let read = |file: &str| {
        std::fs::read(out.join(file))
            .unwrap_or_else(|e| panic!("{}: {e}", out.join(file).display()))
    };
    let want = std::fs::read_to_string(REFERENCE_CUSTOMERS_SHA256).expect("reference sha256");
    assert_eq!(
        format!("{:x}", Sha256::digest(read("customers.csv"))),
        want.split_whitespace().next().expect("a digest"),
        "{}/customers.csv differs from the reference",
        out.display()
    );
    assert!(
        read("segments.csv") == std::fs::read(REFERENCE_SEGMENTS).expect("reference segments"),
        "{}/segments.csv differs from the reference",
        out.display()
    );
    let report: serde_json::Value =
        serde_json::from_slice(&read("run.json")).expect("run.json is JSON");
    assert_eq!(report["lines_read"], 541_909);
    assert_eq!(report["purchase_lines"], 397_884);
    assert_eq!(report["customers"], 4_338);
    assert_eq!(report["as_of"], "2011-12-10");
}
