//! Parquet through a real coordinator and two workers: the row groups are
//! the tasks, spread over the workers, and the real UCI file written as
//! typed Parquet gives the reference result; a truncated `.csv.gz` fails the
//! job naming the file.

use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::cluster::{assert_real_file_reference, cluster, serial};
use crate::support::REAL;

#[path = "../../core/tests/common/uci_parquet.rs"]
mod uci_parquet;

const REFERENCE_CUSTOMERS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../core/tests/data/reference/online_retail.customers.sha256"
);

#[test]
fn parquet_row_groups_are_tasks_on_two_workers() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("online_retail.parquet");
    uci_parquet::write_uci_parquet(Path::new(REAL), &input, 40_000);
    let c = cluster(&[], 2, 0);
    let out = tmp.path().join("out");
    let mut submit = c.submit(&input, &out, "1MiB");
    assert!(
        submit.wait_exit(Duration::from_secs(120)).success(),
        "{}",
        submit.stderr()
    );
    assert_real_file_reference(&out);
    let customers = std::fs::read(out.join("customers.csv")).unwrap();
    let sha: String = Sha256::digest(&customers)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        sha,
        std::fs::read_to_string(REFERENCE_CUSTOMERS).unwrap().trim()
    );
    let status = c.job_status().expect("the job's status");
    assert!(status.tasks_total > 1, "{status:?}");

    // A truncated gzip file: the job fails, the file is named, nothing is published.
    let csv = std::fs::read(REAL).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &csv[..3_000_000]).unwrap();
    let gz = gz.finish().unwrap();
    let cut = tmp.path().join("cut.csv.gz");
    std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
    let out = tmp.path().join("out-cut");
    let mut submit = c.submit(&cut, &out, "1MiB");
    let status = submit.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(3), "{}", submit.stderr());
    assert!(
        submit.stderr().contains("cut.csv.gz"),
        "{}",
        submit.stderr()
    );
    assert!(!out.join("customers.csv").exists());
}
