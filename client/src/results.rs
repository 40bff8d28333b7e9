//! Where `rfm segments`, `customers`, `customer`, `export`, `runs` and `diff`
//! read finished runs: PostgreSQL when a database URL is set, else the run
//! folders under the results root — both through the read side
//! ([`rfm_runs`]), with its errors mapped to exit codes.

use std::path::Path;

use rfm_runs::{DatabaseSource, FolderSource, Run, RunSource};

use crate::cli::ResultsArgs;
use crate::cluster::JobError;
use crate::exit;

/// An opened source, and whether it is a database (for exit codes).
pub struct Source {
    pub runs: Box<dyn RunSource>,
    database: bool,
}

impl Source {
    /// The database at `url` when one is set (not blank), else the results root.
    pub fn open(database_url: Option<&str>, results_root: &Path) -> anyhow::Result<Source> {
        match database_url.filter(|u| !u.trim().is_empty()) {
            Some(url) => Ok(Source {
                runs: Box::new(DatabaseSource::connect(url).map_err(|e| fail(e, true))?),
                database: true,
            }),
            None => Ok(Source {
                runs: Box::new(FolderSource::open(results_root).map_err(|e| fail(e, false))?),
                database: false,
            }),
        }
    }

    /// The run `run` names (or the latest), with its results.
    pub fn results(&self, run: Option<&str>) -> anyhow::Result<Run> {
        self.runs.results(run).map_err(|e| self.fail(e))
    }

    /// The error with the exit code its source calls for.
    pub fn fail(&self, e: rfm_runs::Error) -> anyhow::Error {
        fail(e, self.database)
    }
}

/// A read-side error as the command's error: the database exit code for
/// the database's own failures and for a run id it does not hold, the input
/// exit code for the rest (no such run folder, a bad result file).
fn fail(e: rfm_runs::Error, database: bool) -> anyhow::Error {
    let code = match &e {
        // A URL that does not parse is a bad setting, not a database failure.
        rfm_runs::Error::Database(rfm_store::Error::Url { .. }) => exit::USAGE,
        rfm_runs::Error::UnknownRun { .. } if database => exit::DATABASE,
        e if e.is_database() => exit::DATABASE,
        _ => exit::INPUT,
    };
    JobError {
        code,
        message: e.to_string(),
    }
    .into()
}

/// Reads the run `args` names (or the latest one).
pub fn load(args: &ResultsArgs) -> anyhow::Result<Run> {
    Source::open(args.database_url.as_deref(), &args.results_root)?.results(args.run.as_deref())
}
