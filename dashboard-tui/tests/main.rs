//! The integration tests of this crate, in one test binary: one link instead of
//! one per file keeps the build small and quick.

mod common;
mod database;
mod escaping;
mod keys;
mod live;
mod loader;
mod tmux;
mod views;
