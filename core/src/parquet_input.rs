//! Parquet input: row groups are the tasks, and each row's values go through
//! the same classifier as a CSV line ([`crate::parse::parse_range`]).
//!
//! Columns are found by name with the CSV header's aliases
//! ([`ColumnMap::resolve`]); a missing one is the CSV's missing-column error.
//! Each role accepts text (UTF-8, large UTF-8, view, dictionary), integers,
//! decimals and floats, and for the date also timestamps (any unit, any
//! zone: the stored value, to the second) and dates. Values are written as
//! the text a CSV export would hold (a float as its shortest round-trip
//! decimal, so 2.55 stays 2.55; a timestamp as `YYYY-MM-DD HH:MM:SS`; null
//! as an empty field) and classified by the CSV code, so validation and the
//! ledger are the same.
//!
//! Planning stays in bytes: a chunk `[start, end)` owns the row groups whose
//! first byte lies in it, so every row group belongs to exactly one task
//! (a chunk smaller than a row group may own none). A malformed sample's
//! line is the row's line in a CSV export with a header: row + 2 (1-based
//! row + 1).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, Float64Type, TimeUnit};
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::RowGroupMetaData;
use parquet::file::reader::{ChunkReader, Length};
use rayon::prelude::*;

use crate::cancel::Cancel;
use crate::date;
use crate::engine::{Chunk, InputFile, InputReader};
use crate::error::{Error, Result};
use crate::input::{ColumnMap, FileLayout, ParseOptions};
use crate::parse::{parse_range_into, RangeSpec};
use crate::partial::PartialState;

/// Rows per batch read from a row group.
const BATCH_ROWS: usize = 64 * 1024;

/// A Parquet file read with positioned reads (each reader its own offset).
#[derive(Clone)]
struct Source {
    file: Arc<File>,
    len: u64,
}

impl Length for Source {
    fn len(&self) -> u64 {
        self.len
    }
}

/// A reader from an offset of a [`Source`].
struct At {
    file: Arc<File>,
    at: u64,
    len: u64,
}

impl std::io::Read for At {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.len.saturating_sub(self.at)).min(out.len() as u64) as usize;
        if n == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut out[..n], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

impl ChunkReader for Source {
    type T = At;

    fn get_read(&self, start: u64) -> parquet::errors::Result<At> {
        Ok(At {
            file: self.file.clone(),
            at: start,
            len: self.len,
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        if start.saturating_add(length as u64) > self.len {
            return Err(parquet::errors::ParquetError::EOF(format!(
                "bytes {start}..{} are past the end of the file ({} bytes)",
                start + length as u64,
                self.len
            )));
        }
        let mut buf = vec![0; length];
        self.file
            .read_exact_at(&mut buf, start)
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))?;
        crate::engine::count_read(length as u64);
        Ok(Bytes::from(buf))
    }
}

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::BadInput {
        path: path.to_path_buf(),
        format: "parquet",
        message: message.into(),
    }
}

fn open(reader: &InputReader) -> Result<(Source, ArrowReaderMetadata)> {
    let source = Source {
        file: Arc::new(reader.try_clone_file()?),
        len: reader.size(),
    };
    let meta = ArrowReaderMetadata::load(&source, Default::default())
        .map_err(|e| bad(reader.path(), e.to_string()))?;
    Ok((source, meta))
}

/// The first byte of a row group (its first column chunk), or why the
/// footer's offsets are not usable.
fn group_start(rg: &RowGroupMetaData) -> std::result::Result<u64, String> {
    let mut start = u64::MAX;
    for c in rg.columns() {
        let first = c.dictionary_page_offset().unwrap_or(c.data_page_offset());
        if first < 0 || c.compressed_size() < 0 {
            return Err("a column chunk has a negative offset or size".into());
        }
        start = start.min(first as u64);
    }
    Ok(start)
}

/// Whether a column of this type can be read as text for a role.
fn readable(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => readable(v),
        t if t.is_integer() => true,
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..)
        | DataType::Float32
        | DataType::Float64
        | DataType::Timestamp(..)
        | DataType::Date32
        | DataType::Date64 => true,
        _ => false,
    }
}

/// The role columns of a layout, 0-based indices of top-level fields.
fn role_columns(c: &ColumnMap) -> Vec<usize> {
    let mut cols = vec![c.invoice, c.quantity, c.date, c.price, c.customer];
    cols.extend(c.country);
    cols.sort_unstable();
    cols.dedup();
    cols
}

/// The layout of a Parquet file: its top-level field names as the header;
/// `data_start` is the first row group's first byte, `len` the file size.
pub fn read_parquet_layout(reader: &InputReader) -> Result<FileLayout> {
    let path = reader.path();
    let (_, meta) = open(reader)?;
    let schema = meta.schema();
    let header: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let columns = ColumnMap::resolve(path, &header, b',')?;
    for (role, name) in &columns.names {
        let field = schema
            .field_with_name(name)
            .map_err(|e| bad(path, e.to_string()))?;
        if !readable(field.data_type()) {
            return Err(bad(
                path,
                format!(
                    "column {name:?} ({role}) has type {}; rfm reads text, integer, decimal, float, timestamp and date columns",
                    field.data_type()
                ),
            ));
        }
    }
    let mut data_start = reader.size();
    for rg in meta.metadata().row_groups() {
        if rg.num_rows() > 0 {
            data_start = data_start.min(group_start(rg).map_err(|m| bad(path, m))?);
        }
    }
    Ok(FileLayout {
        data_start,
        len: reader.size(),
        header,
        columns,
        sheets: Vec::new(),
    })
}

/// The partial state of the row groups a chunk owns.
pub fn compute_parquet(
    reader: &InputReader,
    input: &InputFile,
    chunk: Chunk,
    parse: &ParseOptions,
    cancel: &Cancel,
) -> Result<PartialState> {
    let path = reader.path();
    let (source, meta) = open(reader)?;
    let columns = &input.layout.columns;
    let schema = meta.schema().clone();
    if schema.fields().len() != columns.field_count {
        return Err(bad(
            path,
            "the file's columns are not the ones planned; run again on a stable copy",
        ));
    }
    // Rows before each row group, and the groups this chunk owns.
    let mut owned = Vec::new();
    let mut first_row = 0u64;
    for (i, rg) in meta.metadata().row_groups().iter().enumerate() {
        let start = group_start(rg).map_err(|m| bad(path, m))?;
        let owns = if chunk.start <= input.layout.data_start {
            start < chunk.end
        } else {
            (chunk.start..chunk.end).contains(&start)
        };
        if owns && rg.num_rows() > 0 {
            owned.push((i, first_row));
        }
        first_row += rg.num_rows().max(0) as u64;
    }
    let roles = role_columns(columns);
    let typed_date = !matches!(
        schema.field(columns.date).data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..)
    );
    // Values are written as a comma-separated export with '.' decimals; a
    // typed date is written in the ISO form, which needs no --date-format.
    let text_parse = ParseOptions {
        delimiter: b',',
        decimal_comma: false,
        date_format: if typed_date {
            None
        } else {
            parse.date_format.clone()
        },
        ..parse.clone()
    };
    let mut state = owned
        .into_par_iter()
        .try_fold(PartialState::new, |mut state, (group, first_row)| {
            cancel.check()?;
            let mask = ProjectionMask::roots(meta.parquet_schema(), roles.iter().copied());
            let batches =
                ParquetRecordBatchReaderBuilder::new_with_metadata(source.clone(), meta.clone())
                    .with_row_groups(vec![group])
                    .with_projection(mask)
                    .with_batch_size(BATCH_ROWS)
                    .build()
                    .map_err(|e| bad(path, e.to_string()))?;
            let mut row = first_row;
            let mut text = Vec::new();
            let mut starts = Vec::new();
            for batch in batches {
                cancel.check()?;
                let batch = batch.map_err(|e| bad(path, format!("row group {group}: {e}")))?;
                write_rows(&batch, &roles, columns.field_count, &mut text, &mut starts)
                    .map_err(|m| bad(path, m))?;
                let range = RangeSpec {
                    file_index: chunk.file_index,
                    base: 0,
                };
                let mut ledger = parse_range_into(&text, range, columns, &text_parse, &mut state);
                for s in ledger.malformed_samples.iter_mut() {
                    let i = starts.partition_point(|&o| o <= s.offset).saturating_sub(1);
                    s.offset = row + i as u64;
                    s.line = Some(s.offset + 2);
                }
                for forms in ledger.dates.iter_mut() {
                    if let Some(e) = forms.day_first_example.as_mut() {
                        let i = starts.partition_point(|&o| o <= e.0).saturating_sub(1);
                        e.0 = row + i as u64;
                    }
                }
                state.ledger.merge(ledger);
                row += batch.num_rows() as u64;
            }
            Ok::<_, Error>(state)
        })
        .map(|r| {
            r.map(|mut s| {
                s.seal();
                s
            })
        })
        .try_reduce(PartialState::new, |mut a, b| {
            a.merge(b);
            Ok(a)
        })?;
    reader.check_unchanged()?;
    state.seal();
    Ok(state)
}

/// One role column, ready to write values as text.
enum Cells<'a> {
    Float64(&'a arrow::array::PrimitiveArray<Float64Type>),
    Float32(&'a arrow::array::PrimitiveArray<Float32Type>),
    /// Seconds since 1970 (timestamps and dates).
    Seconds(Vec<Option<i64>>),
    /// Anything else, cast to text.
    Text(ArrayRef),
}

fn cells(array: &ArrayRef) -> std::result::Result<Cells<'_>, String> {
    let seconds = |div: i64, mul: i64| -> Vec<Option<i64>> {
        let a = arrow::compute::cast(array, &DataType::Int64).expect("a number");
        let a = a.as_primitive::<arrow::datatypes::Int64Type>();
        a.iter()
            .map(|v| v.map(|v| v.div_euclid(div).saturating_mul(mul)))
            .collect()
    };
    Ok(match array.data_type() {
        DataType::Float64 => Cells::Float64(array.as_primitive()),
        DataType::Float32 => Cells::Float32(array.as_primitive()),
        DataType::Timestamp(unit, _) => Cells::Seconds(match unit {
            TimeUnit::Second => seconds(1, 1),
            TimeUnit::Millisecond => seconds(1_000, 1),
            TimeUnit::Microsecond => seconds(1_000_000, 1),
            TimeUnit::Nanosecond => seconds(1_000_000_000, 1),
        }),
        DataType::Date32 => Cells::Seconds(seconds(1, 86_400)),
        DataType::Date64 => Cells::Seconds(seconds(1_000, 1)),
        _ => Cells::Text(
            arrow::compute::cast(array, &DataType::Utf8)
                .map_err(|e| format!("cannot read a {} column as text: {e}", array.data_type()))?,
        ),
    })
}

/// Writes a value as one CSV field: quoted when it holds a comma, a quote or
/// a line break, or starts with a quote.
fn field(out: &mut Vec<u8>, v: &[u8]) {
    if v.iter().any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.push(b'"');
        for &b in v {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(v);
    }
}

/// The batch's rows as CSV records of `field_count` fields (the role
/// columns filled, the others empty) into `text`; `starts` gets each
/// record's offset.
fn write_rows(
    batch: &RecordBatch,
    roles: &[usize],
    field_count: usize,
    text: &mut Vec<u8>,
    starts: &mut Vec<u64>,
) -> std::result::Result<(), String> {
    use std::io::Write as _;
    text.clear();
    starts.clear();
    let cols: Vec<Cells> = batch
        .columns()
        .iter()
        .map(cells)
        .collect::<Result<_, _>>()?;
    let texts: Vec<Option<&arrow::array::StringArray>> = cols
        .iter()
        .map(|c| match c {
            Cells::Text(a) => Some(a.as_string::<i32>()),
            _ => None,
        })
        .collect();
    let mut number = Vec::with_capacity(32);
    // Rows of an invoice share their timestamp: format it once.
    let mut last_seconds: Option<i64> = None;
    let mut last_text = Vec::new();
    for r in 0..batch.num_rows() {
        starts.push(text.len() as u64);
        let mut next = 0;
        for (k, &col) in roles.iter().enumerate() {
            while next < col {
                text.push(b',');
                next += 1;
            }
            number.clear();
            match &cols[k] {
                Cells::Float64(a) if a.is_valid(r) => {
                    let _ = write!(number, "{}", a.value(r));
                }
                Cells::Float32(a) if a.is_valid(r) => {
                    let _ = write!(number, "{}", a.value(r));
                }
                Cells::Seconds(v) => {
                    if let Some(s) = v[r] {
                        if last_seconds != Some(s) {
                            last_text.clear();
                            last_text.extend_from_slice(date::format_timestamp(s).as_bytes());
                            last_seconds = Some(s);
                        }
                        number.extend_from_slice(&last_text);
                    }
                }
                Cells::Text(_) => {
                    let a = texts[k].expect("text");
                    if a.is_valid(r) {
                        field(text, a.value(r).as_bytes());
                    }
                }
                _ => {}
            }
            text.extend_from_slice(&number);
        }
        while next + 1 < field_count {
            text.push(b',');
            next += 1;
        }
        text.push(b'\n');
    }
    Ok(())
}
