//! The integration tests of this crate, in one test binary: one link instead of
//! one per file keeps the build small and quick.

mod architecture;
mod cache;
mod commands;
mod config;
mod dates;
mod db;
mod documented_commands;
mod edge_inputs;
mod excel;
mod failed_runs;
mod formats;
mod human_output;
mod reading;
mod results;
mod run_errors;
mod selections;
mod support;
mod terminal_output;
mod watch;
