//! Segment movement between two runs is the same from result folders and
//! from PostgreSQL, on prices below the cent.

use rfm_runs::{movement, DatabaseSource, FolderSource, RunSource};
use rfm_store::testing;

use crate::common::*;

#[test]
fn movement_from_folders_equals_movement_from_postgres_with_sub_cent_prices() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("runs");
    let db = testing::database();
    let a = both(
        &root,
        &db,
        &sub_cent_purchases(60, 0),
        "20110301T000000Z-aaaaaaaa",
        "2011-03-01T00:00:00Z",
    );
    both(
        &root,
        &db,
        &sub_cent_purchases(75, 2),
        "20110401T000000Z-bbbbbbbb",
        "2011-04-01T00:00:00Z",
    );
    // The data is what the test is about: exact sums differ from sums of
    // rounded cents.
    let exact = a.revenue.to_fixed(2);
    let rounded: i128 = a
        .customers
        .iter()
        .map(|c| {
            c.monetary
                .to_fixed(2)
                .replace('.', "")
                .parse::<i128>()
                .unwrap()
        })
        .sum();
    assert_ne!(exact.replace('.', "").parse::<i128>().unwrap(), rounded);

    let folders = FolderSource::open(&root).unwrap();
    let database = DatabaseSource::connect(&db.url).unwrap();
    let moves = |source: &dyn RunSource| {
        let a = source.results(Some("20110301T000000Z-aaaaaaaa")).unwrap();
        let b = source.results(Some("20110401T000000Z-bbbbbbbb")).unwrap();
        movement(&a.customers, &b.customers).unwrap()
    };
    let from_folders = moves(&folders);
    let from_database = moves(&database);
    assert_eq!(from_folders, from_database);
    assert_eq!(
        serde_json::to_string(&from_folders).unwrap(),
        serde_json::to_string(&from_database).unwrap()
    );
    // Every customer of either run is counted once; new customers appear.
    let total: u64 = from_folders.iter().map(|m| m.customers).sum();
    assert_eq!(total, 75);
    assert!(from_folders.iter().any(|m| m.from.is_none()));
}
