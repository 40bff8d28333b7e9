//! The store against a real PostgreSQL server: migrations, NUMERIC encoding,
//! the published views against the core's result files, atomic publication
//! under a concurrent reader, a load killed mid-way, failed runs and diffs;
//! run leases in `leases`.

mod common;
mod leases;
mod tls;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rfm_core::output::{CUSTOMERS_HEADER, SEGMENTS_HEADER};
use rfm_core::RfmResult;
use rfm_store::pgtypes::{DayDate, DecimalText, NaiveTimestamp};
use rfm_store::testing;
use rfm_store::{CustomerQuery, Error, Store, MIGRATIONS};

fn publish(store: &mut Store, input: &std::path::Path, result: &RfmResult) -> rfm_store::RunId {
    let report = report_for(input, &result.ledger, Some(result));
    let run = store
        .begin_run(&report, &rfm_store::Lease::with_defaults("test"))
        .expect("begin run");
    store.publish(run, &report, result).expect("publish");
    run
}

#[test]
fn migrations_are_applied_once() {
    let db = testing::database();
    drop(Store::connect(&db.url).expect("first connect"));
    // Concurrent starts serialise on the advisory lock.
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let url = db.url.clone();
            std::thread::spawn(move || Store::connect(&url).map(|_| ()))
        })
        .collect();
    for h in handles {
        h.join().unwrap().expect("concurrent connect");
    }
    let mut c = db.client();
    let versions: Vec<i32> = c
        .query(
            "SELECT version FROM rfm_schema_migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(versions, expected);
}

#[test]
fn numeric_round_trips_through_the_server() {
    let db = testing::database();
    let mut c = db.client();
    for text in [
        "0",
        "0.00",
        "1",
        "-1",
        "8.1",
        "-8.10",
        "10000",
        "9999.9999",
        "12345.678",
        "0.00001",
        "0.000000000000000001",
        "279489.020000000000000001",
        "-170141183460469231731.687303715884105727",
        "100000000.00000001",
    ] {
        let row = c
            .query_one("SELECT $1::numeric::text", &[&DecimalText(text)])
            .unwrap();
        let back: String = row.get(0);
        assert_eq!(back, text, "NUMERIC round trip of {text}");
    }
    // Normalised forms: no negative zero, no leading zeros.
    for (text, expected) in [
        ("-0.0", "0.0"),
        ("007.50", "7.50"),
        (".5", "0.5"),
        ("+3", "3"),
    ] {
        let back: String = c
            .query_one("SELECT $1::numeric::text", &[&DecimalText(text)])
            .unwrap()
            .get(0);
        assert_eq!(back, expected);
    }
    // Values are compared by the server, not only printed.
    let eq: bool = c
        .query_one(
            "SELECT $1::numeric = 12345.678",
            &[&DecimalText("12345.6780")],
        )
        .unwrap()
        .get(0);
    assert!(eq);
    let ts: String = c
        .query_one(
            "SELECT $1::timestamp::text || ' ' || $2::date::text",
            &[&NaiveTimestamp(1_291_191_960), &DayDate(15_318)],
        )
        .unwrap()
        .get(0);
    assert_eq!(ts, "2010-12-01 08:26:00 2011-12-10");
}

#[test]
fn latest_views_equal_the_result_files_on_the_uci_file() {
    let input = real_data("online_retail.csv");
    let result = result_of(&input);
    let db = testing::database();
    let mut store = Store::connect(&db.url).unwrap();
    let started = Instant::now();
    publish(&mut store, &input, &result);
    eprintln!("published 4,338 customers in {:?}", started.elapsed());

    let mut c = db.client();
    let customers = text_rows(
        &mut c,
        "SELECT customer_id, recency::text, frequency::text, monetary::text,
                first_purchase::text, last_purchase::text, country,
                r::text, f::text, m::text, rfm_score, segment
         FROM rfm_latest_customers ORDER BY customer_id COLLATE \"C\"",
    );
    assert_eq!(customers.len(), 4338);
    assert_eq!(
        to_csv(&CUSTOMERS_HEADER, &customers),
        customers_csv(&result)
    );

    let segments = text_rows(
        &mut c,
        "SELECT segment, customers::text, customers_share::text, revenue::text,
                revenue_share::text, avg_recency::text, avg_frequency::text, avg_monetary::text
         FROM rfm_latest_segments ORDER BY segment COLLATE \"C\"",
    );
    assert_eq!(to_csv(&SEGMENTS_HEADER, &segments), segments_csv(&result));
    // The reference figures (spec): Champions 632 customers, 48.7 % of revenue.
    let champions = segments
        .iter()
        .find(|r| r[0] == "Champions")
        .expect("Champions");
    assert_eq!(champions[1], "632");
    assert!(
        champions[4].starts_with("0.487"),
        "revenue share {}",
        champions[4]
    );

    // The API gives the same figures.
    let api: Vec<Vec<String>> = store
        .latest_segments()
        .unwrap()
        .into_iter()
        .map(|s| {
            vec![
                s.segment,
                s.customers.to_string(),
                s.customers_share,
                s.revenue,
                s.revenue_share,
                s.avg_recency,
                s.avg_frequency,
                s.avg_monetary,
            ]
        })
        .collect();
    assert_eq!(api, segments);
    let all = store.customers(&CustomerQuery::default()).unwrap();
    assert_eq!(all.len(), 4338);
    for (row, c) in all.iter().zip(&result.customers) {
        assert_eq!(row.customer_id, c.customer_id);
        assert_eq!(row.monetary, c.monetary.to_fixed(2));
        assert_eq!(row.monetary_exact, c.monetary.to_exact_string());
        assert_eq!(row.segment, c.segment.name());
    }
    let champions = store
        .customers(&CustomerQuery {
            segment: Some("Champions".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(champions.len(), 632);
    let one = store
        .customers(&CustomerQuery {
            customer_id: Some("12346".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].recency, 326);

    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.status, rfm_store::RunStatus::Published);
    assert!(run.latest);
    assert_eq!(run.lines_read, 541_909);
    assert_eq!(run.purchase_lines, 397_884);
    assert_eq!(run.customers, 4338);
    assert_eq!(run.as_of.as_deref(), Some("2011-12-10"));
    let excluded: (i64, i64, i64) = {
        let r = c
            .query_one(
                "SELECT excluded_missing_customer, excluded_cancellation, excluded_price_le_0 FROM rfm_runs",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(excluded, (135_080, 8_905, 40));
}

/// (customers in the customers view, customers summed over the segments
/// view, revenue), read in one statement.
fn latest_figures(c: &mut postgres::Client) -> (i64, Option<i64>, Option<String>) {
    let r = c
        .query_one(
            "SELECT (SELECT count(*) FROM rfm_latest_customers),
                    (SELECT sum(customers)::bigint FROM rfm_latest_segments),
                    (SELECT sum(monetary_exact)::text FROM rfm_latest_customers)",
            &[],
        )
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

fn figures_of(result: &RfmResult) -> (i64, Option<i64>, Option<String>) {
    let n = result.customers.len() as i64;
    let total: i128 = result.customers.iter().map(|c| c.monetary.0).sum();
    (
        n,
        Some(n),
        Some(rfm_core::money::Money(total).to_exact_string()),
    )
}

#[test]
fn a_concurrent_reader_sees_the_old_run_or_the_new_one_never_a_part() {
    let small_input = real_data("online_retail_ii_2009-12_extract.csv");
    let big_input = real_data("online_retail.csv");
    let small = result_of(&small_input);
    let big = result_of(&big_input);
    let db = testing::database();
    let mut store = Store::connect(&db.url).unwrap();
    publish(&mut store, &small_input, &small);

    let old = figures_of(&small);
    let new = figures_of(&big);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let mut c = db.client();
        let (old, new) = (old.clone(), new.clone());
        std::thread::spawn(move || {
            let (mut saw_old, mut saw_new) = (0, 0);
            loop {
                let done = stop.load(Ordering::SeqCst);
                let seen = latest_figures(&mut c);
                if seen == old {
                    saw_old += 1;
                } else if seen == new {
                    saw_new += 1;
                } else {
                    panic!("reader saw a partial run: {seen:?} (old {old:?}, new {new:?})");
                }
                if done {
                    return (saw_old, saw_new);
                }
            }
        })
    };
    // Several publications while the reader polls.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(50));
        publish(&mut store, &big_input, &big);
        publish(&mut store, &small_input, &small);
    }
    publish(&mut store, &big_input, &big);
    stop.store(true, Ordering::SeqCst);
    let (saw_old, saw_new) = reader.join().expect("reader");
    assert!(saw_old > 0, "the reader never saw the first run");
    assert!(saw_new > 0, "the reader never saw the last run");
    assert_eq!(latest_figures(&mut db.client()), new);
}

#[test]
fn a_load_killed_mid_way_rolls_back_and_the_previous_run_stays_latest() {
    let input = real_data("online_retail_ii_2009-12_extract.csv");
    let first = result_of(&input);
    let big_input = real_data("online_retail.csv");
    let big = result_of(&big_input);
    let db = testing::database();
    let mut store = Store::connect(&db.url).unwrap();
    let first_run = publish(&mut store, &input, &first);

    let mut report = report_for(&big_input, &big.ledger, Some(&big));
    let run = store
        .begin_run(&report, &rfm_store::Lease::with_defaults("test"))
        .unwrap();
    // Hold a lock that makes the loader's COPY wait, then terminate the loader.
    let mut locker = db.client();
    let mut lock_tx = locker.transaction().unwrap();
    lock_tx
        .batch_execute("LOCK TABLE rfm_customers IN SHARE MODE")
        .unwrap();
    let (outcome, killed) = std::thread::scope(|scope| {
        let killer = scope.spawn(|| db.terminate_copy_waiting_on_lock(Duration::from_secs(30)));
        let outcome = store.publish(run, &report, &big);
        (outcome, killer.join().unwrap())
    });
    assert!(killed, "the loading backend was never seen waiting");
    lock_tx.rollback().unwrap();
    let err = outcome.expect_err("a killed load must fail");
    assert!(err.is_connection_lost(), "{err}");
    assert!(matches!(err, Error::Query { .. }), "{err}");

    // The run is recorded as failed over a new connection.
    report.status = rfm_core::RunStatus::Failed;
    report.error = Some(err.to_string());
    store
        .fail(run, &report)
        .expect("record the failure after reconnecting");
    let runs = store.runs().unwrap();
    let statuses: BTreeMap<i64, (String, bool)> = runs
        .iter()
        .map(|r| (r.id.0, (r.status.to_string(), r.latest)))
        .collect();
    assert_eq!(statuses[&first_run.0], ("published".to_string(), true));
    assert_eq!(statuses[&run.0], ("failed".to_string(), false));
    let failed = runs.iter().find(|r| r.id == run).unwrap();
    assert!(failed
        .error
        .as_deref()
        .unwrap_or("")
        .contains("loading customers"));
    let mut c = db.client();
    let left: i64 = c
        .query_one(
            "SELECT count(*) FROM rfm_customers WHERE run = $1",
            &[&run.0],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    assert_eq!(latest_figures(&mut c), figures_of(&first));
    // A failed run cannot be published afterwards.
    assert!(matches!(
        store.publish(run, &report, &big),
        Err(Error::NotRunning { .. })
    ));
}

#[test]
fn a_run_over_the_malformed_limit_is_recorded_failed_and_publishes_nothing() {
    let good_input = real_data("online_retail_ii_2009-12_extract.csv");
    let good = result_of(&good_input);
    let db = testing::database();
    let mut store = Store::connect(&db.url).unwrap();
    let good_run = publish(&mut store, &good_input, &good);

    let dir = tempfile::tempdir().unwrap();
    let bad_input = dir.path().join("bad.csv");
    let mut text = String::from(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n",
    );
    for i in 0..50 {
        text.push_str(&format!(
            "5{i:05},A,x,1,2011-01-01 10:00:00,1.5,{},UK\n",
            12000 + i
        ));
    }
    for i in 0..5 {
        text.push_str(&format!(
            "6{i:05},A,x,one,2011-01-01 10:00:00,1.5,13000,UK\n"
        ));
    }
    std::fs::write(&bad_input, text).unwrap();
    let (ledger, outcome) = compute(&bad_input, &rfm_core::RunOptions::default());
    let err = outcome.expect_err("over the malformed limit");
    let mut report = report_for(&bad_input, &ledger, None);
    let run = store
        .begin_run(&report, &rfm_store::Lease::with_defaults("test"))
        .unwrap();
    report.status = rfm_core::RunStatus::Failed;
    report.error = Some(err.to_string());
    store.fail(run, &report).unwrap();

    let runs = store.runs().unwrap();
    let failed = runs.iter().find(|r| r.id == run).unwrap();
    assert_eq!(failed.status, rfm_store::RunStatus::Failed);
    assert_eq!(failed.malformed, 5);
    assert_eq!(failed.lines_read, 55);
    assert!(failed.error.as_deref().unwrap().contains("malformed"));
    let mut c = db.client();
    let samples: i32 = c
        .query_one(
            "SELECT jsonb_array_length(malformed_samples) FROM rfm_runs WHERE id = $1",
            &[&run.0],
        )
        .unwrap()
        .get(0);
    assert_eq!(samples, 5);
    assert_eq!(store.latest_run().unwrap().map(|r| r.id), Some(good_run));
    let rows: i64 = c
        .query_one(
            "SELECT count(*) FROM rfm_customers WHERE run = $1",
            &[&run.0],
        )
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);
}

#[test]
fn run_ids_resolve_to_runs_and_unknown_ids_are_named() {
    let a_input = real_data("online_retail_ii_2009-12_extract.csv");
    let b_input = real_data("online_retail.csv");
    let a = result_of(&a_input);
    let b = result_of(&b_input);
    let db = testing::database();
    let mut store = Store::connect(&db.url).unwrap();
    let run_a = publish(&mut store, &a_input, &a);
    publish(&mut store, &b_input, &b);

    // Run ids resolve to runs; unknown ids are named in the error.
    let a_name = store.runs().unwrap()[1].run_id.clone();
    assert_eq!(store.run(&a_name).unwrap().id, run_a);
    assert!(matches!(store.run("nope"), Err(Error::UnknownRun { .. })));
}

#[test]
fn an_unreachable_server_fails_fast_naming_host_and_port() {
    let port = testing::unused_port();
    let started = Instant::now();
    let err = Store::connect(&format!("postgresql://rfm:secret@127.0.0.1:{port}/rfm"))
        .err()
        .expect("nothing listens there");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );
    let msg = err.to_string();
    assert!(matches!(err, Error::Connect { .. }), "{msg}");
    assert!(
        msg.contains("127.0.0.1") && msg.contains(&port.to_string()),
        "{msg}"
    );
    assert!(msg.contains("check that PostgreSQL is running"), "{msg}");
    assert!(
        !msg.contains("secret"),
        "the password must not be shown: {msg}"
    );
}

#[test]
fn a_missing_database_or_role_is_named_with_what_to_do() {
    let db = testing::database();
    let url = testing::with_dbname(&db.url, "rfm_no_such_database");
    let err = Store::connect(&url).err().expect("no such database");
    let msg = err.to_string();
    assert!(
        msg.contains("rfm_no_such_database") && msg.contains("create the database"),
        "{msg}"
    );
    // An unknown role on the private test server (trust authentication).
    if db.url.starts_with("postgresql://postgres@") {
        let url = db.url.replacen("postgres@", "rfm_no_such_role@", 1);
        let msg = Store::connect(&url)
            .err()
            .expect("no such role")
            .to_string();
        assert!(
            msg.contains("rfm_no_such_role") && msg.contains("check the user name and password"),
            "{msg}"
        );
    }
}
