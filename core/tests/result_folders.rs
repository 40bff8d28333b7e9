//! A run folder's files written ahead or replaced in part: `customers.csv`
//! written piece by piece as it arrives, then the rest of the results with it
//! (what `rfm submit` does), a staged folder given up, and a failed report put
//! beside results already written. Each leaves either the old folder or the
//! new one, whole, and nothing else beside it.

use std::fs;
use std::path::Path;

use rfm_core::output::{self, OutDir};
use rfm_core::report::{RunReport, Stage};
use rfm_core::RunOptions;

use crate::common::{customers_csv, run_bytes, segments_csv};

const INPUT: &[u8] =
    b"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
536365,85123A,HOLDER,6,12/1/2010 8:26,2.55,17850,United Kingdom\n\
536366,22633,WARMER,6,12/2/2010 8:28,1.85,17850,United Kingdom\n\
536367,84879,BIRD,32,12/5/2010 8:34,1.69,13047,France\n\
536368,22960,JAR,6,12/9/2010 8:34,4.25,12583,France\n";

/// `target` (named `run`) is alone in `parent`, no staging folder beside
/// it, and holds the three result files and nothing else.
fn assert_results_alone(parent: &Path, target: &Path) {
    assert_eq!(
        names_in(parent),
        ["run"],
        "no staging folder left beside it"
    );
    assert_eq!(
        names_in(target),
        ["customers.csv", "run.json", "segments.csv"]
    );
}

/// Everything in `dir`, hidden names included, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn report(run_id: &str) -> RunReport {
    RunReport::before_input(run_id, "input.csv", &RunOptions::default())
}

#[test]
fn customers_written_ahead_become_the_folder_with_the_rest() {
    let result = run_bytes(INPUT, &RunOptions::default()).result.unwrap();
    let customers = customers_csv(&result);
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("run");
    // A previous run's folder, replaced as a whole.
    output::write_results(&target, &result, &report("old")).unwrap();
    fs::write(target.join(output::CUSTOMERS_FILE), b"old customers").unwrap();

    let out = OutDir::prepare(&target).unwrap();
    let mut staged = out.stage_customers().unwrap();
    assert!(staged.path().starts_with(tmp.path()));
    assert!(
        !staged.path().starts_with(&target),
        "not in the target itself"
    );
    for piece in customers.chunks(7) {
        staged.write(piece).unwrap();
    }
    // Until the rest is written, the old folder is what readers see.
    assert_eq!(
        fs::read(target.join(output::CUSTOMERS_FILE)).unwrap(),
        b"old customers"
    );
    out.write_results_staged(&result, staged, &report("new"))
        .unwrap();

    assert_eq!(
        fs::read(target.join(output::CUSTOMERS_FILE)).unwrap(),
        customers
    );
    assert_eq!(
        fs::read(target.join(output::SEGMENTS_FILE)).unwrap(),
        segments_csv(&result)
    );
    let written: serde_json::Value =
        serde_json::from_slice(&fs::read(target.join(output::REPORT_FILE)).unwrap()).unwrap();
    assert_eq!(written["run_id"], "new");
    assert_results_alone(tmp.path(), &target);
}

#[test]
fn customers_written_ahead_then_given_up_leave_the_old_folder() {
    let result = run_bytes(INPUT, &RunOptions::default()).result.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("run");
    output::write_results(&target, &result, &report("old")).unwrap();
    let before: Vec<Vec<u8>> = output::RUN_FILES
        .iter()
        .map(|f| fs::read(target.join(f)).unwrap())
        .collect();

    let out = OutDir::prepare(&target).unwrap();
    let mut staged = out.stage_customers().unwrap();
    staged.write(b"customer_id,recency\n1,").unwrap();
    assert_eq!(
        names_in(tmp.path()).len(),
        2,
        "the staging folder beside it"
    );
    drop(staged);

    assert_eq!(names_in(tmp.path()), ["run"]);
    let after: Vec<Vec<u8>> = output::RUN_FILES
        .iter()
        .map(|f| fs::read(target.join(f)).unwrap())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn a_failed_report_replaces_only_the_report_beside_written_results() {
    let result = run_bytes(INPUT, &RunOptions::default()).result.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("run");
    output::write_results(&target, &result, &report("r1")).unwrap();

    let mut failed = report("r1");
    failed.fail(Stage::Database, "publishing failed: the database went away");
    OutDir::prepare(&target)
        .unwrap()
        .replace_report(&failed)
        .unwrap();

    assert_eq!(
        fs::read(target.join(output::CUSTOMERS_FILE)).unwrap(),
        customers_csv(&result)
    );
    assert_eq!(
        fs::read(target.join(output::SEGMENTS_FILE)).unwrap(),
        segments_csv(&result)
    );
    let written: serde_json::Value =
        serde_json::from_slice(&fs::read(target.join(output::REPORT_FILE)).unwrap()).unwrap();
    assert_eq!(written["status"], "failed", "{written}");
    assert!(
        written["error"]
            .as_str()
            .unwrap_or_default()
            .contains("the database went away"),
        "{written}"
    );
    assert_results_alone(tmp.path(), &target);
}

#[test]
fn a_failed_report_is_not_put_beside_a_link_planted_for_the_results() {
    let result = run_bytes(INPUT, &RunOptions::default()).result.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("run");
    // The folder checked when the run starts, its results written, then
    // customers.csv swapped for a link before the failed report goes in.
    let out = OutDir::prepare(&target).unwrap();
    out.write_results(&result, &report("r1")).unwrap();
    let secret = tmp.path().join("secret.txt");
    fs::write(&secret, b"not the run's").unwrap();
    fs::remove_file(target.join(output::CUSTOMERS_FILE)).unwrap();
    std::os::unix::fs::symlink(&secret, target.join(output::CUSTOMERS_FILE)).unwrap();

    let mut failed = report("r1");
    failed.fail(Stage::Database, "publishing failed");
    let e = out.replace_report(&failed).unwrap_err().to_string();
    assert!(
        e.contains("customers.csv") && e.contains("not a regular file"),
        "{e}"
    );
    let mut beside = names_in(tmp.path());
    beside.sort();
    assert_eq!(beside, ["run", "secret.txt"], "no staging folder left");
    assert!(
        fs::symlink_metadata(target.join(output::CUSTOMERS_FILE))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the folder is left as it was"
    );
}
