//! Runs in result folders: a folder written by `rfm run --out`
//! (`run.json`, `customers.csv`, `segments.csv`), or a root folder holding
//! such folders (in subfolders too, a few levels down). Hidden subfolders (`.NAME.rfm-tmp-…`, a run
//! being written or one a crash left behind) are never runs.

use std::path::{Path, PathBuf};

use rfm_core::output::{CUSTOMERS_FILE, REPORT_FILE, SEGMENTS_FILE};

use crate::customers;
use crate::cut_points::cut_points;
use crate::error::{Error, Result};
use crate::latest;
use crate::model::{Listing, Run, RunEntry};
use crate::RunSource;

/// A run folder or a folder of run folders.
#[derive(Clone, Debug)]
pub struct FolderSource {
    root: PathBuf,
}

impl FolderSource {
    /// The runs under `root`; fails unless it is a folder.
    pub fn open(root: &Path) -> Result<FolderSource> {
        if !root.is_dir() {
            return Err(Error::NotAFolder {
                path: root.to_path_buf(),
            });
        }
        Ok(FolderSource {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn entry(dir: &Path) -> Result<RunEntry> {
        let report = customers::read_report(&dir.join(REPORT_FILE))?;
        let label = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        Ok(RunEntry {
            key: dir.display().to_string(),
            label,
            status: report.status,
            report,
            latest: false,
        })
    }

    /// The run folders: the root itself when it holds a `run.json`, else the
    /// folders under it that do, found down to [`MAX_DEPTH`] levels (a
    /// folder of runs may hold folders of runs: `out/2011/<run>`); a run
    /// folder's own subfolders are not searched.
    fn run_dirs(&self) -> Result<Vec<PathBuf>> {
        if self.root.join(REPORT_FILE).is_file() {
            return Ok(vec![self.root.clone()]);
        }
        let mut dirs = Vec::new();
        let mut level = vec![self.root.clone()];
        for depth in 0..MAX_DEPTH {
            let mut next = Vec::new();
            for parent in &level {
                let io = |source| Error::Io {
                    path: parent.clone(),
                    source,
                };
                let items = match std::fs::read_dir(parent) {
                    Ok(items) => items,
                    // Only the root must be readable; a deeper folder that
                    // is not is no folder of runs.
                    Err(_) if depth > 0 => continue,
                    Err(e) => return Err(io(e)),
                };
                for item in items {
                    let item = item.map_err(io)?;
                    if item.file_name().to_string_lossy().starts_with('.') {
                        continue;
                    }
                    let dir = item.path();
                    if dir.join(REPORT_FILE).is_file() {
                        dirs.push(dir);
                    } else if item.file_type().is_ok_and(|t| t.is_dir()) {
                        next.push(dir);
                    }
                }
            }
            level = next;
        }
        Ok(dirs)
    }
}

/// How many folder levels under a results root are searched for runs.
pub const MAX_DEPTH: usize = 3;

impl RunSource for FolderSource {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn list(&self) -> Result<Listing> {
        let mut runs = Vec::new();
        let mut skipped = Vec::new();
        for dir in self.run_dirs()? {
            match FolderSource::entry(&dir) {
                Ok(entry) => runs.push(entry),
                Err(e) => skipped.push(e.to_string()),
            }
        }
        latest::order(&mut runs);
        skipped.sort();
        Ok(Listing { runs, skipped })
    }

    fn load(&self, entry: &RunEntry) -> Result<Run> {
        let dir = PathBuf::from(&entry.key);
        // Re-read the report: the run may have been replaced since listing.
        let fresh = RunEntry {
            label: entry.label.clone(),
            latest: entry.latest,
            ..FolderSource::entry(&dir)?
        };
        let place = dir.display().to_string();
        if !fresh.status.has_results() {
            return Ok(Run::empty(fresh, place));
        }
        let customers = customers::read_customers(&dir.join(CUSTOMERS_FILE))?;
        let segments = customers::read_segments(&dir.join(SEGMENTS_FILE))?;
        let cut_points = cut_points(fresh.report.cut_points.clone(), &customers);
        Ok(Run {
            entry: fresh,
            place,
            customers,
            segments,
            cut_points,
        })
    }
}
