//! The one order of runs and the one "latest" rule, for every source: runs
//! are ordered by start time (UTC, to the second) and then by run id; the
//! latest run is the greatest in that order among the runs with results
//! (published, or succeeded in a folder). File times are never used, so two
//! runs started in the same second are ordered the same way every time.

use std::cmp::Ordering;

use crate::model::RunEntry;

/// Newest first: the greater start time, then the greater run id.
pub fn newest_first(a: &RunEntry, b: &RunEntry) -> Ordering {
    (b.started_at(), b.run_id()).cmp(&(a.started_at(), a.run_id()))
}

/// Sorts `runs` newest first and marks the latest run with results (and
/// only it).
pub fn order(runs: &mut [RunEntry]) {
    runs.sort_by(newest_first);
    let latest = runs.iter().position(|r| r.status.has_results());
    for (i, r) in runs.iter_mut().enumerate() {
        r.latest = Some(i) == latest;
    }
}
