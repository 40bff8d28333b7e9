//! rfm-runs: the read side of finished runs, one library for the `rfm`
//! commands that read results (`segments`, `customers`, `customer`, `export`,
//! `runs`, `diff`) and for the dashboard.
//!
//! A [`RunSource`] lists runs and loads one; it is either a [`FolderSource`]
//! (a folder written by `rfm run --out`, or a root folder of such folders) or
//! a [`DatabaseSource`] (PostgreSQL, through rfm-store's queries). Both give
//! the same types:
//!
//! - [`RunEntry`]: a run as listed — id, [`Status`], start and end times, its
//!   `run.json` report, and whether it is the latest;
//! - [`Run`]: a loaded run — its entry, typed [`Customer`] rows (exact
//!   [`Money`](rfm_core::money::Money) monetary as published, `u8` scores
//!   checked 1–5, a [`Segment`](rfm_core::Segment)), [`SegmentSummary`] rows
//!   and the run's [`CutPoints`](rfm_core::score::CutPoints).
//!
//! The rules are the same whatever the source:
//!
//! - **latest** ([`latest`]): among the runs with results (published, or
//!   succeeded in a folder), the one with the greatest start time, ties
//!   broken by run id — never file times;
//! - **movement** ([`movement()`]): customers joined on id between two runs,
//!   revenue summed exactly in [`Money`](rfm_core::money::Money) and rounded
//!   once, when shown;
//! - **cut points** ([`cut_points`]): as scoring saved them with the run
//!   (`run.json`, `rfm_runs.cut_points`); for a run saved before they were,
//!   computed once from its customers with [`rfm_core::score::cut_points`].
//!
//! Errors ([`Error`]) name the file and line, or the database and run, and
//! say what to do.

mod customers;
mod cut_points;
mod database;
mod error;
mod folder;
pub mod latest;
mod model;
mod movement;
pub mod query;

pub use cut_points::cut_points;
pub use database::DatabaseSource;
pub use error::{Error, Result};
pub use folder::FolderSource;
pub use model::{Customer, Listing, Run, RunEntry, SegmentSummary, Status};
pub use movement::{movement, Move};
pub use query::{Query, QueryError};

/// A place finished runs are read from. Calls may block (files, database):
/// call them off a UI thread.
pub trait RunSource: Send {
    /// Where the runs are read, for messages (`/tmp/rfm-out`,
    /// `the database at host:5432/rfm`).
    fn describe(&self) -> String;

    /// Every run, newest first ([`latest::order`]), the latest one marked,
    /// with the runs that could not be read.
    fn list(&self) -> Result<Listing>;

    /// A listed run with its results; a run without results (failed,
    /// running) comes back with no customers and no segments.
    fn load(&self, entry: &RunEntry) -> Result<Run>;

    /// The run `run` names (its run id, or for a folder its folder name), or
    /// without a name the latest one; it must have results.
    fn results(&self, run: Option<&str>) -> Result<Run> {
        let listing = self.list()?;
        let entry = match run {
            Some(id) => listing
                .runs
                .into_iter()
                .find(|e| e.run_id() == id || e.label == id)
                .ok_or_else(|| Error::UnknownRun {
                    place: self.describe(),
                    run: id.to_string(),
                })?,
            None => listing
                .runs
                .into_iter()
                .find(|e| e.latest)
                .ok_or_else(|| Error::NoRun {
                    place: self.describe(),
                })?,
        };
        if !entry.status.has_results() {
            return Err(Error::NoResults {
                place: self.describe(),
                run: entry.run_id().to_string(),
                status: entry.status.to_string(),
            });
        }
        self.load(&entry)
    }
}
