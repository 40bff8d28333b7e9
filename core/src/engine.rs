//! Running the engine on local files: opening inputs, planning byte-range
//! chunks, computing a chunk's partial state with rayon, and finishing a run
//! (malformed limit, line numbers of samples, scoring).
//!
//! The distributed engine uses the same pieces: a worker calls
//! [`compute_chunk`], the coordinator calls [`plan_chunks`] and [`finish_run`].

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::date::Date;
use crate::error::{Error, Result};
use crate::input::{read_layout, resolve_input, FileLayout, ParseOptions};
use crate::parse::{parse_range, RangeSpec};
use crate::partial::PartialState;
use crate::score::{finish, RfmResult};

/// Default bytes per chunk (a task of the distributed engine).
pub const DEFAULT_CHUNK_SIZE: u64 = 64 << 20;
/// Bytes per rayon job inside a chunk.
pub const SUB_RANGE_SIZE: usize = 4 << 20;
/// Default limit on malformed / lines read.
pub const DEFAULT_MAX_MALFORMED_SHARE: f64 = 0.01;

/// Everything a run needs besides its input.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub parse: ParseOptions,
    pub as_of: Option<Date>,
    pub max_malformed_share: f64,
    pub chunk_size: u64,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            parse: ParseOptions::default(),
            as_of: None,
            max_malformed_share: DEFAULT_MAX_MALFORMED_SHARE,
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

/// Run options in their textual form, as flags, config files and the wire
/// carry them; [`RunSettings::check`] turns them into [`RunOptions`].
#[derive(Clone, Debug)]
pub struct RunSettings<'a> {
    pub delimiter: u8,
    pub decimal_comma: bool,
    pub date_format: Option<&'a str>,
    pub as_of: Option<&'a str>,
    pub max_malformed_share: f64,
    pub chunk_size: u64,
}

impl RunSettings<'_> {
    /// Checks every value, naming the flag at fault.
    pub fn check(&self) -> Result<RunOptions> {
        if !self.delimiter.is_ascii() || matches!(self.delimiter, b'"' | b'\n' | b'\r') {
            return Err(Error::invalid_option(
                "--delimiter",
                format!("byte {} is not a usable delimiter", self.delimiter),
            ));
        }
        let date_format = match self.date_format {
            Some(f) => Some(
                crate::date::DateFormat::new(f)
                    .map_err(|m| Error::invalid_option("--date-format", m))?,
            ),
            None => None,
        };
        let as_of = match self.as_of {
            Some(t) => Some(crate::date::parse_date(t).ok_or_else(|| {
                Error::invalid_option(
                    "--as-of",
                    format!("{t:?} is not a date of the form YYYY-MM-DD"),
                )
            })?),
            None => None,
        };
        if !(0.0..=1.0).contains(&self.max_malformed_share) {
            return Err(Error::invalid_option(
                "--max-malformed-share",
                format!(
                    "{} is not a fraction between 0 and 1",
                    self.max_malformed_share
                ),
            ));
        }
        if self.chunk_size == 0 {
            return Err(Error::invalid_option(
                "--chunk-size",
                "must be a positive byte size (e.g. 67108864 or 64MiB)",
            ));
        }
        Ok(RunOptions {
            parse: ParseOptions {
                delimiter: self.delimiter,
                decimal_comma: self.decimal_comma,
                date_format,
            },
            as_of,
            max_malformed_share: self.max_malformed_share,
            chunk_size: self.chunk_size,
        })
    }
}

/// An input file with its layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    pub path: PathBuf,
    pub layout: FileLayout,
}

/// A read-only view of a whole file.
pub struct MappedFile {
    map: Option<Mmap>,
}

impl MappedFile {
    pub fn open(path: &Path) -> Result<MappedFile> {
        let unreadable = |source| Error::Unreadable {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(unreadable)?;
        let len = file.metadata().map_err(unreadable)?.len();
        if len == 0 {
            return Ok(MappedFile { map: None });
        }
        // SAFETY: the map is read-only. If another process truncates or rewrites
        // the file while it is mapped, reads may see changed bytes or fault; the
        // engine documents that inputs must not change during a run, like every
        // reader that does not copy its input first.
        let map = unsafe { Mmap::map(&file) }.map_err(unreadable)?;
        Ok(MappedFile { map: Some(map) })
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Tells the kernel the process no longer needs the pages of `[start, end)`
    /// (they stay in the page cache), so resident memory stays flat however
    /// large the input is.
    pub fn release(&self, start: usize, end: usize) {
        #[cfg(unix)]
        if let Some(map) = &self.map {
            const PAGE: usize = 4096;
            let s = start.div_ceil(PAGE) * PAGE;
            let e = (end / PAGE) * PAGE;
            if e > s {
                // SAFETY: the map is a read-only shared file mapping, so dropping
                // its pages only means they are read again from the file if used.
                let _ = unsafe {
                    map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, s, e - s)
                };
            }
        }
        #[cfg(not(unix))]
        let _ = (start, end);
    }
}

/// Resolves an input spec and reads every file's header.
pub fn open_inputs(spec: &str, parse: &ParseOptions) -> Result<Vec<InputFile>> {
    let paths = resolve_input(spec)?;
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let mapped = MappedFile::open(&path)?;
        let layout = read_layout(&path, mapped.bytes(), parse)?;
        files.push(InputFile { path, layout });
    }
    if files.iter().all(|f| f.layout.data_start >= f.layout.len) {
        return Err(Error::NoDataLines {
            path: files[0].path.clone(),
        });
    }
    Ok(files)
}

/// A task: the records owned by the byte range `[start, end)` of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    pub file_index: u32,
    pub start: u64,
    pub end: u64,
}

/// Splits every file into chunks of about `chunk_size` bytes.
pub fn plan_chunks(files: &[InputFile], chunk_size: u64) -> Vec<Chunk> {
    let chunk_size = chunk_size.max(1);
    let mut chunks = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let start = f.layout.data_start;
        let len = f.layout.len;
        if start >= len {
            continue;
        }
        let mut at = start;
        while at < len {
            let end = (at + chunk_size).min(len);
            chunks.push(Chunk {
                file_index: i as u32,
                start: at,
                end,
            });
            at = end;
        }
    }
    chunks
}

/// Computes the partial state of one chunk: rayon over sub-ranges of
/// `sub_range` bytes, each parsed into Arrow batches and folded into a state.
pub fn compute_chunk(
    file: &MappedFile,
    input: &InputFile,
    chunk: Chunk,
    parse: &ParseOptions,
    sub_range: usize,
) -> PartialState {
    let bytes = file.bytes();
    let start = chunk.start as usize;
    let end = (chunk.end as usize).min(bytes.len());
    let sub_range = sub_range.max(1);
    let ranges: Vec<(usize, usize)> = (start..end)
        .step_by(sub_range)
        .map(|s| (s, (s + sub_range).min(end)))
        .collect();
    let mut state = ranges
        .into_par_iter()
        .fold(PartialState::new, |mut state, (s, e)| {
            let spec = RangeSpec {
                file_index: chunk.file_index,
                data_start: input.layout.data_start as usize,
                start: s,
                end: e,
            };
            let ledger = parse_range(bytes, spec, &input.layout.columns, parse, |batch| {
                state.absorb(&batch)
            });
            state.ledger.merge(ledger);
            file.release(s, e);
            state
        })
        .map(|mut s| {
            s.seal();
            s
        })
        .reduce(PartialState::new, |mut a, b| {
            a.merge(b);
            a
        });
    state.seal();
    state
}

/// Fills in the 1-based line numbers of malformed samples (header = line 1).
pub fn number_sample_lines(state: &mut PartialState, files: &[InputFile]) -> Result<()> {
    let mut samples = std::mem::take(&mut state.ledger.malformed_samples);
    for s in samples.iter_mut() {
        if let Some(f) = files.get(s.file_index as usize) {
            let mapped = MappedFile::open(&f.path)?;
            let bytes = mapped.bytes();
            let upto = (s.offset as usize).min(bytes.len());
            s.line = Some(memchr::memchr_iter(b'\n', &bytes[..upto]).count() as u64 + 1);
        }
    }
    state.ledger.malformed_samples = samples;
    Ok(())
}

/// Applies the malformed limit, numbers the samples and scores the merged state.
/// On a malformed-limit failure the state's ledger is still returned through
/// the error path by the caller's copy.
pub fn finish_run(
    mut state: PartialState,
    files: &[InputFile],
    opts: &RunOptions,
) -> (crate::ledger::LineLedger, Result<RfmResult>) {
    if let Err(e) = number_sample_lines(&mut state, files) {
        return (state.ledger.clone(), Err(e));
    }
    let ledger = state.ledger.clone();
    if ledger.malformed_share() > opts.max_malformed_share {
        let first = ledger
            .malformed_samples
            .first()
            .map(|s| {
                format!(
                    "{}:{}: {}",
                    files
                        .get(s.file_index as usize)
                        .map(|f| f.path.display().to_string())
                        .unwrap_or_default(),
                    s.line.unwrap_or(0),
                    s.problem
                )
            })
            .unwrap_or_default();
        let err = Error::TooManyMalformed {
            malformed: ledger.malformed,
            lines_read: ledger.lines_read,
            share: ledger.malformed_share() * 100.0,
            limit: opts.max_malformed_share * 100.0,
            first,
        };
        return (ledger, Err(err));
    }
    if let Some(id) = state.overflowed() {
        let what = format!("the revenue of customer {}", String::from_utf8_lossy(id));
        return (ledger, Err(Error::Overflow { what }));
    }
    if ledger.purchase_lines == 0 {
        let input = crate::input::describe_paths(files.iter().map(|f| f.path.as_path()));
        let ledger_text = ledger.describe();
        let err = Error::NoPurchases {
            input,
            ledger: ledger_text,
        };
        return (ledger, Err(err));
    }
    (ledger, finish(state, opts.as_of))
}

/// Computes a whole run in this process (rayon over all chunks).
pub fn run_local(files: &[InputFile], opts: &RunOptions) -> Result<PartialState> {
    let chunks = plan_chunks(files, opts.chunk_size);
    let maps: Vec<MappedFile> = files
        .iter()
        .map(|f| MappedFile::open(&f.path))
        .collect::<Result<_>>()?;
    let state = chunks
        .par_iter()
        .map(|c| {
            let i = c.file_index as usize;
            compute_chunk(&maps[i], &files[i], *c, &opts.parse, SUB_RANGE_SIZE)
        })
        .reduce(PartialState::new, |mut a, b| {
            a.merge(b);
            a
        });
    Ok(state)
}
