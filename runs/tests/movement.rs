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

#[test]
fn movement_counts_customers_and_sums_their_published_revenue_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("runs");
    let db = testing::database();
    let a = both(
        &root,
        &db,
        &sub_cent_purchases(50, 1),
        "20110301T000000Z-0000000a",
        "2011-03-01T00:00:00Z",
    );
    let b = both(
        &root,
        &db,
        // Without the first 5 customers: some are gone, 10 are new.
        &sub_cent_purchases(60, 3)
            .lines()
            .filter(|l| {
                !(",12000,|,12001,|,12002,|,12003,|,12004,".split('|')).any(|id| l.contains(id))
            })
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
        "20110401T000000Z-0000000b",
        "2011-04-01T00:00:00Z",
    );
    // Computed here from the two results: each customer's monetary as
    // published (2 decimals), summed exactly per (from, to).
    type Key = (Option<&'static str>, Option<&'static str>);
    let published = |m: rfm_core::money::Money| {
        rfm_core::money::parse_price(m.to_fixed(2).as_bytes(), b'.')
            .unwrap()
            .0
    };
    let mut expected: std::collections::BTreeMap<Key, (u64, i128, i128)> = Default::default();
    let find = |rows: &[rfm_core::score::CustomerRow], id: &str| {
        rows.iter().find(|c| c.customer_id == id).cloned()
    };
    for c in &a.customers {
        let other = find(&b.customers, &c.customer_id);
        let e = expected
            .entry((
                Some(c.segment.name()),
                other.as_ref().map(|o| o.segment.name()),
            ))
            .or_default();
        e.0 += 1;
        e.1 += published(c.monetary);
        e.2 += other.map_or(0, |o| published(o.monetary));
    }
    for c in &b.customers {
        if find(&a.customers, &c.customer_id).is_none() {
            let e = expected.entry((None, Some(c.segment.name()))).or_default();
            e.0 += 1;
            e.2 += published(c.monetary);
        }
    }
    let database = DatabaseSource::connect(&db.url).unwrap();
    let got = movement(
        &database
            .results(Some("20110301T000000Z-0000000a"))
            .unwrap()
            .customers,
        &database
            .results(Some("20110401T000000Z-0000000b"))
            .unwrap()
            .customers,
    )
    .unwrap();
    let got: std::collections::BTreeMap<Key, (u64, i128, i128)> = got
        .into_iter()
        .map(|m| {
            let key = (m.from.map(|s| s.name()), m.to.map(|s| s.name()));
            (key, (m.customers, m.revenue_from.0, m.revenue_to.0))
        })
        .collect();
    assert!(expected.keys().any(|(f, _)| f.is_none()), "new customers");
    assert!(expected.keys().any(|(_, t)| t.is_none()), "gone customers");
    assert_eq!(got, expected);
}
