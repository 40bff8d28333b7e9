//! Where runs come from. [`Source`] lists runs and loads one, off the UI
//! thread; [`open`] gives one over result folders written by `rfm run --out`
//! or over the PostgreSQL store, both read through the read side
//! ([`rfm_runs`]), so every view works alike on both. A live coordinator is
//! not a run source: [`crate::live`] polls it for the Live view.

use std::path::PathBuf;

use rfm_runs::{DatabaseSource, FolderSource, RunSource, Status};

use crate::data::{DataError, RunData, RunEntry};
pub use rfm_runs::Listing;

/// A place runs can be listed and loaded from. Called off the UI thread.
pub trait Source: Send {
    /// What the status line says about the source (`results /tmp/out`).
    fn describe(&self) -> String;
    /// The run history, newest first, with the runs that could not be read.
    fn list_runs(&self) -> Result<Listing, DataError>;
    /// One run with all its customers.
    fn load_run(&self, entry: &RunEntry) -> Result<RunData, DataError>;
}

/// Which source the command line asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    Results(PathBuf),
    Database(String),
}

/// Why a source cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path} is not a folder; pass --results-root with an `rfm run --out` folder or a folder of such runs")]
    NotADir { path: PathBuf },
    /// The database cannot be reached or used (the error names host and port).
    #[error("{0}")]
    Database(#[from] rfm_store::Error),
    #[error("{0}")]
    Runs(rfm_runs::Error),
}

/// Opens the source a spec names.
pub fn open(spec: &SourceSpec) -> Result<Box<dyn Source>, SourceError> {
    match spec {
        SourceSpec::Results(dir) => {
            let runs = FolderSource::open(dir).map_err(|e| match e {
                rfm_runs::Error::NotAFolder { path } => SourceError::NotADir { path },
                e => SourceError::Runs(e),
            })?;
            let path = dir.clone();
            Ok(Box::new(Runs {
                describe: format!("results {}", dir.display()),
                empty: Box::new(move || DataError::NoRun { path: path.clone() }),
                runs: Box::new(runs),
            }))
        }
        SourceSpec::Database(url) => {
            let runs = DatabaseSource::connect(url).map_err(|e| match e {
                rfm_runs::Error::Database(e) => SourceError::Database(e),
                e => SourceError::Runs(e),
            })?;
            let target = runs.target().to_string();
            Ok(Box::new(Runs {
                describe: format!("database {target}"),
                empty: Box::new(move || DataError::NoDatabaseRun {
                    target: target.clone(),
                }),
                runs: Box::new(runs),
            }))
        }
    }
}

/// A read-side source as the dashboard's.
struct Runs {
    describe: String,
    /// What to say when there is no run to show.
    empty: Box<dyn Fn() -> DataError + Send>,
    runs: Box<dyn RunSource>,
}

impl Source for Runs {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    /// Every run that ended (runs still in progress are not listed); no run
    /// at all is an error saying where runs were looked for.
    fn list_runs(&self) -> Result<Listing, DataError> {
        let mut listing = self.runs.list()?;
        listing.runs.retain(|r| r.status != Status::Running);
        if listing.runs.is_empty() {
            if let Some(first) = listing.skipped.first() {
                return Err(DataError::Skipped(first.clone()));
            }
            return Err((self.empty)());
        }
        Ok(listing)
    }

    fn load_run(&self, entry: &RunEntry) -> Result<RunData, DataError> {
        Ok(RunData::new(self.runs.load(entry)?))
    }
}
