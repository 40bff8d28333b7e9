//! The state cache: each input file's merged [`PartialState`] (its ledger and
//! malformed samples included) kept on disk between runs, so a run over a
//! folder that gained one file reads only that file.
//!
//! An entry is found by its [`CacheKey`]: the file's identity together with
//! everything that changes the state a file gives.
//!
//! - Identity: the canonical path, the size, the modification time in
//!   nanoseconds, the device and inode, and a fingerprint: XXH3-128 of the
//!   size, the first 16 KiB and the last 16 KiB. Any append, truncation,
//!   replacement (new inode), `touch` or edit within the first or last 16 KiB
//!   is a new key.
//! - State: the parse options (delimiter, decimal comma, date format, record
//!   size limit, `--until`), the file's data start and column map, and
//!   [`STATE_VERSION`] with the crate version (a new engine never reads an
//!   older engine's states).
//!
//! The as-of date, the malformed limit and scoring are applied after the
//! merge: they are not in the key, and changing them reuses the entries.
//!
//! Limits: an edit in the middle of a file (beyond both 16 KiB ends) that
//! keeps its size and restores its modification time to the nanosecond, on
//! the same inode, is not seen: the old state is used. Tools that copy with
//! `cp -p`/`rsync -t` onto a same-size file in place can do that; remove the
//! entry (`rfm cache clear`) or run with `--no-cache` after such a change.
//!
//! An entry file (`<sha256 of the key>.state`) holds a magic, the format
//! version, a JSON header (the key, the payload's length and XXH3-128
//! checksum) and the payload: the state's own columns as little-endian
//! arrays ([`PartialState::encode_entry`]), decoded straight into a state
//! ([`PartialState::decode_entry`], which bound-checks everything). File
//! indexes in the ledger (date
//! forms, malformed samples) are stored as 0 and set to the file's position
//! in the run that reads it. Entries are written to a temporary file beside
//! their name, synced and renamed ([`crate::atomic`]): a concurrent run sees
//! a whole entry or none (the folder is not synced: a rename a crash loses
//! is a miss, recomputed). An entry that is damaged, truncated, of another
//! version or of another key is never trusted: [`Lookup::Damaged`] says why
//! and the caller recomputes and overwrites it. The cache's size is bounded:
//! after a write the least recently used entries (a hit touches its entry's
//! modification time) go until it fits.
//!
//! Set entries: a run over several files also stores the merged state of all
//! of them (`<sha256 of their sorted entry names>.set.state`, its header
//! holding every file's key in the run's order), so a run over the same
//! files plus a new one reads one entry instead of one per file. A run uses
//! the set entry covering most of its files, provided every member's key is
//! one of the run's keys and the members keep their relative order (the file
//! indexes of the ledger are renumbered); the other files are looked up one
//! by one. A changed member is another key: the set is not used. Writing a
//! set removes the sets it contains (a run over a growing folder keeps one).
//! A set found is read and its checksum checked at once ([`SetHit`]); its
//! decoding can wait ([`SetHit::decode`]), so a run computes its new files
//! meanwhile.
//!
//! The checksum is XXH3-128, not a cryptographic hash: it detects damage
//! (a torn write, a bad disk block, a truncated copy), not forgery. The
//! cache folder is the user's (or the operator's) own, like the results
//! it sits beside; whoever can write to it can write the results too.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::atomic::TempFile;
use crate::data_root::DataRoot;
use crate::engine::{InputFile, InputReader};
use crate::error::Result;
use crate::input::{ColumnMap, ParseOptions};
use crate::mapped::FileBytes;
use crate::partial::PartialState;

/// The version of the states and of the entry layout; bump it whenever a
/// change of the engine changes the state a file gives.
pub const STATE_VERSION: u32 = 4;
/// The default bound of a cache's size in bytes (2 GiB).
pub const DEFAULT_MAX_SIZE: u64 = 2 << 30;
/// The name of the cache folder under a results root (`rfm run`).
pub const DEFAULT_DIR_NAME: &str = ".cache";
/// Bytes hashed at each end of a file for its fingerprint.
const FINGERPRINT_BYTES: u64 = 16 << 10;
const MAGIC: &[u8; 8] = b"RFMSTATE";
/// The file name ending of entries.
const ENTRY_SUFFIX: &str = ".state";
/// The file name ending of set entries (also an [`ENTRY_SUFFIX`]).
const SET_SUFFIX: &str = ".set.state";
/// The longest header an entry may have (a column map is small).
const MAX_HEADER: u32 = 1 << 20;

/// Who a file is: what must not change for its state to be reused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIdentity {
    /// The canonical path (lossy UTF-8).
    pub path: String,
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    pub dev: u64,
    pub ino: u64,
    /// XXH3-128 (hex) of the size, the first and the last 16 KiB.
    pub fingerprint: String,
}

/// The options that change a file's state, in text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParseKey {
    pub delimiter: u8,
    pub decimal_comma: bool,
    pub date_format: Option<String>,
    pub max_record_size: u64,
    pub until: Option<String>,
    /// `--format`, when forced (else the format follows the path, in the key).
    pub format: Option<String>,
    /// `--sheet`: the sheets read from a workbook.
    pub sheets: Vec<String>,
}

impl ParseKey {
    pub fn of(parse: &ParseOptions) -> ParseKey {
        ParseKey {
            delimiter: parse.delimiter,
            decimal_comma: parse.decimal_comma,
            date_format: parse.date_format.as_ref().map(|f| f.as_str().to_string()),
            max_record_size: parse.max_record_size,
            until: parse.until.map(crate::date::format_date),
            format: parse.format.map(|f| f.name().to_string()),
            sheets: parse.sheets.clone(),
        }
    }
}

/// Everything a cached state depends on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheKey {
    pub state_version: u32,
    pub engine: String,
    pub file: FileIdentity,
    pub parse: ParseKey,
    pub data_start: u64,
    pub columns: ColumnMap,
}

impl CacheKey {
    /// The key of `input` (open as `reader`) read with `parse`.
    pub fn of(
        input: &InputFile,
        reader: &InputReader,
        root: Option<&DataRoot>,
        parse: &ParseOptions,
    ) -> Result<CacheKey> {
        let meta = reader.metadata()?;
        let size = meta.len();
        let full = match root {
            Some(root) => root.join(&input.path),
            None => input.path.clone(),
        };
        let path = fs::canonicalize(&full).unwrap_or(full);
        let mut hash = twox_hash::XxHash3_128::new();
        hash.write(&size.to_le_bytes());
        let mut buf = Vec::new();
        reader.read(0, FINGERPRINT_BYTES.min(size), &mut buf)?;
        hash.write(&buf);
        let tail = size.saturating_sub(FINGERPRINT_BYTES);
        reader.read(tail, size, &mut buf)?;
        hash.write(&buf);
        Ok(CacheKey {
            state_version: STATE_VERSION,
            engine: env!("CARGO_PKG_VERSION").to_string(),
            file: FileIdentity {
                path: path.to_string_lossy().into_owned(),
                size,
                mtime_ns: mtime_ns(&meta),
                dev: meta.dev(),
                ino: meta.ino(),
                fingerprint: format!("{:032x}", hash.finish_128()),
            },
            parse: ParseKey::of(parse),
            data_start: input.layout.data_start,
            columns: input.layout.columns.clone(),
        })
    }

    /// The entry's file name: the SHA-256 of the key.
    fn entry_name(&self) -> String {
        let json = serde_json::to_vec(self).expect("a key serialises");
        format!("{}{ENTRY_SUFFIX}", hex(&Sha256::digest(&json)))
    }
}

fn mtime_ns(meta: &fs::Metadata) -> i128 {
    meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The name of the set entry of `keys` (in any order).
fn set_name(keys: &[CacheKey]) -> String {
    let mut names: Vec<String> = keys.iter().map(CacheKey::entry_name).collect();
    names.sort_unstable();
    format!(
        "{}{SET_SUFFIX}",
        hex(&Sha256::digest(names.concat().as_bytes()))
    )
}

/// An entry's header (JSON, after the magic and version).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EntryHeader {
    /// The key of the file whose state the entry holds; for a set entry,
    /// the key of each file, in the order of their file indexes in the state.
    pub keys: Vec<CacheKey>,
    pub payload_len: u64,
    /// XXH3-128 of the payload (hex): detects damage, not forgery.
    pub payload_xxh3: String,
}

/// What a lookup found.
pub enum Lookup {
    /// The file's state, its file indexes set to the run's.
    Hit(Box<PartialState>),
    /// No entry.
    Miss,
    /// An entry that cannot be trusted, and why (a warning naming it).
    Damaged(String),
}

/// What a lookup of a set entry found.
pub enum SetLookup {
    /// The set entry of most of the run's files, by its header (read,
    /// checked and decoded by [`SetHit::decode`]).
    Hit(SetHit),
    /// No set of at least two of the run's files.
    Miss,
}

/// A set entry chosen by its header, whose payload is read, checked
/// (length, checksum) and decoded on demand: [`decode`](Self::decode) runs
/// beside the computation of the run's other files.
pub struct SetHit {
    path: PathBuf,
    /// The keys its header lists (those the entry must hold).
    keys: Vec<CacheKey>,
    /// The run indexes of the set's files, increasing.
    pub at: Vec<u32>,
}

impl SetHit {
    /// The merged state of the set's files, its file indexes set to the
    /// run's; an error names the entry and says why it is not usable
    /// (damaged: unreadable, truncated, a checksum that does not match; or
    /// a payload that passed its checksum but does not decode, written by a
    /// faulty rfm or forged), and the caller reads the files' own entries
    /// instead.
    pub fn decode(self) -> std::result::Result<PartialState, String> {
        let path = self.path;
        let bytes = FileBytes::load(&path)
            .map_err(|e| format!("cache entry {} cannot be read ({e})", path.display()))?;
        let at = verify(&bytes, &self.keys)
            .map_err(|why| format!("cache entry {} is not usable ({why})", path.display()))?;
        let mut state = decode_payload(bytes, at)
            .map_err(|why| format!("cache entry {} cannot be decoded ({why})", path.display()))?;
        if state.cut_entry().is_some() {
            return Err(format!(
                "cache entry {} was cut short while it was read",
                path.display()
            ));
        }
        renumber_files(&mut state, &self.at);
        Ok(state)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// One entry, as `rfm cache ls` lists it.
#[derive(Clone, Debug)]
pub struct EntryInfo {
    pub entry: PathBuf,
    /// The header, or why it cannot be read.
    pub header: std::result::Result<EntryHeader, String>,
    /// The entry's size in bytes.
    pub bytes: u64,
    /// When it was last used (written or hit).
    pub used: SystemTime,
}

/// A cache folder with its size bound.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
    max_size: u64,
}

impl Cache {
    /// The cache in `dir` (made on the first write).
    pub fn new(dir: impl Into<PathBuf>, max_size: u64) -> Cache {
        Cache {
            dir: dir.into(),
            max_size,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    /// The state of the file of `key`, at position `file_index` of the run.
    pub fn load(&self, key: &CacheKey, file_index: u32) -> Lookup {
        let path = self.dir.join(key.entry_name());
        let bytes = match FileBytes::load(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Lookup::Miss,
            Err(e) => {
                return Lookup::Damaged(format!(
                    "cache entry {} cannot be read ({e}); recomputing {}",
                    path.display(),
                    key.file.path
                ))
            }
        };
        match decode(bytes, std::slice::from_ref(key)) {
            Ok(mut state) => {
                set_file_index(&mut state, file_index);
                // Least recently used goes first: a hit counts as a use.
                if let Ok(f) = fs::File::options().write(true).open(&path) {
                    let _ = f.set_modified(SystemTime::now());
                }
                Lookup::Hit(Box::new(state))
            }
            Err(why) => Lookup::Damaged(format!(
                "cache entry {} is not usable ({why}); recomputing {} and replacing it",
                path.display(),
                key.file.path
            )),
        }
    }

    /// Stores the state of the file of `key` (at `file_index` in its run;
    /// its malformed samples already numbered), then keeps the cache within
    /// its size.
    pub fn store(
        &self,
        key: &CacheKey,
        state: &PartialState,
        file_index: u32,
    ) -> std::io::Result<()> {
        let bytes = self.encode(key, state, file_index)?;
        self.put(key, &bytes)
    }

    /// The entry of a state (the bytes [`put`](Self::put) writes).
    pub fn encode(
        &self,
        key: &CacheKey,
        state: &PartialState,
        file_index: u32,
    ) -> std::io::Result<EntryBytes> {
        let mut ledger = state.ledger.clone();
        for s in &mut ledger.malformed_samples {
            s.file_index = 0;
        }
        ledger.dates = ledger
            .dates
            .get(file_index as usize)
            .cloned()
            .into_iter()
            .filter(|d| *d != Default::default())
            .collect();
        checked_frame(vec![key.clone()], state, &ledger)
    }

    /// The set entry of a run's merged `state` over files whose keys are
    /// `keys`, in the run's order (every file of the run, samples numbered).
    pub fn encode_set(
        &self,
        keys: &[CacheKey],
        state: &PartialState,
    ) -> std::io::Result<EntryBytes> {
        checked_frame(keys.to_vec(), state, &state.ledger)
    }

    /// Writes a set entry made by [`encode_set`](Self::encode_set), removes
    /// the set entries whose files it covers too, then keeps the cache within
    /// its size.
    pub fn put_set(&self, keys: &[CacheKey], bytes: &[u8]) -> std::io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let name = set_name(keys);
        let target = self.dir.join(&name);
        let mut temp = TempFile::beside(&target)?;
        temp.file().write_all(bytes)?;
        temp.persist_unsynced(&target)?;
        let members: std::collections::HashSet<String> =
            keys.iter().map(CacheKey::entry_name).collect();
        for (path, header) in self.sets()? {
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy() != name)
                && header
                    .keys
                    .iter()
                    .all(|k| members.contains(&k.entry_name()))
            {
                if let Err(e) = fs::remove_file(&path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        return Err(e);
                    }
                }
            }
        }
        self.enforce_size(None)?;
        Ok(())
    }

    /// The set entries with their headers (unreadable ones left out).
    fn sets(&self) -> std::io::Result<Vec<(PathBuf, EntryHeader)>> {
        let listed = match fs::read_dir(&self.dir) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(listed
            .filter_map(|e| e.ok())
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                !name.starts_with('.') && name.ends_with(SET_SUFFIX)
            })
            .filter_map(|e| {
                let path = e.path();
                read_header(&path).ok().map(|h| (path, h))
            })
            .collect())
    }

    /// The set entry covering most of the run's files (`keys`: per file of
    /// the run, its key, `None` when it is not cached), chosen by the keys
    /// its header lists: a set is usable when it has at least two files, all
    /// among the run's, in the same relative order. Its payload is read and
    /// checked when it is decoded ([`SetHit::decode`]).
    pub fn load_set(&self, keys: &[Option<CacheKey>]) -> SetLookup {
        let index: std::collections::HashMap<String, (u32, &CacheKey)> = keys
            .iter()
            .enumerate()
            .filter_map(|(i, k)| k.as_ref().map(|k| (k.entry_name(), (i as u32, k))))
            .collect();
        let Ok(sets) = self.sets() else {
            return SetLookup::Miss;
        };
        let best = sets
            .into_iter()
            .filter_map(|(path, header)| {
                let mut at = Vec::with_capacity(header.keys.len());
                for k in &header.keys {
                    let (i, run_key) = index.get(&k.entry_name())?;
                    if *run_key != k || at.last().is_some_and(|l| l >= i) {
                        return None;
                    }
                    at.push(*i);
                }
                (at.len() >= 2).then_some((path, header, at))
            })
            .max_by(|a, b| a.2.len().cmp(&b.2.len()).then(b.0.cmp(&a.0)));
        let Some((path, header, at)) = best else {
            return SetLookup::Miss;
        };
        // Least recently used goes first: a hit counts as a use.
        if let Ok(f) = fs::File::options().write(true).open(&path) {
            let _ = f.set_modified(SystemTime::now());
        }
        SetLookup::Hit(SetHit {
            path,
            keys: header.keys,
            at,
        })
    }

    /// Writes an entry made by [`encode`](Self::encode) under `key`
    /// (atomically: a temporary file, renamed; not synced), then keeps the cache
    /// within its size.
    pub fn put(&self, key: &CacheKey, bytes: &[u8]) -> std::io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let target = self.dir.join(key.entry_name());
        let mut temp = TempFile::beside(&target)?;
        temp.file().write_all(bytes)?;
        // Not synced: an entry lost or torn in a crash only costs the
        // file's recomputation (its checksum refuses a torn one).
        temp.persist_unsynced(&target)?;
        self.enforce_size(None)?;
        Ok(())
    }

    /// The entries, least recently used first.
    pub fn entries(&self) -> std::io::Result<Vec<EntryInfo>> {
        self.list(true)
    }

    /// The entries, least recently used first; their headers read when
    /// `headers` (else left `Err`).
    fn list(&self, headers: bool) -> std::io::Result<Vec<EntryInfo>> {
        let listed = match fs::read_dir(&self.dir) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in listed.filter_map(|e| e.ok()) {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || !name.ends_with(ENTRY_SUFFIX) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let path = entry.path();
            out.push(EntryInfo {
                header: if headers {
                    read_header(&path)
                } else {
                    Err(String::new())
                },
                entry: path,
                bytes: meta.len(),
                used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        out.sort_by(|a, b| a.used.cmp(&b.used).then(a.entry.cmp(&b.entry)));
        Ok(out)
    }

    /// Removes the least recently used entries until the cache holds at most
    /// `max` bytes (default: its bound); returns how many were removed.
    pub fn enforce_size(&self, max: Option<u64>) -> std::io::Result<usize> {
        let max = max.unwrap_or(self.max_size);
        let entries = self.list(false)?;
        let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
        let mut removed = 0;
        for e in entries {
            if total <= max {
                break;
            }
            match fs::remove_file(&e.entry) {
                Ok(()) => removed += 1,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
            total = total.saturating_sub(e.bytes);
        }
        Ok(removed)
    }

    /// Removes every entry (and temporary files left by a killed writer);
    /// returns how many entries were removed.
    pub fn clear(&self) -> std::io::Result<usize> {
        let listed = match fs::read_dir(&self.dir) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        for entry in listed.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = name.ends_with(ENTRY_SUFFIX)
                || (name.starts_with('.') && name.contains(&format!("{ENTRY_SUFFIX}.rfm-")));
            if ours && entry.file_type().is_ok_and(|t| t.is_file()) {
                fs::remove_file(entry.path())?;
                removed += usize::from(name.ends_with(ENTRY_SUFFIX));
            }
        }
        Ok(removed)
    }
}

/// Whether the file an entry was made from is still the same (same path,
/// size, time, inode and fingerprint).
pub fn still_current(key: &CacheKey) -> bool {
    let path = Path::new(&key.file.path);
    let Ok(reader) = InputReader::open(path) else {
        return false;
    };
    let Ok(meta) = reader.metadata() else {
        return false;
    };
    if meta.len() != key.file.size
        || mtime_ns(&meta) != key.file.mtime_ns
        || meta.ino() != key.file.ino
        || meta.dev() != key.file.dev
    {
        return false;
    }
    let input = InputFile {
        path: path.to_path_buf(),
        layout: crate::input::FileLayout {
            data_start: key.data_start,
            len: key.file.size,
            header: Vec::new(),
            columns: key.columns.clone(),
            sheets: Vec::new(),
        },
        format: Default::default(),
        etag: None,
        public_only: false,
    };
    let parse = ParseOptions::default();
    CacheKey::of(&input, &reader, None, &parse)
        .is_ok_and(|now| now.file.fingerprint == key.file.fingerprint)
}

/// An entry's bytes, made in one buffer: the payload is encoded after room
/// for the widest header its keys can have, and the header then written
/// just before it, so the payload (megabytes for a set) is never copied.
pub struct EntryBytes {
    buf: Vec<u8>,
    start: usize,
}

impl std::ops::Deref for EntryBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// An entry's bytes: magic, version, the header of `keys` and the payload
/// of `state` with `ledger` (see [`PartialState::encode_entry`]).
fn frame(
    keys: Vec<CacheKey>,
    state: &PartialState,
    ledger: &crate::ledger::LineLedger,
) -> EntryBytes {
    let mut header = EntryHeader {
        keys,
        payload_len: u64::MAX,
        payload_xxh3: checksum(&[]),
    };
    // The header at its widest: the length with the most digits (the
    // checksum's hex is always as long).
    let widest = serde_json::to_vec(&header)
        .expect("a header serialises")
        .len();
    let room = MAGIC.len() + 8 + widest;
    let mut buf = Vec::with_capacity(room + 4096);
    buf.resize(room, 0);
    state.encode_entry(ledger, &mut buf);
    let payload = &buf[room..];
    header.payload_len = payload.len() as u64;
    header.payload_xxh3 = checksum(payload);
    let header = serde_json::to_vec(&header).expect("a header serialises");
    let mut prefix = Vec::with_capacity(MAGIC.len() + 8 + header.len());
    prefix.extend_from_slice(MAGIC);
    prefix.extend_from_slice(&STATE_VERSION.to_le_bytes());
    prefix.extend_from_slice(&(header.len() as u32).to_le_bytes());
    prefix.extend_from_slice(&header);
    // Never wider than the room (the same keys, a length of fewer digits).
    let start = room
        .checked_sub(prefix.len())
        .expect("the header fits the room made for its widest form");
    buf[start..room].copy_from_slice(&prefix);
    EntryBytes { buf, start }
}

/// Moves a set's file indexes (its member positions) to the run's: member
/// `j` is file `at[j]` of the run (`at` increasing, so the samples kept, the
/// first in input order, stay the first).
fn renumber_files(state: &mut PartialState, at: &[u32]) {
    for s in &mut state.ledger.malformed_samples {
        if let Some(i) = at.get(s.file_index as usize) {
            s.file_index = *i;
        }
    }
    let forms = std::mem::take(&mut state.ledger.dates);
    for (j, f) in forms.into_iter().enumerate() {
        if let Some(i) = at.get(j) {
            *state.ledger.dates_of(*i) = f;
        }
    }
}

/// Sets the file index of a cached state's ledger to the run's.
fn set_file_index(state: &mut PartialState, file_index: u32) {
    for s in &mut state.ledger.malformed_samples {
        s.file_index = file_index;
    }
    if let Some(forms) = state.ledger.dates.pop() {
        state.ledger.dates.clear();
        *state.ledger.dates_of(file_index) = forms;
    }
}

/// Splits an entry into its header and payload, checking magic and version.
fn split(bytes: &[u8]) -> std::result::Result<(EntryHeader, &[u8]), String> {
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return Err("not an rfm state cache entry".into());
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != STATE_VERSION {
        return Err(format!(
            "made with state version {version}, this rfm uses {STATE_VERSION}"
        ));
    }
    let len = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
    if len > MAX_HEADER || bytes.len() < 16 + len as usize {
        return Err("truncated header".into());
    }
    let header: EntryHeader = serde_json::from_slice(&bytes[16..16 + len as usize])
        .map_err(|e| format!("header is not valid: {e}"))?;
    Ok((header, &bytes[16 + len as usize..]))
}

fn read_header(path: &Path) -> std::result::Result<EntryHeader, String> {
    let mut f = fs::File::open(path).map_err(|e| e.to_string())?;
    let mut head = [0u8; 16];
    f.read_exact(&mut head)
        .map_err(|_| "truncated".to_string())?;
    let len = u32::from_le_bytes(head[12..16].try_into().expect("4 bytes")).min(MAX_HEADER);
    let mut bytes = head.to_vec();
    bytes.resize(16 + len as usize, 0);
    f.read_exact(&mut bytes[16..])
        .map_err(|_| "truncated header".to_string())?;
    split(&bytes).map(|(h, _)| h)
}

/// [`frame`], unless a mapped entry the state read from was cut short
/// meanwhile: an entry of zeros in place of lost bytes is never written.
fn checked_frame(
    keys: Vec<CacheKey>,
    state: &PartialState,
    ledger: &crate::ledger::LineLedger,
) -> std::io::Result<EntryBytes> {
    let framed = frame(keys, state, ledger);
    match state.cut_entry() {
        Some(cut) => Err(std::io::Error::other(format!(
            "cache entry {} was cut short while it was read",
            cut.display()
        ))),
        None => Ok(framed),
    }
}

/// The checksum of a payload: XXH3-128 in hex.
fn checksum(payload: &[u8]) -> String {
    format!("{:032x}", twox_hash::XxHash3_128::oneshot(payload))
}

/// The state an entry holds, when it is whole and of `keys`.
fn decode(bytes: FileBytes, keys: &[CacheKey]) -> std::result::Result<PartialState, String> {
    let at = verify(&bytes, keys)?;
    let state = decode_payload(bytes, at)?;
    match state.cut_entry() {
        Some(_) => Err("cut short while it was read".into()),
        None => Ok(state),
    }
}

/// Checks that an entry is whole and of `keys`; returns where its payload
/// starts.
fn verify(bytes: &[u8], keys: &[CacheKey]) -> std::result::Result<usize, String> {
    let (header, payload) = split(bytes)?;
    if header.keys != keys {
        return Err("made for another file or other options".into());
    }
    if payload.len() as u64 != header.payload_len {
        return Err(format!(
            "payload of {} bytes, the header says {}",
            payload.len(),
            header.payload_len
        ));
    }
    if checksum(payload) != header.payload_xxh3 {
        return Err("checksum mismatch".into());
    }
    Ok(bytes.len() - payload.len())
}

/// The state of the payload at `at` in an entry's `bytes` (checked by
/// [`verify`]), decoded into the state's columns; the state keeps `bytes`,
/// where its customers' further invoices and countries stay until a merge
/// touches them.
fn decode_payload(bytes: FileBytes, at: usize) -> std::result::Result<PartialState, String> {
    PartialState::decode_entry_at(bytes, at).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{open_inputs, run_local, RunOptions};
    use crate::error::Error;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, text).unwrap();
        p
    }

    /// The state of `csv` (as `a.csv` in `dir`), computed and stored in a
    /// cache in `dir/cache`: the cache, the key, the state and its entry.
    fn stored(dir: &Path, csv: &str) -> (Cache, CacheKey, PartialState, PathBuf) {
        let path = write(dir, "a.csv", csv);
        let opts = RunOptions::default();
        let files = open_inputs(path.to_str().unwrap(), &opts.parse).unwrap();
        let state = run_local(&files, &opts).unwrap();
        let cache = Cache::new(dir.join("cache"), DEFAULT_MAX_SIZE);
        let reader = InputReader::open(&path).unwrap();
        let key = CacheKey::of(&files[0], &reader, None, &opts.parse).unwrap();
        cache.store(&key, &state, 0).unwrap();
        let entry = dir.join("cache").join(key.entry_name());
        (cache, key, state, entry)
    }

    const CSV: &str =
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
        536365,A,x,6,12/1/2010 8:26,2.55,17850,United Kingdom\n\
        536366,A,x,oops,12/1/2010 8:28,1.85,17850,United Kingdom\n\
        536367,A,x,3,13/1/2010 8:34,1.00,13047,France\n";

    #[test]
    fn a_state_round_trips_with_its_ledger_at_another_position() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write(tmp.path(), "a.csv", CSV);
        let opts = RunOptions::default();
        let files = open_inputs(path.to_str().unwrap(), &opts.parse).unwrap();
        let mut state = run_local(&files, &opts).unwrap();
        crate::engine::number_sample_lines(&mut state, &files).unwrap();
        assert_eq!(state.ledger.malformed, 2);
        let cache = Cache::new(tmp.path().join("cache"), DEFAULT_MAX_SIZE);
        let reader = InputReader::open(&path).unwrap();
        let key = CacheKey::of(&files[0], &reader, None, &opts.parse).unwrap();
        assert!(matches!(cache.load(&key, 0), Lookup::Miss));
        cache.store(&key, &state, 0).unwrap();
        let Lookup::Hit(back) = cache.load(&key, 3) else {
            panic!("a hit")
        };
        assert_eq!(back.customer_count(), state.customer_count());
        let mut want = state.ledger.clone();
        for s in &mut want.malformed_samples {
            s.file_index = 3;
        }
        let forms = want.dates[0].clone();
        want.dates = vec![Default::default(); 3];
        want.dates.push(forms);
        assert_eq!(back.ledger, want);
        assert_eq!(back.ledger.malformed_samples[0].line, Some(3));
        assert!(still_current(&key));

        // Another option is another key; a damaged entry is refused.
        let mut other = key.clone();
        other.parse.decimal_comma = true;
        assert!(matches!(cache.load(&other, 0), Lookup::Miss));
        let entry = tmp.path().join("cache").join(key.entry_name());
        let mut bytes = fs::read(&entry).unwrap();
        let n = bytes.len();
        bytes[n - 10] ^= 0xff;
        fs::write(&entry, &bytes).unwrap();
        match cache.load(&key, 0) {
            Lookup::Damaged(w) => assert!(w.contains("checksum"), "{w}"),
            _ => panic!("a damaged entry is not trusted"),
        }
        fs::write(&entry, &bytes[..n / 2]).unwrap();
        assert!(matches!(cache.load(&key, 0), Lookup::Damaged(_)));
        assert_eq!(cache.entries().unwrap().len(), 1);
        assert_eq!(cache.clear().unwrap(), 1);
        assert!(cache.entries().unwrap().is_empty());

        // A same-size change at the end changes the key.
        fs::write(&path, CSV.replace("1.00", "9.00")).unwrap();
        assert!(!still_current(&key));
    }

    #[test]
    fn a_set_entry_serves_a_run_with_one_file_more_and_renumbers_its_ledger() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("in");
        fs::create_dir(&dir).unwrap();
        let opts = RunOptions::default();
        for name in ["b.csv", "c.csv"] {
            write(&dir, name, CSV);
        }
        let files = open_inputs(dir.to_str().unwrap(), &opts.parse).unwrap();
        let mut state = run_local(&files, &opts).unwrap();
        crate::engine::number_sample_lines(&mut state, &files).unwrap();
        assert_eq!(state.ledger.malformed_samples.len(), 4);
        let key = |f: &InputFile| {
            let reader = InputReader::open(&f.path).unwrap();
            CacheKey::of(f, &reader, None, &opts.parse).unwrap()
        };
        let keys: Vec<CacheKey> = files.iter().map(key).collect();
        let cache = Cache::new(tmp.path().join("cache"), DEFAULT_MAX_SIZE);
        let bytes = cache.encode_set(&keys, &state).unwrap();
        cache.put_set(&keys, &bytes).unwrap();

        // A new file first in the run: the set's files are the run's 1 and 2.
        write(&dir, "a.csv", CSV);
        let grown = open_inputs(dir.to_str().unwrap(), &opts.parse).unwrap();
        let run_keys: Vec<Option<CacheKey>> = grown.iter().map(|f| Some(key(f))).collect();
        let SetLookup::Hit(hit) = cache.load_set(&run_keys) else {
            panic!("the set serves")
        };
        assert_eq!(hit.at, [1, 2]);
        let back = hit.decode().unwrap();
        assert_eq!(back.customer_count(), state.customer_count());
        let indexes: Vec<u32> = back
            .ledger
            .malformed_samples
            .iter()
            .map(|s| s.file_index)
            .collect();
        assert_eq!(indexes, [1, 1, 2, 2]);
        assert_eq!(back.ledger.dates.len(), 3);
        assert_eq!(back.ledger.dates[0], Default::default());
        assert_eq!(back.ledger.dates[1..], state.ledger.dates[..]);
        // With the new file's own state merged: what a run over the three gives.
        let mut merged = back;
        merged.merge(run_local(&grown[..1], &opts).unwrap());
        let mut whole = run_local(&grown, &opts).unwrap();
        crate::engine::number_sample_lines(&mut whole, &grown).unwrap();
        crate::engine::number_sample_lines(&mut merged, &grown).unwrap();
        assert_eq!(merged.ledger, whole.ledger);

        // Another order, a changed member, a single member: not usable.
        let reordered = vec![run_keys[2].clone(), run_keys[1].clone()];
        assert!(matches!(cache.load_set(&reordered), SetLookup::Miss));
        let mut changed = run_keys.clone();
        changed[1].as_mut().unwrap().file.mtime_ns += 1;
        assert!(matches!(cache.load_set(&changed), SetLookup::Miss));
        assert!(matches!(
            cache.load_set(&[run_keys[1].clone()]),
            SetLookup::Miss
        ));
        // A damaged set is refused with a warning naming it.
        let set = fs::read_dir(tmp.path().join("cache"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(SET_SUFFIX))
            .unwrap();
        let mut bytes = fs::read(&set).unwrap();
        let n = bytes.len();
        bytes[n - 10] ^= 0xff;
        fs::write(&set, &bytes).unwrap();
        let SetLookup::Hit(hit) = cache.load_set(&run_keys) else {
            panic!("chosen by its header")
        };
        let w = hit.decode().expect_err("a damaged set is not trusted");
        assert!(
            w.contains("checksum mismatch") && w.contains(".set.state"),
            "{w}"
        );
        fs::write(&set, &bytes[..n - 1]).unwrap();
        let SetLookup::Hit(hit) = cache.load_set(&run_keys) else {
            panic!("chosen by its header")
        };
        let w = hit.decode().expect_err("a truncated set is not trusted");
        assert!(w.contains("payload of"), "{w}");
        // A payload that passes its checksum but does not decode (only a
        // faulty or forged writer makes one): found, refused at decoding.
        let garbage = b"not a state".to_vec();
        let header = serde_json::to_vec(&EntryHeader {
            keys: keys.clone(),
            payload_len: garbage.len() as u64,
            payload_xxh3: checksum(&garbage),
        })
        .unwrap();
        let mut forged = MAGIC.to_vec();
        forged.extend_from_slice(&STATE_VERSION.to_le_bytes());
        forged.extend_from_slice(&(header.len() as u32).to_le_bytes());
        forged.extend_from_slice(&header);
        forged.extend_from_slice(&garbage);
        fs::write(&set, &forged).unwrap();
        let SetLookup::Hit(hit) = cache.load_set(&run_keys) else {
            panic!("the checksum passes")
        };
        let err = hit.decode().expect_err("a payload that does not decode");
        assert!(
            err.contains("cannot be decoded") && err.contains(".set.state"),
            "{err}"
        );
        // A set of all three replaces the set of two.
        let keys3: Vec<CacheKey> = run_keys.iter().flatten().cloned().collect();
        let bytes = cache.encode_set(&keys3, &whole).unwrap();
        cache.put_set(&keys3, &bytes).unwrap();
        assert_eq!(cache.sets().unwrap().len(), 1);
    }

    #[test]
    fn an_entry_cut_short_while_its_state_is_in_use_fails_the_scoring_not_the_process() {
        // 3,000 customers of two invoices in two countries each: their
        // further invoices and countries stay in the entry's mapped bytes.
        let tmp = tempfile::tempdir().unwrap();
        let mut csv = String::from(
            "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n",
        );
        for c in 0..3000 {
            csv += &format!(
                "{},A,x,1,12/1/2010 8:26,2.50,{},France\n",
                600000 + 2 * c,
                10000 + c
            );
            csv += &format!(
                "{},A,x,2,12/2/2010 9:00,1.25,{},Spain\n",
                600001 + 2 * c,
                10000 + c
            );
        }
        let (cache, key, state, entry) = stored(tmp.path(), &csv);
        assert!(fs::metadata(&entry).unwrap().len() > 3 * 4096);
        let load = || match cache.load(&key, 0) {
            Lookup::Hit(state) => *state,
            _ => panic!("a whole entry serves"),
        };
        // Whole, the state scores as the one computed.
        let want = crate::score::finish(state, None).unwrap();
        let got = crate::score::finish(load(), None).unwrap();
        assert_eq!(got.customers, want.customers);
        // Cut in place by another program after it was checked and decoded:
        // the rows read since are lost, and scoring says so.
        let decoded = load();
        assert_eq!(decoded.cut_entry(), None);
        fs::File::options()
            .write(true)
            .open(&entry)
            .unwrap()
            .set_len(4096)
            .unwrap();
        let err = crate::score::finish(decoded, None).unwrap_err();
        assert!(matches!(err, Error::CacheEntryCut { .. }), "{err}");
        assert!(err.to_string().contains("cut short"), "{err}");
        // The cut entry is refused from then on.
        assert!(matches!(cache.load(&key, 0), Lookup::Damaged(_)));
    }

    #[test]
    fn entries_truncated_damaged_foreign_of_another_version_or_forged_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (cache, key, state, entry) = stored(tmp.path(), CSV);
        let good = fs::read(&entry).unwrap();
        let refused = |bytes: &[u8]| -> String {
            fs::write(&entry, bytes).unwrap();
            match cache.load(&key, 0) {
                Lookup::Damaged(w) => w,
                Lookup::Hit(_) => panic!("a damaged entry is not trusted"),
                Lookup::Miss => panic!("the entry is there"),
            }
        };
        assert!(refused(&good[..good.len() - 1]).contains("payload of"));
        let mut flipped = good.clone();
        let n = flipped.len();
        flipped[n - 20] ^= 0x01;
        assert!(refused(&flipped).contains("checksum mismatch"));
        let mut older = good.clone();
        older[8..12].copy_from_slice(&(STATE_VERSION - 1).to_le_bytes());
        assert!(refused(&older).contains("state version"));
        assert!(refused(b"RFMSTATE").contains("not an rfm state cache entry"));
        // What a crash may leave of an entry that was never synced (entries
        // are not): its name on no bytes, on zeros of its length, or on its
        // header before zeros where the payload's bytes never reached the disk.
        refused(b"");
        assert!(refused(&vec![0; good.len()]).contains("not an rfm state cache entry"));
        let payload_at = good.len() - split(&good).unwrap().1.len();
        let mut unwritten = good.clone();
        unwritten[payload_at..].fill(0);
        assert!(refused(&unwritten).contains("checksum mismatch"));
        // The entry of another file under this file's name.
        let mut other = key.clone();
        other.file.ino += 1;
        let foreign = cache.encode(&other, &state, 0).unwrap();
        assert!(refused(&foreign).contains("another file"));
        // A payload whose customer count is beyond it, its checksum made to
        // match: the checks pass, the decoding refuses it.
        let (header, payload) = split(&good).unwrap();
        let mut payload = payload.to_vec();
        let ledger = u64::from_le_bytes(payload[..8].try_into().unwrap()) as usize;
        let countries = 8 + ledger + 1;
        let c = u64::from_le_bytes(payload[countries..countries + 8].try_into().unwrap()) as usize;
        let names = u64::from_le_bytes(
            payload[countries + 8 * c..countries + 8 * c + 8]
                .try_into()
                .unwrap(),
        ) as usize;
        let customers = countries + 8 + 8 * c + names;
        payload[customers + 8..customers + 16].copy_from_slice(&u64::MAX.to_le_bytes());
        let header = serde_json::to_vec(&EntryHeader {
            payload_xxh3: checksum(&payload),
            ..header
        })
        .unwrap();
        let mut forged = good[..12].to_vec();
        forged.extend_from_slice(&(header.len() as u32).to_le_bytes());
        forged.extend_from_slice(&header);
        forged.extend_from_slice(&payload);
        let w = refused(&forged);
        assert!(w.contains("out of range"), "{w}");
        // Rewritten whole, the entry serves again.
        fs::write(&entry, &good).unwrap();
        assert!(matches!(cache.load(&key, 0), Lookup::Hit(_)));
    }

    #[test]
    fn the_size_bound_drops_the_least_recently_used() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = RunOptions::default();
        let cache = Cache::new(tmp.path().join("cache"), u64::MAX);
        let mut keys = Vec::new();
        for name in ["a.csv", "b.csv", "c.csv"] {
            let path = write(tmp.path(), name, CSV);
            let files = open_inputs(path.to_str().unwrap(), &opts.parse).unwrap();
            let state = run_local(&files, &opts).unwrap();
            let key = CacheKey::of(
                &files[0],
                &InputReader::open(&path).unwrap(),
                None,
                &opts.parse,
            )
            .unwrap();
            cache.store(&key, &state, 0).unwrap();
            keys.push(key);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // A hit on the oldest makes b the least recently used.
        assert!(matches!(cache.load(&keys[0], 0), Lookup::Hit(_)));
        let one = cache.entries().unwrap()[0].bytes;
        assert_eq!(cache.enforce_size(Some(2 * one)).unwrap(), 1);
        assert!(matches!(cache.load(&keys[1], 0), Lookup::Miss));
        assert!(matches!(cache.load(&keys[0], 0), Lookup::Hit(_)));
        assert!(matches!(cache.load(&keys[2], 0), Lookup::Hit(_)));
    }
}
