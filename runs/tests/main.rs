//! The integration tests of this crate, in one test binary: one link instead of
//! one per file keeps the build small and quick.

mod common;
mod cut_points;
mod files;
mod latest;
mod movement;
