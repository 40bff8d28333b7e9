//! Cut points are saved with the run (run.json and PostgreSQL) and read back
//! as scoring computed them; a run saved without them still loads, with the
//! cut points computed from its customers.

use rfm_runs::{DatabaseSource, FolderSource, RunSource};
use rfm_store::testing;

use crate::common::*;

#[test]
fn cut_points_round_trip_through_run_json_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("runs");
    let db = testing::database();
    let result = both(
        &root,
        &db,
        &sub_cent_purchases(40, 1),
        "20110301T000000Z-0000000c",
        "2011-03-01T00:00:00Z",
    );
    assert!(!result.cut_points.monetary.is_empty());
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("20110301T000000Z-0000000c/run.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        json["cut_points"],
        serde_json::to_value(&result.cut_points).unwrap()
    );
    let stored: serde_json::Value = db
        .client()
        .query_one("SELECT cut_points FROM rfm_runs", &[])
        .unwrap()
        .get(0);
    assert_eq!(stored, json["cut_points"]);

    for source in [
        Box::new(FolderSource::open(&root).unwrap()) as Box<dyn RunSource>,
        Box::new(DatabaseSource::connect(&db.url).unwrap()),
    ] {
        let run = source.results(None).unwrap();
        assert_eq!(run.cut_points, result.cut_points, "{}", source.describe());
        assert_eq!(run.entry.report.cut_points, Some(result.cut_points.clone()));
    }
}

#[test]
fn a_run_saved_without_cut_points_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("runs");
    let db = testing::database();
    let result = both(
        &root,
        &db,
        &sub_cent_purchases(40, 2),
        "20110301T000000Z-0000000d",
        "2011-03-01T00:00:00Z",
    );
    // run.json as older versions wrote it, and a run published before the
    // migration.
    let path = root.join("20110301T000000Z-0000000d/run.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    json.as_object_mut().unwrap().remove("cut_points");
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    db.client()
        .batch_execute("UPDATE rfm_runs SET cut_points = NULL, report = report - 'cut_points'")
        .unwrap();

    for source in [
        Box::new(FolderSource::open(&root).unwrap()) as Box<dyn RunSource>,
        Box::new(DatabaseSource::connect(&db.url).unwrap()),
    ] {
        let run = source.results(None).unwrap();
        assert_eq!(run.entry.report.cut_points, None);
        // Computed from the customers with the engine's rule: the same
        // bounds scoring saved.
        assert_eq!(run.cut_points, result.cut_points, "{}", source.describe());
    }
}
