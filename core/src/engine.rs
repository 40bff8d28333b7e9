//! Running the engine on local files: opening inputs, planning byte-range
//! chunks, computing a chunk's partial state with rayon, and finishing a run
//! (malformed limit, line numbers of samples, scoring).
//!
//! The distributed engine uses the same pieces: a worker calls
//! [`compute_chunk`], the coordinator calls [`plan_chunks`] and [`finish_run`].
//!
//! A local CSV input is mapped from the page cache for the chunk that parses
//! it ([`crate::mapped`]: no copy, no fresh memory zeroed), and read with
//! positioned reads into reused buffers where it cannot be mapped (an
//! object from storage, no guard slot free). A file that shrinks or changes
//! while being read gives [`Error::InputChanged`] naming it, or
//! [`Error::InputCutShort`] when a mapped page was lost meanwhile (the guard
//! turns what would be a `SIGBUS` into zeros and a count). A byte range owns
//! the records from the first sync point at or after its start to the first
//! one at or after its end ([`crate::scan`] defines sync points), so every
//! record belongs to exactly one range whatever the chunk layout.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::SystemTime;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;
use crate::data_root::DataRoot;
use crate::date::Date;
use crate::error::{Error, Result};
use crate::format::InputFormat;
use crate::format::Location;
use crate::input::{
    header_prefix_len, read_layout, resolve_input_cancellable, FileLayout, ParseOptions,
};
use crate::mapped::MappedFile;
use crate::parse::{parse_range_into, RangeSpec};
use crate::partial::PartialState;
use crate::remote::{RemoteInputs, RemoteObject};
use crate::scan::{sync_point, MAX_RECORD_LIMIT};
use crate::score::{finish, RfmResult};
use crate::split::ChunkSplit;

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
    /// `--until` (`YYYY-MM-DD`): keep purchases on or before this day.
    pub until: Option<&'a str>,
    pub max_malformed_share: f64,
    /// Bytes per chunk; 0: chosen by the coordinator from the input's size
    /// and its workers' slots ([`AUTO_CHUNK_SIZE`]).
    pub chunk_size: u64,
    pub max_record_size: u64,
}

/// The chunk size that leaves the choice to the coordinator.
pub const AUTO_CHUNK_SIZE: u64 = 0;

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
        let until = match self.until {
            Some(t) => Some(crate::date::parse_date(t).ok_or_else(|| {
                Error::invalid_option(
                    "--until",
                    format!("{t:?} is not a date of the form YYYY-MM-DD"),
                )
            })?),
            None => None,
        };
        // A point in time: scored as of the day after it, unless told.
        let as_of = as_of.or(until.map(|u| u + 1));
        if !(0.0..=1.0).contains(&self.max_malformed_share) {
            return Err(Error::invalid_option(
                "--max-malformed-share",
                format!(
                    "{} is not a fraction between 0 and 1",
                    self.max_malformed_share
                ),
            ));
        }
        if !(1..=MAX_RECORD_LIMIT).contains(&self.max_record_size) {
            return Err(Error::invalid_option(
                "--max-record-size",
                format!(
                    "{} is not a byte size between 1 and {MAX_RECORD_LIMIT} (e.g. 1MiB)",
                    self.max_record_size
                ),
            ));
        }
        Ok(RunOptions {
            parse: ParseOptions {
                delimiter: self.delimiter,
                decimal_comma: self.decimal_comma,
                date_format,
                max_record_size: self.max_record_size,
                until,
                format: None,
                // Set by the caller (`--sheet` is a list, not a text option).
                sheets: Vec::new(),
                ..ParseOptions::default()
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
    /// How the file is read (`--format`, or from its name).
    #[serde(default)]
    pub format: InputFormat,
    /// A remote object's ETag when the job was planned (`None` for a local
    /// file, or a server that sends none): every read asks for that version.
    #[serde(default)]
    pub etag: Option<String>,
    /// Whether an http(s) object is read only over connections to public
    /// addresses (the coordinator's `--remote-inputs public`).
    #[serde(default)]
    pub public_only: bool,
}

/// Bytes read from input files by this process (a work counter: reading a
/// file costs about its size, whatever the chunk layout).
static BYTES_READ: AtomicU64 = AtomicU64::new(0);

/// Bytes read from input files by this process so far.
pub fn bytes_read() -> u64 {
    BYTES_READ.load(Ordering::Relaxed)
}

/// Counts bytes read from an input by another reader (Parquet's).
pub(crate) fn count_read(n: u64) {
    BYTES_READ.fetch_add(n, Ordering::Relaxed);
}

/// What an [`InputReader`] reads from.
enum Source {
    File(File),
    /// An `s3://` or `http(s)://` object ([`crate::remote`]).
    Remote(RemoteObject),
}

/// An open input file, read with positioned reads. Its size and modification
/// time at open are the ones every read expects.
pub struct InputReader {
    /// Unique in this process: what a thread's reused [`Window`] was read from.
    id: u64,
    source: Source,
    path: PathBuf,
    size: u64,
    modified: Option<SystemTime>,
}

impl InputReader {
    pub fn open(path: &Path) -> Result<InputReader> {
        if crate::remote::is_remote(path) {
            let object = RemoteObject::open(&path.to_string_lossy(), false)?;
            return Ok(InputReader::remote(path, object));
        }
        let unreadable = |source| Error::Unreadable {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(unreadable)?;
        InputReader::from_file(file, path)
    }

    /// Opens an input file as planned: a remote object in the version and
    /// under the address policy the coordinator planned it with (no
    /// request until the first read); a local file through `root`, when
    /// given ([`DataRoot::open`]).
    pub fn open_planned(file: &InputFile, root: Option<&DataRoot>) -> Result<InputReader> {
        if crate::remote::is_remote(&file.path) {
            let object = RemoteObject::planned(
                &file.path.to_string_lossy(),
                file.public_only,
                file.layout.len,
                file.etag.as_deref(),
            )?;
            return Ok(InputReader::remote(&file.path, object));
        }
        match root {
            Some(root) => root.open(&file.path),
            None => InputReader::open(&file.path),
        }
    }

    fn remote(path: &Path, object: RemoteObject) -> InputReader {
        InputReader {
            id: next_id(),
            path: path.to_path_buf(),
            size: object.size(),
            modified: None,
            source: Source::Remote(object),
        }
    }

    /// A remote object's ETag when opened (`None` for a local file).
    pub fn etag(&self) -> Option<&str> {
        match &self.source {
            Source::Remote(object) => object.etag(),
            Source::File(_) => None,
        }
    }

    /// A reader of a file already open as `path`.
    pub(crate) fn from_file(file: File, path: &Path) -> Result<InputReader> {
        let meta = file.metadata().map_err(|source| Error::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(InputReader {
            id: next_id(),
            source: Source::File(file),
            path: path.to_path_buf(),
            size: meta.len(),
            modified: meta.modified().ok(),
        })
    }

    /// Why a remote object cannot be read as a local file (compressed,
    /// Parquet and Excel inputs, the state cache's identity).
    fn not_local(&self) -> Error {
        Error::Remote {
            url: self.path.to_string_lossy().into_owned(),
            message: "only CSV is read from object storage or HTTP; copy a compressed, \
                      Parquet or Excel file to a local disk (or the data root) first"
                .into(),
        }
    }

    /// The open file's metadata now (its identity for the state cache).
    pub fn metadata(&self) -> Result<std::fs::Metadata> {
        match &self.source {
            Source::File(file) => file.metadata().map_err(|source| Error::Unreadable {
                path: self.path.clone(),
                source,
            }),
            Source::Remote(_) => Err(self.not_local()),
        }
    }

    /// The path the file was opened as.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A second handle on the same open file (for readers that own theirs).
    pub fn try_clone_file(&self) -> Result<File> {
        match &self.source {
            Source::File(file) => file.try_clone().map_err(|source| Error::Unreadable {
                path: self.path.clone(),
                source,
            }),
            Source::Remote(_) => Err(self.not_local()),
        }
    }

    /// For a remote object, the same reader with `[start, end)` fetched in
    /// one request (reads within it are served from memory); `None` for a
    /// local file, read in place.
    pub fn prefetched(&self, start: u64, end: u64) -> Result<Option<InputReader>> {
        match &self.source {
            Source::File(_) => Ok(None),
            Source::Remote(object) => Ok(Some(InputReader {
                id: next_id(),
                source: Source::Remote(object.fetch(start, end)?),
                path: self.path.clone(),
                size: self.size,
                modified: None,
            })),
        }
    }

    /// The file's size when it was opened.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The file's modification time when it was opened.
    pub fn modified(&self) -> Option<SystemTime> {
        self.modified
    }

    /// The open file (for readers of whole formats, such as workbooks).
    pub(crate) fn file(&self) -> Result<&File> {
        match &self.source {
            Source::File(file) => Ok(file),
            Source::Remote(_) => Err(self.not_local()),
        }
    }

    /// The file mapped from the page cache, for a chunk to parse in place;
    /// `None` for a remote object, or a file that cannot be mapped with the
    /// guard ([`MappedFile::map_input`]): read it instead.
    pub fn map(&self) -> Option<MappedFile> {
        match &self.source {
            Source::File(file) => MappedFile::map_input(file, &self.path).ok().flatten(),
            Source::Remote(_) => None,
        }
    }

    /// `[start, end)` of the file: from `mapped` where it holds the range,
    /// else read into `buf` (reusing its memory).
    pub fn bytes<'a>(
        &self,
        mapped: Option<&'a MappedFile>,
        start: u64,
        end: u64,
        buf: &'a mut Vec<u8>,
    ) -> Result<&'a [u8]> {
        let end = end.min(self.size);
        let in_map = mapped.and_then(|m| {
            let range = usize::try_from(start).ok()?..usize::try_from(end).ok()?;
            m.bytes().get(range)
        });
        match in_map {
            Some(bytes) => {
                if let Some(m) = mapped {
                    m.populate(start as usize, end as usize);
                }
                BYTES_READ.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                Ok(bytes)
            }
            None => {
                self.read(start, end, buf)?;
                Ok(buf)
            }
        }
    }

    /// Fails with [`Error::InputCutShort`] when `mapped` lost a page since
    /// it was made (then what was read from it holds zeros).
    pub fn check_mapping(&self, mapped: Option<&MappedFile>) -> Result<()> {
        match mapped {
            Some(m) if m.was_cut_short() => Err(Error::InputCutShort {
                path: self.path.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Reads `[start, end)` (cut at the size) into `buf`, reusing its memory.
    pub fn read(&self, start: u64, end: u64, buf: &mut Vec<u8>) -> Result<()> {
        self.read_at(start, end, buf, 0)
    }

    /// Reads `[start, end)` (cut at the size) into `buf[at..]` (`at` at most
    /// `buf.len()`); `buf` ends there.
    fn read_at(&self, start: u64, end: u64, buf: &mut Vec<u8>, at: usize) -> Result<()> {
        let n = end.min(self.size).saturating_sub(start) as usize;
        buf.truncate(at);
        let file = match &self.source {
            Source::File(file) => file,
            Source::Remote(object) => {
                buf.resize(at + n, 0);
                object.read_into(start, &mut buf[at..])?;
                BYTES_READ.fetch_add(n as u64, Ordering::Relaxed);
                return Ok(());
            }
        };
        match append_file_bytes(file, start, n, buf) {
            Ok(()) => {
                BYTES_READ.fetch_add(n as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(self.changed()),
            Err(source) => Err(Error::Unreadable {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Fails when the file's size or modification time is no longer the one
    /// seen at open: the bytes read may mix two versions of the file.
    /// A remote object is checked by every read instead (If-Match its ETag).
    pub fn check_unchanged(&self) -> Result<()> {
        let Source::File(file) = &self.source else {
            return Ok(());
        };
        let meta = file.metadata().map_err(|source| Error::Unreadable {
            path: self.path.clone(),
            source,
        })?;
        if meta.len() != self.size || meta.modified().ok() != self.modified {
            return Err(self.changed());
        }
        Ok(())
    }

    fn changed(&self) -> Error {
        let now = match &self.source {
            Source::File(file) => file.metadata().map(|m| m.len()).unwrap_or(self.size),
            Source::Remote(_) => self.size,
        };
        Error::InputChanged {
            path: self.path.clone(),
            was: self.size,
            now,
        }
    }
}

/// Appends the `n` bytes of `file` at `offset` to `buf`, read straight into
/// its spare capacity: no zero-fill of memory the read overwrites anyway.
/// Fails with [`std::io::ErrorKind::UnexpectedEof`] when the file ends first.
fn append_file_bytes(file: &File, offset: u64, n: usize, buf: &mut Vec<u8>) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    crate::huge_pages::reserve(buf, n);
    let mut done = 0;
    while done < n {
        let spare = buf.spare_capacity_mut();
        let want = (n - done).min(spare.len());
        // SAFETY: `pread` writes at most `want` bytes at the start of the
        // spare capacity, which holds at least `want` bytes (reserved above,
        // and each pass consumes only what the previous one wrote).
        let read = unsafe {
            libc::pread(
                file.as_raw_fd(),
                spare.as_mut_ptr().cast(),
                want,
                (offset + done as u64) as libc::off_t,
            )
        };
        match read {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            r if r < 0 => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            r => {
                // SAFETY: `pread` initialised the `r` (≤ `want`) bytes
                // after the vector's end.
                unsafe { buf.set_len(buf.len() + r as usize) };
                done += r as usize;
            }
        }
    }
    Ok(())
}

/// A process-unique reader id.
fn next_id() -> u64 {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Resolves an input spec and reads every file's header.
pub fn open_inputs(spec: &str, parse: &ParseOptions) -> Result<Vec<InputFile>> {
    open_inputs_cancellable(spec, parse, &Cancel::default())
}

/// [`open_inputs`] that stops with [`Error::Cancelled`] once `cancel` is set
/// (the coordinator's planning, when the client has gone).
pub fn open_inputs_cancellable(
    spec: &str,
    parse: &ParseOptions,
    cancel: &Cancel,
) -> Result<Vec<InputFile>> {
    open_inputs_in(spec, None, parse, cancel)
}

/// [`open_inputs_cancellable`] under a data root, when given: the spec is
/// resolved and every file opened through it ([`DataRoot`]).
pub fn open_inputs_in(
    spec: &str,
    root: Option<&DataRoot>,
    parse: &ParseOptions,
    cancel: &Cancel,
) -> Result<Vec<InputFile>> {
    open_inputs_checked(spec, root, RemoteInputs::All, parse, cancel)
}

/// [`open_inputs_in`] for a coordinator's clients: a remote spec (`s3://`,
/// `http(s)://`) is read only when `remote` allows it ([`crate::remote`]);
/// a local one under the data root, when given.
pub fn open_inputs_checked(
    spec: &str,
    root: Option<&DataRoot>,
    remote: RemoteInputs,
    parse: &ParseOptions,
    cancel: &Cancel,
) -> Result<Vec<InputFile>> {
    let paths = if Location::of(spec) != Location::Local {
        crate::remote::admit(spec, remote)?;
        crate::remote::resolve(spec, cancel)?
    } else {
        match root {
            Some(root) => root.resolve(spec, cancel)?,
            None => resolve_input_cancellable(spec, cancel)?,
        }
    };
    let mut files = Vec::with_capacity(paths.len());
    let mut prefix = Vec::new();
    let public_only = remote == RemoteInputs::Public && Location::of(spec) == Location::Http;
    for path in paths {
        cancel.check()?;
        let reader = if crate::remote::is_remote(&path) {
            let object = RemoteObject::open(&path.to_string_lossy(), public_only)?;
            InputReader::remote(&path, object)
        } else {
            match root {
                Some(root) => root.open(&path)?,
                None => InputReader::open(&path)?,
            }
        };
        let format = InputFormat::choose(&path.to_string_lossy(), parse.format);
        let layout = match format {
            InputFormat::Csv => read_csv_layout(&reader, &path, parse, &mut prefix)?,
            InputFormat::CsvGzip | InputFormat::CsvZstd => {
                crate::compressed::read_compressed_layout(&reader, format, parse)?
            }
            InputFormat::Parquet => crate::parquet_input::read_parquet_layout(&reader)?,
            InputFormat::Excel => crate::excel::read_layout(&reader, &path, parse)?,
        };
        files.push(InputFile {
            path,
            layout,
            format,
            etag: reader.etag().map(str::to_string),
            public_only,
        });
    }
    if files.iter().all(|f| f.layout.data_start >= f.layout.len) {
        return Err(Error::NoDataLines {
            path: files[0].path.clone(),
        });
    }
    Ok(files)
}

/// Bytes read first for a CSV file's header: a header longer than this is
/// read again from the whole prefix the record limit allows.
const HEADER_PROBE_BYTES: u64 = 4 << 10;

/// The layout of a CSV file, its header read from its first
/// [`HEADER_PROBE_BYTES`] (a run over many files reads a little of each),
/// or from the first [`header_prefix_len`] bytes when the header does not
/// end within them.
fn read_csv_layout(
    reader: &InputReader,
    path: &Path,
    parse: &ParseOptions,
    prefix: &mut Vec<u8>,
) -> Result<FileLayout> {
    let full = header_prefix_len(parse);
    let probe = HEADER_PROBE_BYTES.min(full);
    reader.read(0, probe, prefix)?;
    let whole_file = (prefix.len() as u64) < probe;
    if probe < full && !whole_file {
        match read_layout(path, prefix, reader.size(), parse) {
            Ok(layout) if layout.data_start < prefix.len() as u64 => return Ok(layout),
            _ => reader.read(0, full, prefix)?,
        }
    }
    read_layout(path, prefix, reader.size(), parse)
}

/// A task: the records owned by the byte range `[start, end)` of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    pub file_index: u32,
    pub start: u64,
    pub end: u64,
}

/// Splits every file into chunks of about `chunk_size` bytes; a compressed
/// file is one chunk. A Parquet file's chunk owns the row groups that start
/// in it ([`crate::parquet_input`]); a workbook is split into row ranges of
/// its sheets ([`crate::excel`]).
pub fn plan_chunks(files: &[InputFile], chunk_size: u64) -> Vec<Chunk> {
    let chunk_size = chunk_size.max(1);
    let mut chunks = Vec::new();
    for (i, f) in files.iter().enumerate() {
        if !f.layout.sheets.is_empty() {
            crate::excel::plan_chunks(i as u32, f, chunk_size, &mut chunks);
            continue;
        }
        let start = f.layout.data_start;
        let len = f.layout.len;
        if start >= len {
            continue;
        }
        if matches!(f.format, InputFormat::CsvGzip | InputFormat::CsvZstd) {
            chunks.push(Chunk {
                file_index: i as u32,
                start,
                end: len,
            });
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

/// How many chunks [`plan_chunks`] makes, counted without making them (a
/// coordinator's task limit is checked before planning): a compressed file
/// is one, a workbook its row ranges, any other file its byte ranges.
pub fn count_chunks(files: &[InputFile], chunk_size: u64) -> u64 {
    let chunk_size = chunk_size.max(1);
    files
        .iter()
        .map(|f| {
            let bytes = f.layout.len.saturating_sub(f.layout.data_start);
            if !f.layout.sheets.is_empty() {
                crate::excel::count_chunks(f, chunk_size)
            } else if bytes == 0 {
                0
            } else if matches!(f.format, InputFormat::CsvGzip | InputFormat::CsvZstd) {
                1
            } else {
                bytes.div_ceil(chunk_size)
            }
        })
        .sum()
}

/// The bytes `[start, start + bytes.len())` of a file, kept from one sync
/// search to the next: a walk over cell starts reads each byte once.
#[derive(Default)]
struct Window {
    bytes: Vec<u8>,
    start: u64,
    /// The [`InputReader::id`] of the reader the bytes come from (0: none).
    source: u64,
}

impl Window {
    /// Makes the window hold `[start, end)`, reading only the bytes it lacks.
    fn fill(&mut self, reader: &InputReader, start: u64, end: u64) -> Result<&[u8]> {
        let held_end = self.start + self.bytes.len() as u64;
        if self.source != reader.id
            || self.bytes.is_empty()
            || start < self.start
            || start > held_end
        {
            // Another reader's bytes (or none) are never reused.
            self.source = 0;
            reader.read(start, end, &mut self.bytes)?;
            self.source = reader.id;
        } else {
            self.bytes.drain(..(start - self.start) as usize);
            let held = self.bytes.len();
            if end > held_end {
                self.source = 0;
                reader.read_at(held_end, end, &mut self.bytes, held)?;
                self.source = reader.id;
            } else {
                self.bytes.truncate((end - start) as usize);
            }
        }
        self.start = start;
        Ok(&self.bytes)
    }
}

/// Bytes of the first read of a sync search window (most searches end within
/// a few records); the window then doubles up to its bound.
const FIRST_WINDOW: u64 = 64 << 10;

/// The sync point of the first cell start `g >= from` (and `< cap`, if given)
/// whose search window holds one; `None` when no cell start before `cap` has
/// one. A window is two cells: enough for every run to end a record within
/// the limit, while inside an over-long record the search moves on.
fn sync_after(
    reader: &InputReader,
    parse: &ParseOptions,
    from: u64,
    cap: Option<u64>,
    window: &mut Window,
) -> Result<Option<u64>> {
    let cell = parse.max_record_size.max(1);
    let size = reader.size();
    let mut g = from.div_ceil(cell) * cell;
    loop {
        if cap.is_some_and(|c| g >= c) {
            return Ok(None);
        }
        if g >= size {
            return Ok(Some(size));
        }
        let bound = (g + 2 * cell + 2).min(size);
        let mut end = (g + FIRST_WINDOW).min(bound);
        loop {
            let bytes = window.fill(reader, g, end)?;
            if let Some(i) = sync_point(bytes, g, cell, parse.delimiter, end == size) {
                return Ok(Some(g + i as u64));
            }
            if end == bound {
                break;
            }
            end = (g + 2 * (end - g)).min(bound);
        }
        g += cell;
    }
}

/// The records a sub-range `[s, e)` owns: `[B(s), B(e))` where `B(x)` is the
/// first sync point from `x` on (the data start for `x` at or before it).
/// `B(s)` is searched only before `e`: when no cell start in `[s, e)` has a
/// sync point, `B(s) = B(e)` and the range owns nothing. So a long run of
/// over-long records costs each range its own bytes, not the run's.
fn owned_bytes(
    reader: &InputReader,
    input: &InputFile,
    parse: &ParseOptions,
    s: u64,
    e: u64,
    window: &mut Window,
) -> Result<Option<(u64, u64)>> {
    let data_start = input.layout.data_start;
    let size = reader.size();
    let lo = if s <= data_start {
        data_start
    } else {
        match sync_after(reader, parse, s, Some(e), window)? {
            Some(p) => p,
            None => return Ok(None),
        }
    };
    let hi = if e >= size {
        size
    } else {
        sync_after(reader, parse, e, None, window)?.unwrap_or(size)
    };
    Ok((lo < hi).then_some((lo, hi)))
}

/// Buffers a thread reuses from sub-range to sub-range (and chunk to chunk):
/// memory the kernel has zeroed once, not for every sub-range.
#[derive(Default)]
struct Buffers {
    window: Window,
    records: Vec<u8>,
}

thread_local! {
    static BUFFERS: std::cell::RefCell<Buffers> = std::cell::RefCell::default();
}

/// Runs `f` with this thread's buffers (fresh ones if they are in use).
fn with_buffers<T>(f: impl FnOnce(&mut Buffers) -> T) -> T {
    BUFFERS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut bufs) => f(&mut bufs),
        Err(_) => f(&mut Buffers::default()),
    })
}

/// Computes the partial state of one chunk: rayon over sub-ranges of
/// `sub_range` bytes, each read into a buffer, parsed into Arrow batches and
/// folded into a state. Stops with [`Error::Cancelled`] between sub-ranges
/// once `cancel` is set; fails with [`Error::InputChanged`] when the file is
/// not the one planned or changes while being read.
pub fn compute_chunk(
    reader: &InputReader,
    input: &InputFile,
    chunk: Chunk,
    parse: &ParseOptions,
    sub_range: usize,
    cancel: &Cancel,
) -> Result<PartialState> {
    compute_chunk_split(reader, input, chunk, parse, sub_range, cancel, None)
}

/// [`compute_chunk`], whose CSV chunk may be cut short while it runs: the
/// sub-ranges `split` gave away are not read (see [`ChunkSplit`], which
/// then holds where the chunk ended). Chunks of other formats are read
/// whole.
pub fn compute_chunk_split(
    reader: &InputReader,
    input: &InputFile,
    chunk: Chunk,
    parse: &ParseOptions,
    sub_range: usize,
    cancel: &Cancel,
    split: Option<&ChunkSplit>,
) -> Result<PartialState> {
    let split = split.filter(|_| input.format == InputFormat::Csv);
    let sub_range = split.map_or(sub_range, ChunkSplit::sub_range);
    if reader.size() != input.layout.len {
        return Err(Error::InputChanged {
            path: input.path.clone(),
            was: input.layout.len,
            now: reader.size(),
        });
    }
    match input.format {
        InputFormat::Csv => {}
        InputFormat::CsvGzip | InputFormat::CsvZstd => {
            return crate::compressed::compute_compressed(
                reader,
                input,
                chunk.file_index,
                parse,
                cancel,
            );
        }
        InputFormat::Parquet => {
            return crate::parquet_input::compute_parquet(reader, input, chunk, parse, cancel);
        }
        InputFormat::Excel => {
            return crate::excel::compute_chunk(reader, input, chunk, parse, cancel);
        }
    }
    // Parsed in place where the file maps; unmapped when the chunk is done.
    let mapped = reader.map();
    compute_csv_chunk(
        reader,
        mapped.as_ref(),
        input,
        chunk,
        parse,
        sub_range,
        cancel,
        split,
    )
}

/// The CSV case of [`compute_chunk_split`], reading from `mapped` (the
/// file's mapping, if it maps) where it can.
#[allow(clippy::too_many_arguments)]
fn compute_csv_chunk(
    reader: &InputReader,
    mapped: Option<&MappedFile>,
    input: &InputFile,
    chunk: Chunk,
    parse: &ParseOptions,
    sub_range: usize,
    cancel: &Cancel,
    split: Option<&ChunkSplit>,
) -> Result<PartialState> {
    let end = chunk.end.min(reader.size());
    // A remote object: the chunk's bytes in one request; the bytes past its
    // end that finish its last record come with a second, small one.
    let fetched = reader.prefetched(chunk.start, end)?;
    let reader = fetched.as_ref().unwrap_or(reader);
    let sub_range = sub_range.max(1) as u64;
    let ranges: Vec<(u64, u64)> = (chunk.start..end)
        .step_by(sub_range as usize)
        .map(|s| (s, (s + sub_range).min(end)))
        .collect();
    // One fold per thread at most, each claiming the next sub-range as it
    // becomes free: a thread held by other work (another chunk, a cache
    // entry's decoding) takes fewer sub-ranges instead of leaving the others
    // waiting for its share; each fold's state is one more merge.
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let folds = rayon::current_num_threads().min(ranges.len()).max(1);
    let fold_range = |state: &mut PartialState, s: u64, e: u64| -> Result<()> {
        cancel.check()?;
        if split.is_some_and(|split| !split.begin(s, e)) {
            return Ok(());
        }
        with_buffers(|bufs| {
            if let Some((lo, hi)) = owned_bytes(reader, input, parse, s, e, &mut bufs.window)? {
                let records = reader.bytes(mapped, lo, hi, &mut bufs.records)?;
                // Room for what this state may fold: the rest of the
                // chunk (a chunk's worth at most), so it rarely grows.
                let ahead = end.saturating_sub(lo).min(DEFAULT_CHUNK_SIZE) as usize;
                state.reserve_for_input(ahead.max(records.len()));
                let range = RangeSpec {
                    file_index: chunk.file_index,
                    base: lo,
                };
                let ledger = parse_range_into(records, range, &input.layout.columns, parse, state);
                state.ledger.merge(ledger);
                if let Some(mapped) = mapped {
                    // Parsed: its pages leave the process's memory.
                    mapped.release(lo as usize, hi as usize);
                }
            }
            Ok::<_, Error>(())
        })
    };
    let fold_claimed = |_| -> Result<Option<PartialState>> {
        let mut folded: Option<PartialState> = None;
        while !stop.load(Ordering::Relaxed) {
            // A merge waiting for the pool goes first (see `crate::urgent`).
            crate::urgent::run_waiting();
            let Some(&(s, e)) = ranges.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            let state = folded.get_or_insert_with(PartialState::new);
            if let Err(e) = fold_range(state, s, e) {
                stop.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(folded)
    };
    let mut state = merge_sealed(
        (0..folds)
            .into_par_iter()
            .map(fold_claimed)
            .filter_map(Result::transpose),
    )?;
    if let Some(split) = split {
        split.close();
    }
    reader.check_mapping(mapped)?;
    reader.check_unchanged()?;
    state.seal();
    Ok(state)
}

/// Seals each sub-range's state and merges them all; the merge is
/// associative and a sealed state canonical, so rayon's order does not
/// show in the result.
pub(crate) fn merge_sealed(
    states: impl ParallelIterator<Item = Result<PartialState>>,
) -> Result<PartialState> {
    states
        .map(|r| {
            r.map(|mut s| {
                s.seal();
                s
            })
        })
        .try_reduce(PartialState::new, |mut a, b| {
            a.merge(b);
            Ok(a)
        })
}

/// Fills in the 1-based line numbers of malformed samples (header = line 1).
pub fn number_sample_lines(state: &mut PartialState, files: &[InputFile]) -> Result<()> {
    number_sample_lines_in(state, files, None)
}

/// [`number_sample_lines`] reading through a data root, when given; samples
/// already numbered are left as they are.
pub fn number_sample_lines_in(
    state: &mut PartialState,
    files: &[InputFile],
    root: Option<&DataRoot>,
) -> Result<()> {
    const BLOCK: u64 = 1 << 20;
    let mut samples = std::mem::take(&mut state.ledger.malformed_samples);
    let mut buf = Vec::new();
    for s in samples.iter_mut().filter(|s| s.line.is_none()) {
        if let Some(f) = files.get(s.file_index as usize) {
            let reader = InputReader::open_planned(f, root)?;
            let upto = s.offset.min(reader.size());
            let mut newlines = 0;
            let mut at = 0;
            while at < upto {
                let end = (at + BLOCK).min(upto);
                reader.read(at, end, &mut buf)?;
                newlines += memchr::memchr_iter(b'\n', &buf).count() as u64;
                at = end;
            }
            s.line = Some(newlines + 1);
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
    if let Err(e) = check_date_forms(&ledger, files, &opts.parse) {
        return (ledger, Err(e));
    }
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

/// Fails a run whose file has slash dates that only fit day first (and none
/// that only fit month first) when no `--date-format` was given: the file
/// is day first, and reading it month first would drop or misdate its lines.
pub fn check_date_forms(
    ledger: &crate::ledger::LineLedger,
    files: &[InputFile],
    parse: &ParseOptions,
) -> Result<()> {
    if parse.date_format.is_some() {
        return Ok(());
    }
    for (i, forms) in ledger.dates.iter().enumerate() {
        if !forms.only_day_first() {
            continue;
        }
        let example = forms
            .day_first_example
            .as_ref()
            .map(|e| e.1.clone())
            .unwrap_or_default();
        return Err(Error::DayFirstDates {
            path: files.get(i).map(|f| f.path.clone()).unwrap_or_default(),
            count: forms.day_first,
            format: crate::date::day_first_format(&example),
            example,
        });
    }
    Ok(())
}

/// Computes a whole run in this process (rayon over all chunks).
pub fn run_local(files: &[InputFile], opts: &RunOptions) -> Result<PartialState> {
    let chunk_size = match opts.chunk_size {
        AUTO_CHUNK_SIZE => DEFAULT_CHUNK_SIZE,
        n => n,
    };
    let chunks = plan_chunks(files, chunk_size);
    let readers: Vec<InputReader> = files
        .iter()
        .map(|f| InputReader::open_planned(f, None))
        .collect::<Result<_>>()?;
    let cancel = Cancel::default();
    chunks
        .par_iter()
        .map(|c| {
            let i = c.file_index as usize;
            compute_chunk(
                &readers[i],
                &files[i],
                *c,
                &opts.parse,
                SUB_RANGE_SIZE,
                &cancel,
            )
        })
        .try_reduce(PartialState::new, |mut a, b| {
            a.merge(b);
            Ok(a)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n";

    #[test]
    fn an_input_cut_short_under_its_mapping_fails_the_chunk_not_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        let mut text = String::from(HEADER);
        for i in 0..60_000 {
            text.push_str(&format!(
                "5{i:05},A,X,2,12/1/2010 8:26,1.25,{},United Kingdom\n",
                10_000 + i % 3_000
            ));
        }
        std::fs::write(&path, &text).unwrap();
        let size = text.len() as u64;
        let parse = ParseOptions::default();
        let files = open_inputs(path.to_str().unwrap(), &parse).unwrap();
        let reader = InputReader::open(&path).unwrap();
        let chunk = plan_chunks(&files, 1 << 30)[0];
        let cancel = Cancel::default();
        let compute = |mapped: Option<&MappedFile>, sub_range: usize| {
            compute_csv_chunk(
                &reader, mapped, &files[0], chunk, &parse, sub_range, &cancel, None,
            )
        };

        // Whole, the mapped file gives the state its reads give.
        let mapped = reader.map().expect("a local file maps");
        let from_map = compute(Some(&mapped), 256 << 10).unwrap();
        let from_reads = compute(None, 256 << 10).unwrap();
        assert_eq!(from_map.customer_count(), 3_000);
        // Compared canonically (a cache entry's payload): the customers'
        // slots follow the order the threads folded the sub-ranges in.
        let canonical = |state: &PartialState| {
            let mut out = Vec::new();
            state.encode_entry(&state.ledger, &mut out);
            out
        };
        assert_eq!(canonical(&from_map), canonical(&from_reads));

        // Cut to a third under the mapping: the parse of the one sub-range
        // reads the lost pages (zeros, not SIGBUS; no other read comes
        // first to find the file shorter) and the chunk fails, naming it.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(size / 3)
            .unwrap();
        let err = compute(Some(&mapped), 1 << 30).unwrap_err();
        assert!(mapped.was_cut_short());
        assert!(matches!(err, Error::InputCutShort { .. }), "{err:?}");
        assert_eq!(err.kind(), crate::ErrorKind::Input);
        let msg = err.to_string();
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains("cut short"),
            "{msg}"
        );
    }
}
