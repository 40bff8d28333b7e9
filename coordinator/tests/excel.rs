//! An Excel workbook through a real coordinator and two workers: the real
//! UCI file written as a one-sheet workbook is split into row ranges of its
//! sheet (more than one task for the one sheet) and
//! gives the reference results.

use std::path::Path;
use std::time::Duration;

use crate::cluster::{cluster, serial};
use crate::support::reference::assert_uci_reference;
use crate::support::REAL;

#[test]
fn a_sheet_is_split_into_row_ranges_that_two_workers_share() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let book = tmp.path().join("Online Retail.xlsx");
    let file = std::fs::File::create(&book).unwrap();
    rfm_core::excel::write::csv_to_xlsx(Path::new(REAL), file, &["Online Retail".into()], false)
        .unwrap();
    let size = std::fs::metadata(&book).unwrap().len();

    let c = cluster(&[], 2, 0);
    let out = tmp.path().join("out");
    // Row ranges of about a quarter of the file each.
    let chunk = format!("{}", size / 4 + 1);
    let mut submit = c.submit(&book, &out, &chunk);
    assert!(
        submit.wait_exit(Duration::from_secs(180)).success(),
        "{}",
        submit.stderr()
    );
    assert_uci_reference(&out);
    let progress = submit.stderr();
    let tasks = progress
        .rsplit_once("tasks ")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|n| n.trim().parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no task count in {progress}"));
    assert!(tasks >= 4, "{tasks} tasks: {progress}");
    for w in &c.workers {
        let log = w.stderr();
        assert!(!log.contains("panicked"), "{log}");
    }
}
