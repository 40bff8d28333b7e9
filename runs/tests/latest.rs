//! One "latest" rule for result folders and PostgreSQL: the run with results
//! that started last, ties broken by run id (never by file times).

use rfm_runs::{DatabaseSource, FolderSource, RunSource};
use rfm_store::{testing, Lease, Store};

use crate::common::*;

#[test]
fn the_latest_run_is_the_same_for_folders_and_postgres_on_a_tie() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("runs");
    let db = testing::database();
    let same_second = "2011-05-01T12:00:00Z";
    // Published in this order: the run with the greater id comes first, so
    // neither publication order nor write order can explain the result.
    both(
        &root,
        &db,
        &sub_cent_purchases(20, 1),
        "20110501T120000Z-ffffffff",
        same_second,
    );
    both(
        &root,
        &db,
        &sub_cent_purchases(20, 3),
        "20110501T120000Z-00000001",
        same_second,
    );
    // An older run, and a newer one that failed: neither is the latest.
    both(
        &root,
        &db,
        &sub_cent_purchases(20, 0),
        "20110401T000000Z-12345678",
        "2011-04-01T00:00:00Z",
    );
    let (_, mut failed) = compute(
        dir.path(),
        &sub_cent_purchases(5, 0),
        "20110601T000000Z-99999999",
        "2011-06-01T00:00:00Z",
    );
    failed.fail(rfm_core::report::Stage::Tasks, "workers lost");
    rfm_core::output::write_report(&root.join(&failed.run_id), &failed).unwrap();
    let mut store = Store::connect(&db.url).unwrap();
    let id = store
        .begin_run(&failed, &Lease::with_defaults("test"))
        .unwrap();
    store.fail(id, &failed).unwrap();

    let folders = FolderSource::open(&root).unwrap();
    let database = DatabaseSource::connect(&db.url).unwrap();
    let summary = |source: &dyn RunSource| {
        let listing = source.list().unwrap();
        assert!(listing.skipped.is_empty(), "{:?}", listing.skipped);
        listing
            .runs
            .iter()
            .map(|r| (r.run_id().to_string(), r.status.has_results(), r.latest))
            .collect::<Vec<_>>()
    };
    let want = vec![
        ("20110601T000000Z-99999999".to_string(), false, false),
        ("20110501T120000Z-ffffffff".to_string(), true, true),
        ("20110501T120000Z-00000001".to_string(), true, false),
        ("20110401T000000Z-12345678".to_string(), true, false),
    ];
    assert_eq!(summary(&folders), want);
    assert_eq!(summary(&database), want);
    for source in [&folders as &dyn RunSource, &database] {
        let latest = source.results(None).unwrap();
        assert_eq!(latest.run_id(), "20110501T120000Z-ffffffff");
        let err = source
            .results(Some("20110601T000000Z-99999999"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is failed") && err.contains("no results"),
            "{err}"
        );
    }
}

#[test]
fn a_folder_of_folders_of_runs_is_a_results_root() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("out");
    let (r1, a) = compute(
        dir.path(),
        &sub_cent_purchases(10, 0),
        "20110401T000000Z-aaaaaaaa",
        "2011-04-01T00:00:00Z",
    );
    write_folder(&top.join("2011/april"), &r1, &a);
    let (r2, b) = compute(
        dir.path(),
        &sub_cent_purchases(10, 1),
        "20110501T000000Z-bbbbbbbb",
        "2011-05-01T00:00:00Z",
    );
    write_folder(&top.join("may"), &r2, &b);
    // A run folder's own subfolders are not searched; hidden folders never.
    write_folder(&top.join("may").join(&b.run_id), &r1, &a);
    write_folder(&top.join(".tmp"), &r1, &a);
    let source = FolderSource::open(&top).unwrap();
    let ids: Vec<String> = source
        .list()
        .unwrap()
        .runs
        .iter()
        .map(|r| r.run_id().to_string())
        .collect();
    assert_eq!(ids, [b.run_id.as_str(), a.run_id.as_str()]);
    // A run folder itself is a results root of one run.
    let one = FolderSource::open(&top.join("may").join(&b.run_id)).unwrap();
    assert_eq!(one.list().unwrap().runs.len(), 1);
}

#[test]
fn a_skipped_run_is_listed_in_folders_and_postgres_but_is_never_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("runs");
    let db = testing::database();
    both(
        &root,
        &db,
        &sub_cent_purchases(20, 1),
        "20110501T000000Z-00000001",
        "2011-05-01T00:00:00Z",
    );
    // A newer scheduled run that found nothing new (as `rfm watch --every` records it).
    let (_, mut skipped) = compute(
        dir.path(),
        &sub_cent_purchases(5, 0),
        "20110601T000000Z-00000002",
        "2011-06-01T00:00:00Z",
    );
    skipped.skip(rfm_core::watch::NOTHING_CHANGED);
    rfm_core::output::write_report(&root.join(&skipped.run_id), &skipped).unwrap();
    Store::connect(&db.url)
        .unwrap()
        .record_skipped(&skipped, &Lease::with_defaults("test"))
        .unwrap();

    let folders = FolderSource::open(&root).unwrap();
    let database = DatabaseSource::connect(&db.url).unwrap();
    for source in [&folders as &dyn RunSource, &database] {
        let listing = source.list().unwrap();
        assert!(listing.skipped.is_empty(), "{:?}", listing.skipped);
        let runs: Vec<_> = listing
            .runs
            .iter()
            .map(|r| (r.run_id().to_string(), r.status.as_str(), r.latest))
            .collect();
        let published = if source.describe().starts_with("the database") {
            "published"
        } else {
            "succeeded"
        };
        assert_eq!(
            runs,
            [
                ("20110601T000000Z-00000002".to_string(), "skipped", false),
                ("20110501T000000Z-00000001".to_string(), published, true),
            ],
            "{}",
            source.describe()
        );
        assert_eq!(
            listing.runs[0].report.error.as_deref(),
            Some("no new or changed files")
        );
        assert_eq!(
            source.results(None).unwrap().run_id(),
            "20110501T000000Z-00000001"
        );
        let err = source
            .results(Some("20110601T000000Z-00000002"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is skipped") && err.contains("no results"),
            "{err}"
        );
    }
}
