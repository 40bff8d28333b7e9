//! Input files: resolving a file, directory or glob; reading each file's header
//! and finding the columns the engine uses (spec §1).
//!
//! A glob's `**` descends into real directories only: a symbolic link to a
//! directory is not followed there (a loop of links would never end), while
//! links named by the other parts of the pattern are followed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;
use crate::data_root::DataRoot;
use crate::date::DateFormat;
use crate::error::{Error, Result};
use crate::scan::{RecordSplitter, DEFAULT_MAX_RECORD_SIZE};

/// How to read records and field values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseOptions {
    pub delimiter: u8,
    pub decimal_comma: bool,
    pub date_format: Option<DateFormat>,
    /// Longest record in bytes; a longer one is one malformed line.
    pub max_record_size: u64,
    /// `--until`: purchase lines dated after this day are left out (counted
    /// as `after_until`).
    pub until: Option<crate::date::Date>,
    /// `--format`: how every input file is read (default: from its name,
    /// [`crate::format::InputFormat::detect`]).
    pub format: Option<crate::format::InputFormat>,
    /// `--sheet`: the sheets of an Excel workbook to read (empty: every sheet).
    pub sheets: Vec<String>,
    /// `--max-decompressed-size`: most bytes an `.xlsx` workbook's parts may
    /// expand to, together ([`crate::excel::limits`]).
    pub max_decompressed_size: u64,
    /// `--max-compression-ratio`: most times a large `.xlsx` part may expand.
    pub max_compression_ratio: u64,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            delimiter: b',',
            decimal_comma: false,
            date_format: None,
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
            until: None,
            format: None,
            sheets: Vec::new(),
            max_decompressed_size: crate::excel::limits::DEFAULT_MAX_DECOMPRESSED_SIZE,
            max_compression_ratio: crate::excel::limits::DEFAULT_MAX_COMPRESSION_RATIO,
        }
    }
}

impl ParseOptions {
    /// Reads a delimiter option: one ASCII character, or `tab` / `\t`.
    pub fn parse_delimiter(text: &str) -> Result<u8> {
        match text {
            "tab" | "\\t" | "\t" => Ok(b'\t'),
            t if t.len() == 1 && t.is_ascii() && !matches!(t, "\"" | "\n" | "\r") => {
                Ok(t.as_bytes()[0])
            }
            _ => Err(Error::invalid_option(
                "--delimiter",
                format!("{text:?} is not one ASCII character (use e.g. ',', ';' or 'tab')"),
            )),
        }
    }
}

/// Which field holds each role, for one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnMap {
    pub invoice: usize,
    pub quantity: usize,
    pub date: usize,
    pub price: usize,
    pub customer: usize,
    pub country: Option<usize>,
    /// Number of fields every record must have.
    pub field_count: usize,
    /// Header names used for each role, for the run report.
    pub names: Vec<(String, String)>,
}

const ROLES: [(&str, &[&str], bool, &str); 6] = [
    (
        "invoice",
        &["invoiceno", "invoice"],
        true,
        "InvoiceNo, Invoice",
    ),
    ("quantity", &["quantity"], true, "Quantity"),
    ("date", &["invoicedate"], true, "InvoiceDate"),
    ("price", &["unitprice", "price"], true, "UnitPrice, Price"),
    ("customer", &["customerid"], true, "CustomerID, Customer ID"),
    ("country", &["country"], false, "Country"),
];

fn normalise_header(name: &str) -> String {
    name.chars()
        .filter(|c| *c != ' ' && *c != '_' && *c != '\u{feff}')
        .flat_map(char::to_lowercase)
        .collect()
}

impl ColumnMap {
    /// Finds the roles in a header; the first matching column wins.
    pub fn resolve(path: &Path, header: &[String], delimiter: u8) -> Result<ColumnMap> {
        let mut found: [Option<usize>; 6] = [None; 6];
        for (i, name) in header.iter().enumerate() {
            let key = normalise_header(name);
            for (r, (_, names, _, _)) in ROLES.iter().enumerate() {
                if found[r].is_none() && names.contains(&key.as_str()) {
                    found[r] = Some(i);
                }
            }
        }
        for (r, (role, _, required, accepted)) in ROLES.iter().enumerate() {
            if *required && found[r].is_none() {
                let hint = if header.len() == 1 && delimiter != b';' && header[0].contains(';') {
                    "; the header holds ';' — try --delimiter ';' (and --decimal-comma for European exports)".to_string()
                } else if header.len() == 1 && header[0].contains('\t') {
                    "; the header holds tabs — try --delimiter tab".to_string()
                } else {
                    String::new()
                };
                return Err(Error::MissingColumn {
                    path: path.to_path_buf(),
                    role,
                    accepted,
                    header: shorten(&header.join(&(delimiter as char).to_string()), 300),
                    hint,
                });
            }
        }
        let names = ROLES
            .iter()
            .zip(found.iter())
            .filter_map(|((role, ..), idx)| idx.map(|i| (role.to_string(), header[i].clone())))
            .collect();
        Ok(ColumnMap {
            invoice: found[0].unwrap(),
            quantity: found[1].unwrap(),
            date: found[2].unwrap(),
            price: found[3].unwrap(),
            customer: found[4].unwrap(),
            country: found[5],
            field_count: header.len(),
            names,
        })
    }
}

/// Shortens text for messages, on a character boundary.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max).collect();
        s.push('…');
        s
    }
}

/// The input's files named for a message: `a.csv`, `a.csv and b.csv`, or
/// `a.csv, b.csv and 3 more files`.
pub fn describe_paths<'a>(paths: impl ExactSizeIterator<Item = &'a Path>) -> String {
    let n = paths.len();
    let names: Vec<String> = paths.take(2).map(|p| p.display().to_string()).collect();
    match n {
        0 => "the input".into(),
        1 => names[0].clone(),
        2 => format!("{} and {}", names[0], names[1]),
        _ => format!("{}, {} and {} more files", names[0], names[1], n - 2),
    }
}

/// The files named by an input spec: a file, a directory (its files of every
/// supported format, hidden ones left out, sorted:
/// [`crate::format::InputFormat::taken_from_directory`]) or a glob (every
/// file it matches, sorted).
pub fn resolve_input(spec: &str) -> Result<Vec<PathBuf>> {
    resolve_input_cancellable(spec, &Cancel::default())
}

/// [`resolve_input`] that stops with [`Error::Cancelled`] once `cancel` is set.
pub fn resolve_input_cancellable(spec: &str, cancel: &Cancel) -> Result<Vec<PathBuf>> {
    let path = Path::new(spec);
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|source| Error::Unreadable {
                path: path.to_path_buf(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.file_name()
                        .is_some_and(crate::format::InputFormat::taken_from_directory)
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::NoInput {
                spec: spec.to_string(),
            });
        }
        return Ok(files);
    }
    if has_wildcard(spec) && !path.exists() {
        let files = glob_files(path, None, cancel)?;
        if files.is_empty() {
            return Err(Error::NoInput {
                spec: spec.to_string(),
            });
        }
        return Ok(files);
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(vec![path.to_path_buf()]),
        Ok(_) => Err(Error::Unreadable {
            path: path.to_path_buf(),
            source: std::io::Error::other("not a regular file"),
        }),
        Err(source) => Err(Error::Unreadable {
            path: path.to_path_buf(),
            source,
        }),
    }
}

pub(crate) fn has_wildcard(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// The files matching a glob, sorted. Under a data root, the walk enters
/// only directories under the root, and a match leading out of it refuses
/// the input (see [`DataRoot`]).
pub(crate) fn glob_files(
    pattern: &Path,
    root: Option<&DataRoot>,
    cancel: &Cancel,
) -> Result<Vec<PathBuf>> {
    let spec = pattern.to_string_lossy();
    glob::Pattern::new(&spec)
        .map_err(|e| Error::invalid_option("INPUT", format!("bad glob {spec:?}: {e}")))?;
    let mut base = PathBuf::new();
    let mut parts = Vec::new();
    for component in pattern.components() {
        let text = component.as_os_str().to_string_lossy().into_owned();
        if parts.is_empty() && !has_wildcard(&text) {
            base.push(component);
        } else {
            parts.push(text);
        }
    }
    let mut files = Vec::new();
    glob_walk(&base, &parts, root, cancel, &mut files)?;
    files.sort();
    files.dedup();
    Ok(files)
}

/// The entries of a directory (the current one for an empty path); none when
/// it cannot be listed, as a glob skips what it cannot read.
fn entries(dir: &Path) -> Vec<std::fs::DirEntry> {
    let listed = if dir.as_os_str().is_empty() {
        std::fs::read_dir(".")
    } else {
        std::fs::read_dir(dir)
    };
    listed
        .map(|r| r.filter_map(|e| e.ok()).collect())
        .unwrap_or_default()
}

/// The files under `dir` matching the pattern components `parts`.
fn glob_walk(
    dir: &Path,
    parts: &[String],
    root: Option<&DataRoot>,
    cancel: &Cancel,
    out: &mut Vec<PathBuf>,
) -> Result<()> {
    cancel.check()?;
    let Some((first, rest)) = parts.split_first() else {
        let matched = match root {
            None => dir.is_file(),
            // Only a name that exists (as seen from a directory under the
            // root) is a match, and it must then resolve under the root.
            Some(root) => std::fs::symlink_metadata(dir).is_ok() && root.candidate(dir)?,
        };
        if matched {
            out.push(dir.to_path_buf());
        }
        return Ok(());
    };
    if root.is_some_and(|root| !root.may_enter(dir)) {
        return Ok(());
    }
    if first == "**" {
        glob_walk(dir, rest, root, cancel, out)?;
        for entry in entries(dir) {
            // `file_type` does not follow links: `**` stays in real directories.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                glob_walk(&dir.join(entry.file_name()), parts, root, cancel, out)?;
            }
        }
    } else if !has_wildcard(first) {
        glob_walk(&dir.join(first), rest, root, cancel, out)?;
    } else {
        let pattern = glob::Pattern::new(first)
            .map_err(|e| Error::invalid_option("INPUT", format!("bad glob part {first:?}: {e}")))?;
        for entry in entries(dir) {
            let name = entry.file_name();
            if pattern.matches(&name.to_string_lossy()) {
                glob_walk(&dir.join(name), rest, root, cancel, out)?;
            }
        }
    }
    Ok(())
}

/// What a file's first bytes say: where its header and its data start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLayout {
    /// Offset of the first data record (after the BOM and the header).
    pub data_start: u64,
    /// File size in bytes.
    pub len: u64,
    pub header: Vec<String>,
    pub columns: ColumnMap,
    /// The sheets of a workbook input ([`crate::excel`]); empty for text inputs.
    #[serde(default)]
    pub sheets: Vec<crate::excel::SheetLayout>,
}

/// How many first bytes of a file [`read_layout`] needs: a BOM and a header
/// within the record size limit.
pub fn header_prefix_len(opts: &ParseOptions) -> u64 {
    opts.max_record_size + 5
}

/// Reads the header from a file's first bytes (`bytes`, at least
/// [`header_prefix_len`] of them unless the file is shorter) and resolves its
/// columns. `len` is the file's size.
pub fn read_layout(path: &Path, bytes: &[u8], len: u64, opts: &ParseOptions) -> Result<FileLayout> {
    if bytes.is_empty() {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let bom = if bytes.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let mut splitter = RecordSplitter::new(opts.delimiter, opts.max_record_size);
    let mut pos = bom;
    let mut scratch = Vec::new();
    let record = splitter
        .next_record(bytes, 0, &mut pos, bytes.len())
        .ok_or_else(|| Error::EmptyFile {
            path: path.to_path_buf(),
        })?;
    let cut_off = pos == bytes.len() && (bytes.len() as u64) < len && bytes.last() != Some(&b'\n');
    if record.over_long || cut_off {
        return Err(Error::HeaderTooLong {
            path: path.to_path_buf(),
            limit: opts.max_record_size,
        });
    }
    let header: Vec<String> = record
        .fields()
        .map(|f| {
            let v = f.value(record.bytes, &mut scratch);
            String::from_utf8_lossy(v).trim().to_string()
        })
        .collect();
    let columns = ColumnMap::resolve(path, &header, opts.delimiter)?;
    Ok(FileLayout {
        data_start: pos as u64,
        len,
        header,
        columns,
        sheets: Vec::new(),
    })
}
