//! criterion bench of loading a run into PostgreSQL: [`Store::publish`]
//! (binary `COPY` of customers and segments, and the run turned `published`,
//! in one transaction) of 100,000 customers, on a throwaway server from
//! `rfm_store::testing` (or `RFM_TEST_DATABASE_URL`). Reports customers/s.
//!
//! The customers are those of a 200,000-line generated file, repeated with
//! suffixed ids up to [`CUSTOMERS`]. Each iteration empties the tables and
//! records a new run (untimed), then times `publish`. Without PostgreSQL the
//! bench says why and is skipped.

use std::panic;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use rfm_benches::Fixture;
use rfm_core::engine;
use rfm_core::report::{self, RunReport};
use rfm_store::testing::{self, TestDatabase};
use rfm_store::Store;

const ROWS: u64 = 200_000;
const CUSTOMERS: usize = 100_000;

/// A fresh database, or why none can be had (the testing module panics).
fn database() -> Result<TestDatabase, String> {
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let db = panic::catch_unwind(testing::database);
    panic::set_hook(hook);
    db.map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown reason".into())
    })
}

fn copy(c: &mut Criterion) {
    let db = match database() {
        Ok(db) => db,
        Err(reason) => {
            println!("copy bench skipped: {reason}");
            return;
        }
    };
    let mut store = Store::connect(&db.url).expect("connect and migrate the test database");

    let f = Fixture::generated(ROWS);
    let (ledger, result) = engine::finish_run(
        engine::run_local(&f.files, &f.opts).expect("run"),
        &f.files,
        &f.opts,
    );
    let mut result = result.expect("score the run");
    let base = std::mem::take(&mut result.customers);
    result.customers = base
        .iter()
        .cycle()
        .enumerate()
        .take(CUSTOMERS)
        .map(|(i, c)| {
            let mut c = c.clone();
            c.customer_id = format!("{}-{}", c.customer_id, i / base.len());
            c
        })
        .collect();
    let mut rep = RunReport::begin(&report::new_run_id(), &f.files, &f.opts);
    rep.set_ledger(&ledger);
    rep.customers = CUSTOMERS as u64;
    println!(
        "copy: {CUSTOMERS} customers ({} distinct in the file) per publish",
        base.len()
    );

    let mut g = c.benchmark_group("store");
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(CUSTOMERS as u64));
    let mut n = 0u64;
    g.bench_function("publish_binary_copy", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                store
                    .client()
                    .batch_execute("TRUNCATE rfm_runs CASCADE")
                    .expect("empty the tables");
                n += 1;
                let mut rep = rep.clone();
                rep.run_id = format!("{}-{n}", rep.run_id);
                let run = store
                    .begin_run(&rep, &rfm_store::Lease::with_defaults("bench"))
                    .expect("record the run");
                let started = Instant::now();
                store.publish(run, &rep, &result).expect("publish");
                spent += started.elapsed();
            }
            spent
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5));
    targets = copy
}
criterion_main!(benches);
