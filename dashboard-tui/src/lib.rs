//! Terminal dashboard of rfm runs: segments, the R × F grid, distributions,
//! customers with the reasons for their scores, and movement between runs.
//!
//! Layout: [`app`] holds the state (pure, testable), [`events`] turns keys
//! into state changes, [`ui`] draws the state, [`source`] and [`loader`] bring
//! data in off the UI thread (from result files or PostgreSQL, through the
//! read side `rfm_runs`), [`live`] polls a running coordinator, [`data`] and
//! [`analysis`] hold and derive it.

pub mod analysis;
pub mod app;
pub mod cli;
pub mod data;
pub mod events;
pub mod format;
pub mod live;
pub mod loader;
/// The search language, shared with `rfm customers --where` and `rfm export --where`.
pub use rfm_runs::query;
pub mod source;
pub mod terminal;
pub mod ui;
