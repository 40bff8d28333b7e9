//! Shared by the read side's tests: runs of the engine on generated
//! purchases, written as `rfm run --out` folders and published to a
//! throwaway PostgreSQL.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::Path;

use rfm_core::output;
use rfm_core::report::RunReport;
use rfm_core::RfmResult;
use rfm_store::testing::runs::compute_run;
use rfm_store::testing::TestDatabase;
use rfm_store::{Lease, Store};

/// Purchases of `customers` customers with sub-cent prices (0.005, 0.125,
/// 0.0625): most customers' monetary is not a whole number of cents.
/// `shift` changes who buys how often, so two runs differ.
pub fn sub_cent_purchases(customers: u32, shift: u32) -> String {
    let prices = ["0.005", "0.125", "0.0625", "0.375"];
    let mut csv = String::from(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n",
    );
    let mut invoice = 1000;
    for c in 0..customers {
        let visits = 1 + (c * 7 + shift) % 5;
        for v in 0..visits {
            invoice += 1;
            let day = 1 + (c * 3 + v * 5 + shift) % 28;
            let quantity = 1 + (c + v + shift) % 3;
            let price = prices[((c + v * 3 + shift) % 4) as usize];
            writeln!(
                csv,
                "{invoice},A,x,{quantity},2011-02-{day:02} 10:00:00,{price},{},UK",
                12000 + c
            )
            .unwrap();
        }
    }
    csv
}

/// Runs the engine on `input` (CSV text) and returns the result and its
/// report with `run_id` and `started_at`.
pub fn compute(dir: &Path, input: &str, run_id: &str, started_at: &str) -> (RfmResult, RunReport) {
    std::fs::create_dir_all(dir).unwrap();
    let file = dir.join(format!(".{run_id}.csv"));
    std::fs::write(&file, input).unwrap();
    compute_run(&file, run_id, started_at)
}

/// Writes a run's folder `root/<run_id>` as `rfm run --out` does.
pub fn write_folder(root: &Path, result: &RfmResult, report: &RunReport) {
    output::write_results(&root.join(&report.run_id), result, report).expect("write results");
}

/// Publishes a run to the database.
pub fn publish(db: &TestDatabase, result: &RfmResult, report: &RunReport) {
    let mut store = Store::connect(&db.url).expect("connect");
    let id = store
        .begin_run(report, &Lease::with_defaults("test"))
        .expect("begin run");
    store.publish(id, report, result).expect("publish");
}

/// A run both written as a folder under `root` and published to `db`.
pub fn both(
    root: &Path,
    db: &TestDatabase,
    input: &str,
    run_id: &str,
    started_at: &str,
) -> RfmResult {
    let (result, report) = compute(root, input, run_id, started_at);
    write_folder(root, &result, &report);
    publish(db, &result, &report);
    result
}
