//! Exit codes of the `rfm` command, one per class of failure, so scripts can
//! tell a typo from bad data from a broken cluster.

use rfm_core::ErrorKind;

/// Success.
#[allow(dead_code)]
pub const OK: i32 = 0;
/// An unexpected internal failure (a bug: please report it).
pub const INTERNAL: i32 = 1;
/// A usage error: unknown flag, bad option value (also clap's own code).
pub const USAGE: i32 = 2;
/// The input cannot be read or is not usable data (missing column, too many malformed lines).
pub const INPUT: i32 = 3;
/// Results could not be written.
pub const OUTPUT: i32 = 4;
/// The cluster failed: coordinator unreachable, workers lost, job cancelled.
pub const CLUSTER: i32 = 5;
/// The database is unreachable, refuses the login, or failed during the load.
pub const DATABASE: i32 = 6;
/// Stopped by SIGINT (Ctrl-C): the run is recorded `failed` ("interrupted").
pub const SIGINT: i32 = 130;
/// Stopped by SIGTERM: the run is recorded `failed` ("interrupted").
pub const SIGTERM: i32 = 143;

/// The exit code of an engine error.
pub fn of(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::Usage => USAGE,
        ErrorKind::Input => INPUT,
        ErrorKind::Output => OUTPUT,
    }
}

/// The exit code for any error reaching `main`.
pub fn of_error(err: &anyhow::Error) -> i32 {
    if let Some(e) = err.downcast_ref::<rfm_core::Error>() {
        return of(e.kind());
    }
    if let Some(e) = err.downcast_ref::<crate::cluster::JobError>() {
        return e.code;
    }
    if err.downcast_ref::<rfm_store::Error>().is_some() {
        return DATABASE;
    }
    if err.downcast_ref::<rfm_settings::Error>().is_some() {
        return USAGE;
    }
    if let Some(e) = err.downcast_ref::<UsageError>() {
        let _ = e;
        return USAGE;
    }
    INTERNAL
}

/// A usage error found outside clap (a flag's value that clap cannot check).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}
