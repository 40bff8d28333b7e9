//! Turns command-line input options into the engine's [`RunOptions`]
//! ([`rfm_settings::read::ReadArgs`], shared with `rfm-coordinator --watch`),
//! naming the flag at fault when a value is bad.

use rfm_core::{Error, RunOptions};

use crate::cli::InputArgs;

pub fn run_options(a: &InputArgs) -> Result<RunOptions, Error> {
    a.read.run_options(a.chunk_size.as_deref())
}
