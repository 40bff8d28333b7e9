//! Run leases against a real PostgreSQL server: an expired lease makes the run
//! `abandoned` with its owner in the reason (never the latest), a heartbeat
//! keeps a live run, an owner that lost the database loses its run, and
//! runs left `running` before leases existed are cleaned up after the
//! migration.

use std::time::Duration;

use rfm_core::report::RunReport;
use rfm_store::testing;
use rfm_store::{Error, Heartbeat, Lease, RunStatus, Store};

use crate::common::*;

fn lease(kind: &str, millis: u64) -> Lease {
    Lease::new(
        kind,
        Duration::from_millis(millis),
        Duration::from_millis(millis / 4),
    )
    .expect("valid lease terms")
}

fn small_run() -> (RunReport, rfm_core::RfmResult) {
    let input = real_data("online_retail_ii_2009-12_extract.csv");
    let result = result_of(&input);
    (report_for(&input, &result.ledger, Some(&result)), result)
}

fn status_of(store: &mut Store, run_id: &str) -> (RunStatus, Option<String>) {
    let info = store.run(run_id).expect("the run");
    (info.status, info.error)
}

#[test]
fn an_expired_lease_makes_the_run_abandoned_and_never_the_latest() {
    let db = testing::database();
    let mut store = Store::connect(&db.url).unwrap();
    let (published, result) = small_run();
    let run = store
        .begin_run(&published, &Lease::with_defaults("test"))
        .unwrap();
    store.publish(run, &published, &result).unwrap();

    let (stale, _) = small_run();
    let owner = lease("rfm test", 300);
    let stale_run = store.begin_run(&stale, &owner).unwrap();
    // Within its lease, nobody takes it.
    assert!(store.abandon_expired().unwrap().is_empty());
    std::thread::sleep(Duration::from_millis(700));

    let mut starter = Store::connect(&db.url).unwrap();
    let abandoned = starter.abandon_expired().unwrap();
    assert_eq!(abandoned.len(), 1);
    assert_eq!(abandoned[0].run_id, stale.run_id);
    let reason = &abandoned[0].reason;
    assert!(reason.starts_with("lease expired at 20"), "{reason}");
    let o = &owner.owner;
    assert!(
        reason.ends_with(&format!(
            "Z; owner {}/{} (rfm test, instance {})",
            o.host, o.pid, o.instance
        )),
        "{reason}"
    );
    assert_eq!(
        status_of(&mut starter, &stale.run_id),
        (RunStatus::Abandoned, Some(reason.clone()))
    );
    // Once only.
    assert!(starter.abandon_expired().unwrap().is_empty());
    // Never the latest; its owner can no longer publish it.
    let latest = starter.latest_run().unwrap().expect("a latest run");
    assert_eq!(latest.run_id, published.run_id);
    let err = store.publish(stale_run, &stale, &result).unwrap_err();
    assert!(
        matches!(&err, Error::NotRunning { status, .. } if status == "abandoned"),
        "{err}"
    );
    assert_eq!(
        starter.latest_run().unwrap().unwrap().run_id,
        published.run_id
    );
    assert_eq!(
        status_of(&mut starter, &stale.run_id).0,
        RunStatus::Abandoned
    );
}

#[test]
fn a_heartbeat_keeps_a_live_run_and_its_end_lets_the_lease_expire() {
    let db = testing::database();
    let mut store = Store::connect(&db.url).unwrap();
    let (report, result) = small_run();
    let owner = lease("rfm test", 400);
    let run = store.begin_run(&report, &owner).unwrap();
    let heartbeat = Heartbeat::start(&db.url, owner.clone(), |w| panic!("{w}")).unwrap();
    let mut starter = Store::connect(&db.url).unwrap();
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(200));
        assert!(starter.abandon_expired().unwrap().is_empty());
    }
    assert_eq!(
        status_of(&mut starter, &report.run_id).0,
        RunStatus::Running
    );

    // A second run of the same owner, published: renewals leave it alone.
    let (other, other_result) = small_run();
    let other_run = store.begin_run(&other, &owner).unwrap();
    store.publish(other_run, &other, &other_result).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        status_of(&mut starter, &other.run_id).0,
        RunStatus::Published
    );

    drop(heartbeat);
    std::thread::sleep(Duration::from_millis(900));
    let abandoned = starter.abandon_expired().unwrap();
    assert_eq!(abandoned.len(), 1, "{abandoned:?}");
    assert_eq!(abandoned[0].run_id, report.run_id);
    assert!(store.publish(run, &report, &result).is_err());
}

#[test]
fn an_owner_that_lost_the_database_loses_its_run_once_the_lease_expires() {
    let db = testing::database();
    let mut store = Store::connect(&db.url).unwrap();
    let (report, _) = small_run();
    let owner = lease("rfm test", 600);
    store.begin_run(&report, &owner).unwrap();
    let warnings = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let heard = warnings.clone();
    let heartbeat = Heartbeat::start(&db.url, owner, move |w| {
        heard.lock().unwrap().push(w.to_string())
    })
    .unwrap();
    // The database goes away for longer than the lease, and the owner ends
    // meanwhile: the run is left `running` with nobody able to record its end.
    db.cut_off();
    std::thread::sleep(Duration::from_millis(1200));
    drop(heartbeat);
    std::thread::sleep(Duration::from_millis(300));
    db.reopen();
    let mut starter = Store::connect(&db.url).unwrap();
    let abandoned = starter.abandon_expired().unwrap();
    assert_eq!(abandoned.len(), 1, "{abandoned:?}");
    assert_eq!(
        status_of(&mut starter, &report.run_id).0,
        RunStatus::Abandoned
    );
    let warnings = warnings.lock().unwrap();
    assert!(
        warnings
            .first()
            .is_some_and(|w| w.starts_with("cannot renew run leases")),
        "{warnings:?}"
    );
}

#[test]
fn runs_left_running_before_leases_are_abandoned_after_the_migration() {
    let db = testing::database();
    let mut c = db.client();
    // A database at schema version 1 with a run left `running`.
    c.batch_execute(rfm_store::MIGRATIONS[0].sql).unwrap();
    c.batch_execute(
        "CREATE TABLE rfm_schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now());
         INSERT INTO rfm_schema_migrations (version, name) VALUES (1, 'runs');
         INSERT INTO rfm_runs (run_id, status, started_at, input, options)
             VALUES ('left-running', 'running', now() - interval '1 day', '[]', '{}');",
    )
    .unwrap();
    let mut store = Store::connect(&db.url).unwrap();
    let abandoned = store.abandon_expired().unwrap();
    assert_eq!(abandoned.len(), 1);
    assert_eq!(abandoned[0].run_id, "left-running");
    assert!(
        abandoned[0]
            .reason
            .ends_with("; owner unknown (recorded before run leases)"),
        "{}",
        abandoned[0].reason
    );
    assert_eq!(
        store.run("left-running").unwrap().status,
        RunStatus::Abandoned
    );
}

#[test]
fn lease_terms_need_the_renewal_well_within_the_lease() {
    assert!(Lease::new("t", Duration::from_secs(30), Duration::from_secs(5)).is_ok());
    let err = Lease::new("t", Duration::from_secs(5), Duration::from_secs(5)).unwrap_err();
    assert!(err.contains("at least twice"), "{err}");
    assert!(Lease::new("t", Duration::from_secs(1), Duration::ZERO).is_err());
}
