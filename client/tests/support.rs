//! What the integration tests share: the real UCI file, the reference
//! outputs, and `rfm` run with no setting taken from the environment.

use std::process::{Command, Output};

/// The real UCI Online Retail export (from ../shared, as CI has it).
pub const UCI: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/real/online_retail.csv"
);

/// The reference outputs of the UCI file (the DuckDB reference's files).
pub const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/data/reference");

/// `rfm ARGS` without any `RFM_*` or `DATABASE_URL` of the test's environment.
pub fn rfm(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rfm"));
    for (k, _) in std::env::vars() {
        if k.starts_with("RFM_") || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    cmd.args(args).output().expect("rfm runs")
}

/// `o`, after asserting that it succeeded (its stderr otherwise).
pub fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}
