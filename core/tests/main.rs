//! The integration tests of this crate, in one test binary: one link instead of
//! one per file keeps the build small and quick.

mod chunking;
mod common;
mod dates;
mod formats;
mod reading;
mod real_data;
mod result_folders;
mod spec;
