//! Exit codes of the `rfm` command: the numbers are those of every rfm
//! binary ([`rfm_core::exit`]); this module sorts the errors reaching `main`
//! into them.

pub use rfm_core::exit::{of, CLUSTER, DATABASE, INPUT, INTERNAL, OUTPUT, SIGINT, SIGTERM, USAGE};

/// The exit code for any error reaching `main`.
pub fn of_error(err: &anyhow::Error) -> i32 {
    if let Some(e) = err.downcast_ref::<rfm_core::Error>() {
        return of(e.kind());
    }
    if let Some(e) = err.downcast_ref::<crate::cluster::JobError>() {
        return e.code;
    }
    if let Some(e) = err.downcast_ref::<rfm_store::Error>() {
        // A URL that cannot be used is a bad setting, not a database failure.
        return match e {
            rfm_store::Error::Url { .. } => USAGE,
            _ => DATABASE,
        };
    }
    if err.downcast_ref::<rfm_settings::Error>().is_some() {
        return USAGE;
    }
    if err.downcast_ref::<UsageError>().is_some() {
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
