//! The integration tests of rfm-web, in one test binary: one link instead
//! of one per file keeps the build small and quick.

mod api;
mod browser;
mod common;
mod database;
mod live;
mod pages;
