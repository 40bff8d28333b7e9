//! A worksheet as CSV text: its first row is the header, every later row
//! that holds a value is one record, written with `,` and RFC 4180 quoting
//! from the cells' texts ([`super::cell`]). The records keep their sheet row
//! numbers, so a range of rows is a range of bytes and a malformed record
//! names its row. A worker keeps the last sheets it read, so the tasks of one
//! sheet parse the workbook once.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use calamine::{Data, Range};

use super::cell::{CellText, Role};
use crate::error::Result;
use crate::input::ColumnMap;

/// A sheet's data rows as CSV records.
pub struct SheetText {
    /// The records, each ending in `\n`.
    pub csv: Vec<u8>,
    /// (0-based sheet row, offset of its record in `csv`), by row.
    pub rows: Vec<(u32, u64)>,
    /// The columns of the sheet's header.
    pub columns: ColumnMap,
    /// The 0-based sheet row of the header.
    pub header_row: u32,
}

impl SheetText {
    /// The byte range of the records of rows `[from, to)`.
    pub fn bytes_of_rows(&self, from: u32, to: u32) -> (u64, u64) {
        let at = |row: u32| {
            let i = self.rows.partition_point(|r| r.0 < row);
            self.rows.get(i).map_or(self.csv.len() as u64, |r| r.1)
        };
        (at(from), at(to))
    }

    /// The sheet row of the record at byte `offset`.
    pub fn row_at(&self, offset: u64) -> u32 {
        let i = self.rows.partition_point(|r| r.1 <= offset);
        self.rows[i.saturating_sub(1)].0
    }
}

/// The text of a cell row (`None` for a row without any value).
fn row_texts(row: &[Data], roles: &[Role], text: &CellText) -> Option<Vec<String>> {
    let last = row.iter().rposition(|c| {
        !matches!(c, Data::Empty) && !matches!(c, Data::String(s) if s.is_empty())
    })?;
    Some(
        row[..=last]
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut s = String::new();
                text.push(c, roles.get(i).copied().unwrap_or(Role::Other), &mut s);
                s
            })
            .collect(),
    )
}

/// Appends one CSV record (`,`-separated, quoted where needed).
fn push_record(fields: &[String], width: usize, out: &mut Vec<u8>) {
    for i in 0..fields.len().max(width) {
        if i > 0 {
            out.push(b',');
        }
        let f = fields.get(i).map_or("", String::as_str);
        if f.contains([',', '"', '\n', '\r']) {
            out.push(b'"');
            for b in f.bytes() {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(f.as_bytes());
        }
    }
    out.push(b'\n');
}

/// The header texts of a sheet's first row (absolute columns from A).
pub fn header_of(first: &[Data], text: &CellText) -> Vec<String> {
    row_texts(first, &[], text)
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.trim().to_string())
        .collect()
}

/// Turns a sheet's cells into CSV records. `path` and `sheet` name it in errors.
pub fn sheet_text(
    path: &Path,
    sheet: &str,
    range: &Range<Data>,
    text: &CellText,
) -> Result<SheetText> {
    let Some((start_row, start_col)) = range.start() else {
        return Err(super::no_header(path, sheet));
    };
    let lead = start_col as usize;
    let blank = vec![Data::Empty; lead];
    let mut rows = range.rows().enumerate().map(|(i, r)| {
        let mut cells = blank.clone();
        cells.extend_from_slice(r);
        (start_row + i as u32, cells)
    });
    let (header_row, first) = rows.next().ok_or_else(|| super::no_header(path, sheet))?;
    let header = header_of(&first, text);
    let columns = super::resolve(path, sheet, &header)?;
    let mut roles = vec![Role::Other; columns.field_count];
    roles[columns.date] = Role::Date;
    roles[columns.price] = Role::Price;
    let mut csv = Vec::with_capacity(range.height() * 64);
    let mut offsets = Vec::with_capacity(range.height());
    for (row, cells) in rows {
        if let Some(fields) = row_texts(&cells, &roles, text) {
            offsets.push((row, csv.len() as u64));
            push_record(&fields, columns.field_count, &mut csv);
        }
    }
    Ok(SheetText {
        csv,
        rows: offsets,
        columns,
        header_row,
    })
}

/// What identifies a read sheet: the file (path, size, modification time),
/// the sheet's index and the options that shape its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SheetKey {
    pub path: std::path::PathBuf,
    pub len: u64,
    pub modified: Option<std::time::SystemTime>,
    pub sheet: u32,
    pub decimal_comma: bool,
    pub date_format: Option<String>,
}

/// Sheets read by this process, newest last; each slot is filled by the
/// first task that needs it while the others wait for it (a failure is not
/// kept: the next task tries again).
type Slot = Arc<Mutex<Option<Arc<SheetText>>>>;

/// How many read sheets a process keeps.
const KEPT: usize = 2;

fn cache() -> &'static Mutex<Vec<(SheetKey, Slot)>> {
    static CACHE: OnceLock<Mutex<Vec<(SheetKey, Slot)>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The sheet of `key`, read by `read` unless this process holds it.
pub fn cached(key: SheetKey, read: impl FnOnce() -> Result<SheetText>) -> Result<Arc<SheetText>> {
    let slot = {
        let mut kept = lock(cache());
        match kept.iter().position(|(k, _)| *k == key) {
            Some(i) => {
                let entry = kept.remove(i);
                let slot = entry.1.clone();
                kept.push(entry);
                slot
            }
            None => {
                let slot = Slot::default();
                kept.push((key, slot.clone()));
                if kept.len() > KEPT {
                    kept.remove(0);
                }
                slot
            }
        }
    };
    let mut held = lock(&slot);
    if let Some(sheet) = held.as_ref() {
        return Ok(sheet.clone());
    }
    let sheet = Arc::new(read()?);
    *held = Some(sheet.clone());
    Ok(sheet)
}
