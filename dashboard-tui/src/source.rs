//! Where runs come from. [`Source`] lists runs and loads one: results
//! folders written by `rfm run --out` ([`ResultsDir`]) or the PostgreSQL store
//! ([`crate::database::DatabaseSource`]). A live coordinator is not a run
//! source: [`crate::live`] polls it for the Live view.

use std::path::{Path, PathBuf};

use crate::data::{self, DataError, RunData, RunEntry};
use crate::database::DatabaseSource;

/// A place runs can be listed and loaded from. Called off the UI thread.
pub trait Source: Send {
    /// What the status line says about the source (`results /tmp/out`).
    fn describe(&self) -> String;
    /// The run history, newest first, with the runs that could not be read.
    fn list_runs(&self) -> Result<Listing, DataError>;
    /// One run with all its customers.
    fn load_run(&self, entry: &RunEntry) -> Result<RunData, DataError>;
}

/// The runs of a source, and the problems met while listing them (a run
/// folder whose run.json cannot be read does not hide the others).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Listing {
    pub runs: Vec<RunEntry>,
    pub skipped: Vec<String>,
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
    #[error("{path} is not a folder; pass --results with an `rfm run --out` folder or a folder of such runs")]
    NotADir { path: PathBuf },
    /// The database cannot be reached or used (the error names host and port).
    #[error("{0}")]
    Database(#[from] rfm_store::Error),
}

/// Opens the source a spec names.
pub fn open(spec: &SourceSpec) -> Result<Box<dyn Source>, SourceError> {
    match spec {
        SourceSpec::Results(dir) => {
            if !dir.is_dir() {
                return Err(SourceError::NotADir { path: dir.clone() });
            }
            Ok(Box::new(ResultsDir::new(dir.clone())))
        }
        SourceSpec::Database(url) => Ok(Box::new(DatabaseSource::connect(url)?)),
    }
}

/// A run folder (`customers.csv`, `segments.csv`, `run.json`) or a folder
/// whose subfolders are run folders.
#[derive(Clone, Debug)]
pub struct ResultsDir {
    root: PathBuf,
}

impl ResultsDir {
    pub fn new(root: PathBuf) -> ResultsDir {
        ResultsDir { root }
    }

    fn entry(dir: &Path) -> Result<RunEntry, DataError> {
        let report = data::read_report(dir)?;
        let label = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        Ok(RunEntry {
            key: dir.display().to_string(),
            label,
            report,
        })
    }
}

impl Source for ResultsDir {
    fn describe(&self) -> String {
        format!("results {}", self.root.display())
    }

    fn list_runs(&self) -> Result<Listing, DataError> {
        if self.root.join(rfm_core::output::REPORT_FILE).is_file() {
            return Ok(Listing {
                runs: vec![ResultsDir::entry(&self.root)?],
                skipped: Vec::new(),
            });
        }
        let read = std::fs::read_dir(&self.root).map_err(|source| DataError::Io {
            path: self.root.clone(),
            source,
        })?;
        let mut runs = Vec::new();
        let mut problems = Vec::new();
        for item in read {
            let item = item.map_err(|source| DataError::Io {
                path: self.root.clone(),
                source,
            })?;
            // Hidden names are rfm's temporary folders (a run being written,
            // or one a crash left behind), never runs.
            if item.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let dir = item.path();
            if dir.join(rfm_core::output::REPORT_FILE).is_file() {
                match ResultsDir::entry(&dir) {
                    Ok(entry) => runs.push(entry),
                    Err(e) => problems.push(e),
                }
            }
        }
        if runs.is_empty() {
            return Err(problems.into_iter().next().unwrap_or(DataError::NoRun {
                path: self.root.clone(),
            }));
        }
        runs.sort_by(|a, b| {
            b.report
                .started_at
                .cmp(&a.report.started_at)
                .then_with(|| b.report.run_id.cmp(&a.report.run_id))
        });
        let mut skipped: Vec<String> = problems.iter().map(|e| e.to_string()).collect();
        skipped.sort();
        Ok(Listing { runs, skipped })
    }

    fn load_run(&self, entry: &RunEntry) -> Result<RunData, DataError> {
        let dir = PathBuf::from(&entry.key);
        // Re-read the report: the run may have been replaced since listing.
        let fresh = ResultsDir::entry(&dir)?;
        let entry = RunEntry {
            label: entry.label.clone(),
            ..fresh
        };
        if entry.report.status != "succeeded" {
            return Ok(RunData::new(entry, Vec::new(), Vec::new()));
        }
        let customers = data::read_customers(&dir)?;
        let segments = data::read_segments(&dir)?;
        Ok(RunData::new(entry, customers, segments))
    }
}
