//! Parquet input: row groups are the tasks, and each row's typed values go
//! through the same line rules as a CSV line ([`crate::parse::Classifier`]).
//!
//! Columns are found by name with the CSV header's aliases
//! ([`ColumnMap::resolve`]); a missing one is the CSV's missing-column error.
//! Each role accepts text (UTF-8, large UTF-8, view, dictionary), integers,
//! decimals and floats, and for the date also timestamps and dates; how each
//! reads is in `columns`. Only the role columns are read (projection), and
//! a chunk's row groups are read in parallel (rayon), as a CSV chunk's
//! sub-ranges are. The footer is read once per file per process (`footer`).
//! A row group's text role columns whose pages all hold dictionary keys are
//! read as dictionary arrays: no text is copied per row, a customer
//! dictionary's ids are checked once per value (`Readings`), invoice and
//! country values are trimmed (invoices packed) once, and a customer's or
//! country's slot in the state is looked up once per row group
//! (`columns::Slots`).
//!
//! Planning stays in bytes: a chunk `[start, end)` owns the row groups whose
//! first byte lies in it, so every row group belongs to exactly one task
//! (a chunk smaller than a row group may own none). A malformed sample's
//! line is the row's line in a CSV export with a header: row + 2 (1-based
//! row + 1), and its text the row as such a CSV record (the role columns
//! filled, the others empty).

mod columns;
mod footer;

use std::path::Path;

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use parquet::basic::{Encoding, PageType};
use parquet::file::metadata::{ColumnChunkMetaData, RowGroupMetaData};
use rayon::prelude::*;

use crate::cancel::Cancel;
use crate::engine::{merge_sealed, Chunk, InputFile, InputReader};
use crate::error::{Error, Result};
use crate::input::{ColumnMap, FileLayout, ParseOptions};
use crate::parse::{Classifier, DateReader};
use crate::partial::PartialState;
use columns::{Carry, RoleColumns, Slots};
use footer::Source;

/// Rows per batch read from a row group: small enough that a batch's
/// arrays (about 44 bytes a row for the generator's typed columns) stay in
/// cache and their buffers are reused, not fresh pages each batch.
const BATCH_ROWS: usize = 8 * 1024;

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::BadInput {
        path: path.to_path_buf(),
        format: "parquet",
        message: message.into(),
    }
}

fn open(reader: &InputReader) -> Result<(Source, ArrowReaderMetadata)> {
    let source = Source::of(reader)?;
    let meta = footer::metadata(reader, &source)?;
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

/// Whether every data page of a column chunk holds dictionary keys (so
/// reading it as a dictionary array keeps the keys and copies no text).
fn all_dictionary(c: &ColumnChunkMetaData) -> bool {
    let keyed = |e: Encoding| matches!(e, Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY);
    if c.dictionary_page_offset().is_none() {
        return false;
    }
    if let Some(stats) = c.page_encoding_stats() {
        return stats
            .iter()
            .filter(|s| matches!(s.page_type, PageType::DATA_PAGE | PageType::DATA_PAGE_V2))
            .all(|s| keyed(s.encoding));
    }
    if let Some(mask) = c.page_encoding_stats_mask() {
        return mask.encodings().all(keyed);
    }
    // Without page statistics: the chunk's encodings, besides the
    // dictionary page's own PLAIN and the levels' RLE.
    c.encodings()
        .all(|e| keyed(e) || matches!(e, Encoding::PLAIN | Encoding::RLE))
}

/// How a row group is read: its text role columns whose pages are all
/// dictionary keys are read as dictionary arrays (each distinct value once),
/// the others as they are. One metadata per distinct choice, made once.
struct Readings {
    plain: ArrowReaderMetadata,
    /// Text role columns (field index, parquet leaf index).
    texts: Vec<(usize, usize)>,
    /// The metadata of each choice made so far, by the set of dictionary
    /// columns (bit k: `texts[k]`).
    keyed: std::sync::Mutex<Vec<(u64, ArrowReaderMetadata)>>,
}

impl Readings {
    fn new(meta: &ArrowReaderMetadata, roles: &[usize]) -> Readings {
        let schema = meta.schema();
        let mut texts = Vec::new();
        for &field in roles {
            if texts.len() == 64 {
                break;
            }
            let t = schema.field(field).data_type();
            if !matches!(t, DataType::Utf8 | DataType::LargeUtf8) {
                continue;
            }
            // A top-level text field is one leaf; find it by its root.
            let leaf = (0..meta.parquet_schema().num_columns())
                .find(|&i| meta.parquet_schema().get_column_root_idx(i) == field);
            if let Some(leaf) = leaf {
                texts.push((field, leaf));
            }
        }
        Readings {
            plain: meta.clone(),
            texts,
            keyed: Default::default(),
        }
    }

    /// The metadata to read row group `rg` with.
    fn of(&self, rg: &RowGroupMetaData) -> std::result::Result<ArrowReaderMetadata, String> {
        let mut set = 0u64;
        for (k, &(_, leaf)) in self.texts.iter().enumerate() {
            if all_dictionary(rg.column(leaf)) {
                set |= 1 << k;
            }
        }
        if set == 0 {
            return Ok(self.plain.clone());
        }
        let mut keyed = self.keyed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, m)) = keyed.iter().find(|(s, _)| *s == set) {
            return Ok(m.clone());
        }
        let schema = self.plain.schema();
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        for (k, &(field, _)) in self.texts.iter().enumerate() {
            if set & (1 << k) != 0 {
                let f = &mut fields[field];
                let keyed_type = DataType::Dictionary(
                    Box::new(DataType::Int32),
                    Box::new(f.data_type().clone()),
                );
                *f = f.clone().with_data_type(keyed_type);
            }
        }
        let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        let m = ArrowReaderMetadata::try_new(
            self.plain.metadata().clone(),
            ArrowReaderOptions::new().with_schema(schema),
        )
        .map_err(|e| e.to_string())?;
        keyed.push((set, m.clone()));
        Ok(m)
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
    // `--date-format` reads a text date column; typed dates need none.
    let date_format = match schema.field(columns.date).data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => {
            parse.date_format.clone()
        }
        _ => None,
    };
    let mask = ProjectionMask::roots(meta.parquet_schema(), roles.iter().copied());
    let readings = Readings::new(&meta, &roles);
    let mut state = merge_sealed(owned.into_par_iter().try_fold(
        PartialState::new,
        |mut state, (group, first_row)| {
            cancel.check()?;
            let reading = readings
                .of(meta.metadata().row_group(group))
                .map_err(|m| bad(path, format!("row group {group}: {m}")))?;
            let batches =
                ParquetRecordBatchReaderBuilder::new_with_metadata(source.clone(), reading)
                    .with_row_groups(vec![group])
                    .with_projection(mask.clone())
                    .with_batch_size(BATCH_ROWS)
                    .build()
                    .map_err(|e| bad(path, e.to_string()))?;
            let mut classifier = Classifier::new(chunk.file_index, parse);
            let mut carry = Some(Carry::new(DateReader::new(date_format.clone())));
            let mut slots = Slots::new();
            let mut row = first_row;
            for batch in batches {
                cancel.check()?;
                let batch = batch.map_err(|e| bad(path, format!("row group {group}: {e}")))?;
                let held = carry.take().expect("the carried readers are back");
                let (mut read, texts) = RoleColumns::new(batch.columns(), &roles, columns, held)
                    .map_err(|m| bad(path, m))?;
                slots.follow(&read);
                for r in 0..batch.num_rows() {
                    let offset = row + r as u64;
                    let row = read.values(r);
                    classifier.date_form(offset, row.values.ts, row.shape, row.date_text);
                    if let Some(purchase) = classifier.line(offset, row.values, &texts.row(r)) {
                        classifier.count_purchase(&purchase);
                        let customer =
                            slots.customer(row.customer_key, purchase.customer(), &mut state);
                        let country = slots.country(row.country_key, row.country, &mut state);
                        state.absorb_slots(
                            customer,
                            country,
                            purchase.ts(),
                            purchase.amount(),
                            purchase.invoice(),
                            row.invoice,
                        );
                    }
                }
                carry = Some(read.into_carry());
                row += batch.num_rows() as u64;
            }
            let mut ledger = classifier.finish();
            for s in ledger.malformed_samples.iter_mut() {
                s.line = Some(s.offset + 2);
            }
            state.ledger.merge(ledger);
            Ok::<_, Error>(state)
        },
    ))?;
    reader.check_unchanged()?;
    state.seal();
    Ok(state)
}
