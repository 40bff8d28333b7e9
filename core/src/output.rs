//! Result files (spec §6): `customers.csv`, `segments.csv` and `run.json`.
//!
//! A run's files appear together or not at all: they are written into a fresh
//! folder beside the target (see [`crate::atomic`]), made durable (the files
//! and the folder synced together, each on its thread), and that folder
//! takes the target's place in one rename. A target that already holds
//! a previous run's files (or nothing) is replaced as a whole; a folder holding
//! anything else is refused before the run starts, so no user file is lost.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::atomic;
use crate::customers_csv::Text;
use crate::error::{Error, Result};
use crate::report::RunReport;
use crate::score::{CustomerRow, RfmResult};

pub const CUSTOMERS_FILE: &str = "customers.csv";
pub const SEGMENTS_FILE: &str = "segments.csv";
pub const REPORT_FILE: &str = "run.json";

pub const CUSTOMERS_HEADER: [&str; 12] = [
    "customer_id",
    "recency",
    "frequency",
    "monetary",
    "first_purchase",
    "last_purchase",
    "country",
    "r",
    "f",
    "m",
    "rfm_score",
    "segment",
];

pub const SEGMENTS_HEADER: [&str; 8] = [
    "segment",
    "customers",
    "customers_share",
    "revenue",
    "revenue_share",
    "avg_recency",
    "avg_frequency",
    "avg_monetary",
];

/// The only names a run folder holds; a folder with anything else is not
/// replaced.
pub const RUN_FILES: [&str; 3] = [CUSTOMERS_FILE, SEGMENTS_FILE, REPORT_FILE];

fn out_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Output {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `customers.csv` to any writer (rows formatted by
/// [`crate::customers_csv`], byte for byte what the `csv` crate writes).
pub fn write_customers<W: Write>(result: &RfmResult, out: W) -> csv::Result<()> {
    crate::customers_csv::write(&CUSTOMERS_HEADER, &result.customers, out)?;
    Ok(())
}

/// What `customers.csv` is written from.
#[derive(Clone, Copy, Debug)]
pub enum CustomersFile<'a> {
    /// A result's rows, formatted as they are written.
    Rows(&'a [CustomerRow]),
    /// The file's text as it was formatted where the result was scored
    /// (a coordinator), checked on arrival.
    Text(&'a Text),
}

impl CustomersFile<'_> {
    fn write<W: Write>(self, mut out: W) -> std::io::Result<()> {
        match self {
            CustomersFile::Rows(rows) => crate::customers_csv::write(&CUSTOMERS_HEADER, rows, out),
            CustomersFile::Text(text) => {
                for piece in text.pieces() {
                    out.write_all(piece)?;
                }
                out.flush()
            }
        }
    }
}

/// Writes `segments.csv` to any writer.
pub fn write_segments<W: Write>(result: &RfmResult, out: W) -> csv::Result<()> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out);
    w.write_record(SEGMENTS_HEADER)?;
    for s in &result.segments {
        let (name, customers) = (s.segment.name(), s.customers.to_string());
        let fields = [name, &customers].into_iter();
        w.write_record(fields.chain(s.figure_texts().map(String::as_str)))?;
    }
    w.flush()?;
    Ok(())
}

/// The folder a run's files go to, checked before any work is done.
#[derive(Clone, Debug)]
pub struct OutDir {
    target: PathBuf,
}

impl OutDir {
    /// Checks that the results can go to `dir`, before the run starts: its
    /// parent folder is created if needed and must be writable, and `dir` must
    /// be absent, empty, or a previous run's folder (only [`RUN_FILES`] in
    /// it). Creates nothing else: a run that never writes leaves no folder.
    pub fn prepare(dir: &Path) -> Result<OutDir> {
        let target = match fs::symlink_metadata(dir) {
            // A link to a folder: the run goes where it points.
            Ok(m) if m.file_type().is_symlink() => fs::canonicalize(dir).map_err(out_err(dir))?,
            Ok(_) => std::path::absolute(dir).map_err(out_err(dir))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::path::absolute(dir).map_err(out_err(dir))?
            }
            Err(e) => return Err(out_err(dir)(e)),
        };
        let out = OutDir { target };
        out.check_replaceable()?;
        let parent = out.parent()?;
        fs::create_dir_all(&parent).map_err(out_err(&out.target))?;
        // Prove the parent is writable the way the results will be written.
        let probe = atomic::TempDir::beside(&out.target).map_err(out_err(&out.target))?;
        drop(probe);
        Ok(out)
    }

    /// The folder the results go to.
    pub fn path(&self) -> &Path {
        &self.target
    }

    fn parent(&self) -> Result<PathBuf> {
        self.target
            .parent()
            .map(Path::to_path_buf)
            .ok_or_else(|| Error::Output {
                path: self.target.clone(),
                source: std::io::Error::other("a run folder needs a parent folder"),
            })
    }

    /// Whether the folder exists and holds files (a previous run's).
    pub fn holds_files(&self) -> bool {
        fs::read_dir(&self.target).is_ok_and(|mut entries| entries.next().is_some())
    }

    /// Fails unless the target is absent, empty or holds only run files.
    fn check_replaceable(&self) -> Result<()> {
        let path = &self.target;
        let entries = match fs::read_dir(path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory || path.is_file() => {
                return Err(Error::Output {
                    path: path.clone(),
                    source: std::io::Error::other(
                        "it is a file, not a folder; give --out a new folder or a previous run's folder",
                    ),
                })
            }
            Err(e) => return Err(out_err(path)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(out_err(path))?;
            let name = entry.file_name();
            let is_run_file = RUN_FILES.iter().any(|f| name == *f)
                && entry.file_type().is_ok_and(|t| t.is_file());
            if !is_run_file {
                return Err(Error::Output {
                    path: path.clone(),
                    source: std::io::Error::other(format!(
                        "the folder holds {:?}, which is not an rfm result file; rfm replaces only \
                         an empty folder or a previous run's folder (customers.csv, segments.csv, \
                         run.json): give --out a new folder",
                        name
                    )),
                });
            }
        }
        Ok(())
    }

    /// Writes the three result files; they replace the folder's content at
    /// once. `segments.csv` and `run.json` are written and synced on a
    /// thread of their own while `customers.csv` is formatted and written.
    pub fn write_results(&self, result: &RfmResult, report: &RunReport) -> Result<()> {
        self.write_results_with(result, CustomersFile::Rows(&result.customers), report)
    }

    /// [`OutDir::write_results`] with `customers.csv` written from
    /// `customers` (its text as a coordinator sent it, say); `result` gives
    /// `segments.csv`.
    pub fn write_results_with(
        &self,
        result: &RfmResult,
        customers: CustomersFile,
        report: &RunReport,
    ) -> Result<()> {
        self.place(|dir| {
            std::thread::scope(|scope| {
                let small_files = || -> Result<Vec<Written>> {
                    let segments = write_file(dir, SEGMENTS_FILE, |w| {
                        write_segments(result, w).map_err(std::io::Error::other)
                    })?;
                    let mut written = vec![segments, write_report_file(dir, report)?];
                    // Synced here, beside the large file's writing.
                    for w in &mut written {
                        w.file.sync_all().map_err(out_err(&w.path))?;
                        w.synced = true;
                    }
                    Ok(written)
                };
                let beside = std::thread::Builder::new()
                    .name("rfm-write".into())
                    .spawn_scoped(scope, small_files);
                let customers = write_large_file(dir, CUSTOMERS_FILE, |w| customers.write(w));
                let small = match beside {
                    Ok(thread) => thread.join().unwrap_or_else(|_| {
                        Err(out_err(dir)(std::io::Error::other(
                            "the thread writing segments.csv and run.json failed",
                        )))
                    }),
                    // No thread: written here.
                    Err(_) => small_files(),
                };
                let mut written = vec![customers?];
                written.extend(small?);
                Ok(written)
            })
        })
    }

    /// Writes a failed run's `run.json` alone; it replaces the folder's content
    /// at once (a previous run's results do not stay beside a failed report).
    pub fn write_report(&self, report: &RunReport) -> Result<()> {
        self.place(|dir| Ok(vec![write_report_file(dir, report)?]))
    }

    /// Fills a fresh folder beside the target with `fill`, makes it durable
    /// (its files and their names) and puts it in the target's place.
    fn place(&self, fill: impl FnOnce(&Path) -> Result<Vec<Written>>) -> Result<()> {
        self.place_in(self.staging()?, fill)
    }

    /// A fresh, empty folder beside the target.
    fn staging(&self) -> Result<atomic::TempDir> {
        let target = &self.target;
        fs::create_dir_all(self.parent()?).map_err(out_err(target))?;
        atomic::TempDir::beside(target).map_err(out_err(target))
    }

    /// [`place`](Self::place) into `staging`, a folder beside the target.
    fn place_in(
        &self,
        staging: atomic::TempDir,
        fill: impl FnOnce(&Path) -> Result<Vec<Written>>,
    ) -> Result<()> {
        let target = &self.target;
        let written = fill(staging.path())?;
        sync_together(staging.path(), &written)?;
        self.check_replaceable()?;
        staging.replace(target).map_err(out_err(target))
    }

    /// Starts `customers.csv` ahead of the rest of the results, in the fresh
    /// folder that will take the target's place: its text is written as it
    /// arrives ([`StagedCustomers::write`]), and
    /// [`write_results_staged`](Self::write_results_staged) adds the other
    /// files and puts the folder in place. Dropped before that, the folder
    /// is removed and the target is untouched.
    pub fn stage_customers(&self) -> Result<StagedCustomers> {
        let staging = self.staging()?;
        let path = staging.path().join(CUSTOMERS_FILE);
        let file = atomic::create_new(&path).map_err(out_err(&path))?;
        Ok(StagedCustomers {
            staging,
            path,
            out: atomic::EarlyWriteback::new(file),
        })
    }

    /// [`write_results`](Self::write_results) with `customers.csv` already
    /// written into `staged` (which must come from this folder's
    /// [`stage_customers`](Self::stage_customers)).
    pub fn write_results_staged(
        &self,
        result: &RfmResult,
        staged: StagedCustomers,
        report: &RunReport,
    ) -> Result<()> {
        let StagedCustomers { staging, path, out } = staged;
        let customers = Written {
            path,
            file: out.into_file(),
            synced: false,
        };
        self.place_in(staging, |dir| {
            let segments = write_file(dir, SEGMENTS_FILE, |w| {
                write_segments(result, w).map_err(std::io::Error::other)
            })?;
            Ok(vec![customers, segments, write_report_file(dir, report)?])
        })
    }

    /// Puts `report` in place of the `run.json` of the results the folder
    /// holds (a run whose results were written, then whose publishing
    /// failed): a fresh folder with the results' files linked into it (copied
    /// where the filesystem refuses links) and the new `run.json` replaces
    /// the folder at once.
    pub fn replace_report(&self, report: &RunReport) -> Result<()> {
        let target = self.target.clone();
        self.place(|dir| {
            let mut written = Vec::new();
            for name in [CUSTOMERS_FILE, SEGMENTS_FILE] {
                let (from, to) = (target.join(name), dir.join(name));
                // Only the folder's own files: never what a link there names.
                let own = fs::symlink_metadata(&from).map_err(out_err(&from))?;
                if !own.file_type().is_file() {
                    return Err(out_err(&from)(std::io::Error::other(
                        "not a regular file: the results were changed after they were written",
                    )));
                }
                if fs::hard_link(&from, &to).is_err() {
                    fs::copy(&from, &to).map_err(out_err(&from))?;
                }
                let file = fs::File::open(&to).map_err(out_err(&to))?;
                written.push(Written {
                    path: to,
                    file,
                    synced: false,
                });
            }
            written.push(write_report_file(dir, report)?);
            Ok(written)
        })
    }
}

/// `customers.csv` written ahead into the folder that will hold a run's
/// results (see [`OutDir::stage_customers`]); the folder goes with it when
/// it is dropped unplaced.
#[derive(Debug)]
pub struct StagedCustomers {
    staging: atomic::TempDir,
    path: PathBuf,
    out: atomic::EarlyWriteback<fs::File>,
}

impl StagedCustomers {
    /// Appends the next piece of the file's text (each megabyte starts going
    /// to disk at once, so the sync at the end has little left).
    pub fn write(&mut self, piece: &[u8]) -> Result<()> {
        self.out.write_all(piece).map_err(out_err(&self.path))
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A file written in full, synced or not yet.
struct Written {
    path: PathBuf,
    file: fs::File,
    synced: bool,
}

/// Syncs the files not synced yet and the folder holding them, all at
/// once: the syncs share the filesystem's journal commits instead of
/// waiting for one commit each, one after the other. Returns once every
/// one is durable.
fn sync_together(dir: &Path, written: &[Written]) -> Result<()> {
    let written: Vec<&Written> = written.iter().filter(|w| !w.synced).collect();
    std::thread::scope(|scope| {
        let syncing: Vec<_> = written
            .iter()
            .map(|w| scope.spawn(move || w.file.sync_all().map_err(out_err(&w.path))))
            .collect();
        let dir_synced = atomic::sync_dir(dir).map_err(out_err(dir));
        for (w, thread) in written.iter().zip(syncing) {
            thread.join().unwrap_or_else(|_| {
                Err(out_err(&w.path)(std::io::Error::other(
                    "the thread syncing it failed",
                )))
            })?;
        }
        dir_synced
    })
}

/// Creates `dir/name` (exclusively, not through a link) and fills it
/// through a buffer; [`sync_together`] makes it durable.
fn write_file(
    dir: &Path,
    name: &str,
    fill: impl FnOnce(&mut BufWriter<&mut fs::File>) -> std::io::Result<()>,
) -> Result<Written> {
    let path = dir.join(name);
    let mut file = atomic::create_new(&path).map_err(out_err(&path))?;
    let mut w = BufWriter::with_capacity(1 << 20, &mut file);
    fill(&mut w).map_err(out_err(&path))?;
    w.flush().map_err(out_err(&path))?;
    drop(w);
    Ok(Written {
        path,
        file,
        synced: false,
    })
}

/// Creates `dir/name` like [`write_file`] for a writer of large blocks:
/// no buffer, and each megabyte written starts going to disk at once
/// ([`atomic::EarlyWriteback`]), so the sync at the end has little left.
fn write_large_file(
    dir: &Path,
    name: &str,
    fill: impl FnOnce(&mut atomic::EarlyWriteback<&fs::File>) -> std::io::Result<()>,
) -> Result<Written> {
    let path = dir.join(name);
    let file = atomic::create_new(&path).map_err(out_err(&path))?;
    fill(&mut atomic::EarlyWriteback::new(&file)).map_err(out_err(&path))?;
    Ok(Written {
        path,
        file,
        synced: false,
    })
}

fn write_report_file(dir: &Path, report: &RunReport) -> Result<Written> {
    write_file(dir, REPORT_FILE, |w| {
        serde_json::to_writer_pretty(&mut *w, report).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    })
}

/// Writes the three result files into `dir` (see [`OutDir`]).
pub fn write_results(dir: &Path, result: &RfmResult, report: &RunReport) -> Result<()> {
    OutDir::prepare(dir)?.write_results(result, report)
}

/// Writes only `run.json` (a failed run's report) into `dir` (see [`OutDir`]).
pub fn write_report(dir: &Path, report: &RunReport) -> Result<()> {
    OutDir::prepare(dir)?.write_report(report)
}
