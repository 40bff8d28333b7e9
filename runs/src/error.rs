//! Errors of the read side: each names the file and line, or the database
//! and run, and says what to do.

use std::path::PathBuf;

/// A result with the read side's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A `run.json` that is not a run report.
    #[error("{path} is not a valid run report (run.json): {source}")]
    Report {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A CSV file that cannot be parsed at all on a line.
    #[error("{path}:{line}: {detail}")]
    Csv {
        path: PathBuf,
        line: u64,
        detail: String,
    },
    /// A value out of its domain in a result file.
    #[error("{path}:{line}: column {column} has {value:?}, which is not {expected}")]
    Field {
        path: PathBuf,
        line: u64,
        column: &'static str,
        value: String,
        expected: &'static str,
    },
    /// The results root is not a folder.
    #[error("{path} is not a folder; run `rfm run FILE` first, or pass --results-root DIR (an `rfm run --out` folder or a folder of such folders) or --database-url URL")]
    NotAFolder { path: PathBuf },
    /// No run with results to show.
    #[error("no succeeded run in {place}; run `rfm run FILE` first, or pass --results-root DIR or --database-url URL")]
    NoRun { place: String },
    /// A run id (or folder name) the source does not hold.
    #[error("no run {run:?} in {place}; `rfm runs` lists the runs")]
    UnknownRun { place: String, run: String },
    /// A run that ended without results.
    #[error("run {run} is {status} in {place}: it has no results")]
    NoResults {
        place: String,
        run: String,
        status: String,
    },
    /// The database cannot be reached or a query failed (the error names the server).
    #[error("{0}")]
    Database(#[from] rfm_store::Error),
    /// A value read from the database out of its domain.
    #[error(
        "run {run_id} in the database at {target}: {column} is {value:?}, which is not {expected}"
    )]
    DatabaseValue {
        target: String,
        run_id: String,
        column: &'static str,
        value: String,
        expected: &'static str,
    },
    /// A sum beyond the exact money range.
    #[error(
        "{what} is beyond the exact range of amounts ({})",
        rfm_core::money::RANGE_TEXT
    )]
    Overflow { what: String },
}

impl Error {
    /// True when the source lost its connection: the same request may
    /// succeed later.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, Error::Database(e) if e.is_connection_lost())
    }

    /// True for a failure of the database itself (unreachable, a query or a
    /// stored value), not of what was asked of it.
    pub fn is_database(&self) -> bool {
        matches!(self, Error::Database(_) | Error::DatabaseValue { .. })
    }
}
