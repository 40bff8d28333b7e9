//! docs/ARCHITECTURE.md states which workspace crates each crate depends on;
//! this checks the table against `cargo metadata`, so the map cannot drift
//! from the code.

use std::collections::{BTreeMap, BTreeSet};

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/ARCHITECTURE.md");

/// Crate → its normal dependencies that are workspace crates, per `cargo metadata`.
fn actual() -> BTreeMap<String, BTreeSet<String>> {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let members: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_string())
                .filter(|name| members.contains(name))
                .collect();
            (p["name"].as_str().unwrap().to_string(), deps)
        })
        .collect()
}

/// The same, as the table between the crate-graph markers of the doc says.
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let doc = std::fs::read_to_string(DOC).expect("docs/ARCHITECTURE.md");
    let (_, rest) = doc
        .split_once("<!-- crate-graph:begin -->")
        .expect("begin marker");
    let (table, _) = rest
        .split_once("<!-- crate-graph:end -->")
        .expect("end marker");
    let name = |cell: &str| cell.trim().trim_matches('`').to_string();
    table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').collect();
            let deps = cells[2]
                .split(',')
                .map(name)
                .filter(|d| !d.is_empty() && d != "—")
                .collect();
            (name(cells[0]), deps)
        })
        .collect()
}

#[test]
fn the_documented_crate_graph_is_the_real_one() {
    let actual = actual();
    assert!(actual.len() >= 10, "{actual:?}");
    assert_eq!(
        documented(),
        actual,
        "docs/ARCHITECTURE.md's crate table differs from `cargo metadata`: update the table"
    );
    // The layering rules the doc states.
    assert!(
        actual["rfm-core"].is_empty(),
        "rfm-core depends on no workspace crate"
    );
    assert!(
        !actual["rfm-cli"].contains("rfm-dashboard"),
        "the CLI must not link the dashboard"
    );
}
