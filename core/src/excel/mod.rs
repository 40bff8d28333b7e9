//! Excel workbooks (`.xlsx`, `.xls`) as input, read with calamine.
//!
//! Every sheet is read (or those `--sheet` names); each sheet's first row is
//! its header, with the CSV header names ([`ColumnMap::resolve`]). Each data
//! row becomes the CSV record its cells' texts make ([`cell`], [`sheet`]),
//! and those records go through the CSV classifier ([`parse_range_into`]), so
//! validation and the ledger are the CSV ones.
//!
//! **Tasks.** A sheet is split into row ranges. A task keeps the CSV task's
//! message `(file_index, start, end)`: `start` and `end` are
//! `sheet << 32 | row`, with `sheet` the sheet's 0-based position in the
//! workbook and `row` a 0-based sheet row, `end` exclusive and of the same
//! sheet. Row ranges are planned from the sheet's declared dimension (or its
//! last row); the task that reaches the planned end also owns every row after
//! it. For progress, a task's "bytes" (`end - start`) are its rows.
//!
//! A worker reads the whole sheet (calamine parses a sheet at once) and keeps
//! the last two sheets it read, so the tasks of one sheet parse it once per
//! worker. A malformed row's sample gives its sheet row number as
//! the line (Excel's numbering: the header is row 1 of a sheet that starts
//! there) and names the sheet.

pub mod cell;
pub mod limits;
pub mod sheet;
pub mod write;

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use calamine::{Data, Reader, Xls, Xlsx};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;
use crate::engine::{Chunk, InputFile, InputReader};
use crate::error::{Error, Result};
use crate::input::{ColumnMap, FileLayout, ParseOptions};
use crate::parse::{parse_range_into, RangeSpec};
use crate::partial::PartialState;
use cell::CellText;
use sheet::{SheetKey, SheetText};

/// A sheet of a workbook input, as planned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SheetLayout {
    /// The sheet's 0-based position in the workbook.
    pub index: u32,
    pub name: String,
    /// The 0-based row of its header.
    pub header_row: u32,
    /// One past its last planned row (0-based): the task reaching it reads on
    /// to the sheet's real end.
    pub end_row: u32,
}

/// A task bound: `sheet << 32 | row`.
pub fn task_bound(sheet: u32, row: u32) -> u64 {
    ((sheet as u64) << 32) | row as u64
}

/// The end of an input in the units of its task bounds, for the check that
/// a task read no more lines than it could reach: a text file's size, or for
/// a workbook the bound just past its last sheet's rows.
pub fn task_reach(input: &InputFile) -> u64 {
    match input.layout.sheets.iter().map(|s| s.index).max() {
        Some(last) => task_bound(last + 1, 0),
        None => input.layout.len,
    }
}

/// The (sheet, row) of a task bound.
pub fn split_bound(bound: u64) -> (u32, u32) {
    ((bound >> 32) as u32, bound as u32)
}

/// A sheet named in messages: `book.xlsx (sheet "2010")`.
pub fn sheet_path(path: &Path, sheet: &str) -> PathBuf {
    PathBuf::from(format!("{} (sheet {sheet:?})", path.display()))
}

fn no_header(path: &Path, sheet: &str) -> Error {
    Error::EmptyFile {
        path: sheet_path(path, sheet),
    }
}

fn resolve(path: &Path, sheet: &str, header: &[String]) -> Result<ColumnMap> {
    ColumnMap::resolve(&sheet_path(path, sheet), header, b',')
}

/// An open workbook.
enum Book {
    Xlsx(Xlsx<BufReader<File>>),
    Xls(Xls<BufReader<File>>),
}

fn workbook_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Workbook {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

impl Book {
    /// Opens the workbook in `file` by its first bytes: a zip is xlsx (its
    /// sizes checked against the limits first, [`limits`]), an OLE compound
    /// file is xls.
    fn open(file: &File, path: &Path, parse: &ParseOptions) -> Result<Book> {
        use std::os::unix::fs::FileExt;
        let mut magic = [0u8; 4];
        let n = file
            .read_at(&mut magic, 0)
            .map_err(|source| Error::Unreadable {
                path: path.to_path_buf(),
                source,
            })?;
        let clone = file.try_clone().map_err(|source| Error::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        if magic[..n] == [b'P', b'K', 3, 4] {
            let check = clone.try_clone().map_err(|source| Error::Unreadable {
                path: path.to_path_buf(),
                source,
            })?;
            limits::check_xlsx(check, path, parse)?;
        }
        let reader = BufReader::with_capacity(1 << 16, clone);
        match &magic[..n] {
            [b'P', b'K', 3, 4] => Xlsx::new(reader)
                .map(Book::Xlsx)
                .map_err(|e| workbook_error(path, e)),
            [0xD0, 0xCF, 0x11, 0xE0] => Xls::new(reader)
                .map(Book::Xls)
                .map_err(|e| workbook_error(path, e)),
            _ => Err(workbook_error(
                path,
                "its first bytes are neither a zip (xlsx) nor an OLE file (xls)",
            )),
        }
    }

    fn sheet_names(&self) -> Vec<String> {
        match self {
            Book::Xlsx(b) => b.sheet_names(),
            Book::Xls(b) => b.sheet_names(),
        }
    }

    fn is_1904(&self) -> bool {
        match self {
            Book::Xlsx(b) => b.has_1904_epoch(),
            Book::Xls(b) => b.has_1904_epoch(),
        }
    }

    /// Every cell of a sheet.
    fn range(&mut self, path: &Path, index: u32) -> Result<calamine::Range<Data>> {
        let got = match self {
            Book::Xlsx(b) => b
                .worksheet_range_at(index as usize)
                .map(|r| r.map_err(|e| e.to_string())),
            Book::Xls(b) => b
                .worksheet_range_at(index as usize)
                .map(|r| r.map_err(|e| e.to_string())),
        };
        match got {
            Some(Ok(range)) => Ok(range),
            Some(Err(e)) => Err(workbook_error(path, e)),
            None => Err(workbook_error(
                path,
                format!("it has no sheet {}", index + 1),
            )),
        }
    }

    /// A sheet's header row (0-based), its cells from column A, and one past
    /// its last row, from the sheet's declared dimension when it has one (an
    /// xlsx sheet: read without parsing the rows), else from its cells.
    fn outline(&mut self, path: &Path, index: u32, name: &str) -> Result<(u32, Vec<Data>, u32)> {
        if let Book::Xlsx(b) = self {
            let mut cells = b
                .worksheet_cells_reader(name)
                .map_err(|e| workbook_error(path, e))?;
            let dims = cells.dimensions();
            let mut header: Vec<Data> = Vec::new();
            let mut header_row = None;
            while let Some(c) = cells.next_cell().map_err(|e| workbook_error(path, e))? {
                let (row, col) = c.get_position();
                let value: Data = c.get_value().clone().into();
                if matches!(value, Data::Empty) {
                    continue;
                }
                match header_row {
                    None => header_row = Some(row),
                    Some(h) if h != row => break,
                    Some(_) => {}
                }
                if header.len() <= col as usize {
                    header.resize(col as usize + 1, Data::Empty);
                }
                header[col as usize] = value;
            }
            let Some(header_row) = header_row else {
                return Err(no_header(path, name));
            };
            if dims.end.0 > header_row {
                return Ok((header_row, header, dims.end.0 + 1));
            }
            // No usable dimension: the sheet's cells tell.
        }
        let range = self.range(path, index)?;
        let Some((start_row, start_col)) = range.start() else {
            return Err(no_header(path, name));
        };
        let mut header = vec![Data::Empty; start_col as usize];
        header.extend(range.rows().next().unwrap_or_default().iter().cloned());
        let end = range.end().map_or(start_row + 1, |e| e.0 + 1);
        Ok((start_row, header, end))
    }
}

fn cell_text<'a>(book_1904: bool, parse: &'a ParseOptions) -> CellText<'a> {
    CellText {
        is_1904: book_1904,
        decimal_comma: parse.decimal_comma,
        date_format: parse.date_format.as_ref(),
    }
}

/// The layout of a workbook input: its selected sheets (every sheet, or
/// those `parse.sheets` names, in that order), each with a header holding
/// the required columns. The layout's header and columns are the first
/// sheet's (for the run report).
pub fn read_layout(reader: &InputReader, path: &Path, parse: &ParseOptions) -> Result<FileLayout> {
    let mut book = Book::open(reader.file()?, path, parse)?;
    let names = book.sheet_names();
    let selected: Vec<(u32, String)> = if parse.sheets.is_empty() {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| (i as u32, n.clone()))
            .collect()
    } else {
        parse
            .sheets
            .iter()
            .map(|want| {
                names
                    .iter()
                    .position(|n| n == want)
                    .map(|i| (i as u32, want.clone()))
                    .ok_or_else(|| Error::MissingSheet {
                        path: path.to_path_buf(),
                        sheet: want.clone(),
                        sheets: names
                            .iter()
                            .map(|n| format!("{n:?}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
            })
            .collect::<Result<_>>()?
    };
    if selected.is_empty() {
        return Err(workbook_error(path, "it has no sheets"));
    }
    let text = cell_text(book.is_1904(), parse);
    let mut sheets = Vec::new();
    let mut first = None;
    for (index, name) in selected {
        let (header_row, cells, end_row) = book.outline(path, index, &name)?;
        let header = sheet::header_of(&cells, &text);
        let columns = resolve(path, &name, &header)?;
        first.get_or_insert((header, columns));
        sheets.push(SheetLayout {
            index,
            name,
            header_row,
            end_row,
        });
    }
    if sheets.iter().all(|s| s.end_row <= s.header_row + 1) {
        return Err(Error::NoDataLines {
            path: path.to_path_buf(),
        });
    }
    let (header, columns) = first.expect("at least one sheet");
    Ok(FileLayout {
        data_start: 0,
        len: reader.size(),
        header,
        columns,
        sheets,
    })
}

/// Rows per task of a workbook: rows of about `chunk_size` bytes, a row
/// counted as the file's size over its planned rows.
fn rows_per_task(input: &InputFile, chunk_size: u64) -> u32 {
    let rows: u64 = input
        .layout
        .sheets
        .iter()
        .map(|s| s.end_row.saturating_sub(s.header_row + 1) as u64)
        .sum();
    let row_bytes = input.layout.len.div_ceil(rows.max(1)).max(1);
    (chunk_size / row_bytes).clamp(1, u32::MAX as u64) as u32
}

/// How many row ranges [`plan_chunks`] makes of a workbook.
pub fn count_chunks(input: &InputFile, chunk_size: u64) -> u64 {
    let per_task = rows_per_task(input, chunk_size) as u64;
    input
        .layout
        .sheets
        .iter()
        .map(|s| (s.end_row.saturating_sub(s.header_row + 1) as u64).div_ceil(per_task))
        .sum()
}

/// The row ranges of a workbook's sheets (`rows_per_task` rows each).
pub fn plan_chunks(file_index: u32, input: &InputFile, chunk_size: u64, chunks: &mut Vec<Chunk>) {
    let sheets = &input.layout.sheets;
    let per_task = rows_per_task(input, chunk_size);
    for s in sheets {
        let mut at = s.header_row + 1;
        while at < s.end_row {
            let end = at.saturating_add(per_task).min(s.end_row);
            chunks.push(Chunk {
                file_index,
                start: task_bound(s.index, at),
                end: task_bound(s.index, end),
            });
            at = end;
        }
    }
}

/// Reads sheet `index` of the workbook into CSV records.
fn read_sheet(
    reader: &InputReader,
    path: &Path,
    layout: &SheetLayout,
    parse: &ParseOptions,
) -> Result<SheetText> {
    let mut book = Book::open(reader.file()?, path, parse)?;
    let range = book.range(path, layout.index)?;
    let text = cell_text(book.is_1904(), parse);
    sheet::sheet_text(path, &layout.name, &range, &text)
}

/// Records per rayon job inside a task, in bytes of CSV text.
const SUB_RANGE_BYTES: u64 = 4 << 20;

/// Computes the partial state of a task (rows of one sheet): the sheet's
/// records in sub-ranges on rayon, each classified by [`parse_range_into`].
pub fn compute_chunk(
    reader: &InputReader,
    input: &InputFile,
    chunk: Chunk,
    parse: &ParseOptions,
    cancel: &Cancel,
) -> Result<PartialState> {
    let (sheet_index, from) = split_bound(chunk.start);
    let (end_sheet, to) = split_bound(chunk.end);
    let layout = input
        .layout
        .sheets
        .iter()
        .find(|s| s.index == sheet_index && end_sheet == sheet_index)
        .ok_or_else(|| {
            Error::BadState(format!(
                "task rows {:#x}..{:#x} name no planned sheet of {}",
                chunk.start,
                chunk.end,
                input.path.display()
            ))
        })?;
    let to = if to >= layout.end_row { u32::MAX } else { to };
    let key = SheetKey {
        path: input.path.clone(),
        len: reader.size(),
        modified: reader.modified(),
        sheet: sheet_index,
        decimal_comma: parse.decimal_comma,
        date_format: parse.date_format.as_ref().map(|f| f.as_str().to_string()),
    };
    cancel.check()?;
    let sheet = sheet::cached(key, || read_sheet(reader, &input.path, layout, parse))?;
    let (lo, hi) = sheet.bytes_of_rows(from, to);
    // Sub-ranges end at record starts.
    let mut cuts = vec![lo];
    let mut i = sheet.rows.partition_point(|r| r.1 < lo);
    while let Some(&last) = cuts.last() {
        if last >= hi {
            break;
        }
        let want = last + SUB_RANGE_BYTES;
        i += sheet.rows[i..].partition_point(|r| r.1 < want);
        cuts.push(sheet.rows.get(i).map_or(hi, |r| r.1).min(hi));
    }
    let opts = ParseOptions {
        delimiter: b',',
        date_format: parse
            .date_format
            .as_ref()
            .map(|_| crate::date::DateFormat::new("%Y-%m-%d %H:%M:%S").expect("a valid format")),
        sheets: Vec::new(),
        ..parse.clone()
    };
    let mut state = cuts
        .windows(2)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|w| {
            cancel.check()?;
            let mut state = PartialState::new();
            let range = RangeSpec {
                file_index: chunk.file_index,
                base: w[0],
            };
            let bytes = &sheet.csv[w[0] as usize..w[1] as usize];
            let ledger = parse_range_into(bytes, range, &sheet.columns, &opts, &mut state);
            state.ledger.merge(ledger);
            state.seal();
            Ok(state)
        })
        .try_reduce(PartialState::new, |mut a, b| {
            a.merge(b);
            Ok::<_, Error>(a)
        })?;
    reader.check_unchanged()?;
    name_rows(&mut state, &sheet, sheet_index, &layout.name);
    state.seal();
    Ok(state)
}

/// Gives the samples (and the day-first example) of a task their sheet row:
/// the sample's line is its 1-based row, its offset `sheet << 32 | row` (so
/// samples sort by sheet and row), and its problem names the sheet.
fn name_rows(state: &mut PartialState, sheet: &SheetText, index: u32, name: &str) {
    for s in &mut state.ledger.malformed_samples {
        let row = sheet.row_at(s.offset);
        s.offset = task_bound(index, row);
        s.line = Some(row as u64 + 1);
        s.problem = format!("sheet {name:?}: {}", s.problem);
    }
    for forms in &mut state.ledger.dates {
        if let Some(example) = &mut forms.day_first_example {
            example.0 = task_bound(index, sheet.row_at(example.0));
        }
    }
}
