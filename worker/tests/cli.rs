//! `rfm-worker` as a process: bad settings and an unreachable coordinator give
//! a clear message and the cluster exit code, without hanging.

use std::process::Command;
use std::time::{Duration, Instant};

fn worker(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rfm-worker"))
        .args(args)
        .env_remove("RFM_COORDINATOR")
        .env_remove("RFM_THREADS")
        .output()
        .expect("rfm-worker runs")
}

#[test]
fn an_unreachable_coordinator_is_named_and_gives_up_in_time() {
    let started = Instant::now();
    let o = worker(&[
        "--coordinator",
        "http://127.0.0.1:1",
        "--listen",
        "127.0.0.1:0",
        "--register-timeout",
        "1s",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(
        err.contains("http://127.0.0.1:1") && err.contains("--coordinator"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "gave up after {:?}",
        started.elapsed()
    );
}

#[test]
fn a_bad_listen_address_is_a_usage_error() {
    let o = worker(&["--coordinator", "http://127.0.0.1:1", "--listen", "nowhere"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--listen"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
