//! Writes a UCI-layout CSV file as Parquet, the way a data lake would hold
//! it. [`Typing::Floats`]: quantity int64, date timestamp (milliseconds),
//! price float64; invoice, stock code, description, customer id and country
//! stay text (the customer id keeps its `17850.0` form, which the spec reads
//! specially; an empty one becomes null). [`Typing::Exact`]: quantity int32,
//! date timestamp (microseconds, UTC), price decimal(12, 3), customer id
//! int64 (null when empty), invoice and country dictionary-encoded text.
//! [`Typing::Text`]: every column text. A column whose values do not all
//! parse as its type stays text. Rows are split into row groups of
//! `group_rows`. Shared with other crates' tests through `#[path]`.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Decimal128Array, DictionaryArray, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, TimestampMicrosecondArray, TimestampMillisecondArray,
};
use arrow::datatypes::Int32Type;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

/// ISO-8859-1 bytes as text when they are not UTF-8.
fn text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => b.iter().map(|&c| c as char).collect(),
    }
}

/// `YYYY-MM-DD HH:MM:SS` as milliseconds since 1970 (no zone).
fn iso_millis(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    // Days from civil (Howard Hinnant).
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000)
}

/// How the columns are typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Typing {
    Floats,
    Exact,
    Text,
}

/// Converts `csv` (comma-separated, with the UCI header) to Parquet at `out`
/// ([`Typing::Floats`]).
pub fn write_uci_parquet(csv: &Path, out: &Path, group_rows: usize) {
    write_uci_parquet_as(csv, out, group_rows, Typing::Floats)
}

/// A price text as thousandths.
fn thousandths(s: &str) -> Option<i128> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || int.starts_with('+') {
        return None;
    }
    let int: i128 = int.parse().ok()?;
    let frac: i128 = format!("{frac:0<3}").parse().ok()?;
    Some(int * 1000 + if s.starts_with('-') { -frac } else { frac })
}

/// Converts `csv` (comma-separated, with the UCI header) to Parquet at `out`
/// with the columns typed as `typing` says.
pub fn write_uci_parquet_as(csv: &Path, out: &Path, group_rows: usize, typing: Typing) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(csv)
        .unwrap();
    let header: Vec<String> = reader.byte_headers().unwrap().iter().map(text).collect();
    let rows: Vec<csv::ByteRecord> = reader.byte_records().map(|r| r.unwrap()).collect();
    let column = |i: usize| -> (DataType, ArrayRef) {
        let cells: Vec<&[u8]> = rows.iter().map(|r| r.get(i).unwrap_or_default()).collect();
        let as_str: Vec<Option<String>> = cells.iter().map(|c| Some(text(c))).collect();
        let strings = || -> (DataType, ArrayRef) {
            let nullable: Vec<Option<String>> = as_str
                .iter()
                .map(|s| s.clone().filter(|s| !s.is_empty()))
                .collect();
            (DataType::Utf8, Arc::new(StringArray::from(nullable)))
        };
        let dictionary = || -> (DataType, ArrayRef) {
            let values: DictionaryArray<Int32Type> = as_str.iter().map(|s| s.as_deref()).collect();
            (values.data_type().clone(), Arc::new(values))
        };
        match (typing, header[i].as_str()) {
            (Typing::Text, _) => strings(),
            (Typing::Floats, "Quantity") => {
                let v: Option<Vec<i64>> = as_str.iter().map(|s| s.as_ref()?.parse().ok()).collect();
                v.map_or_else(strings, |v| {
                    (DataType::Int64, Arc::new(Int64Array::from(v)))
                })
            }
            (Typing::Exact, "Quantity") => {
                let v: Option<Vec<i32>> = as_str.iter().map(|s| s.as_ref()?.parse().ok()).collect();
                v.map_or_else(strings, |v| {
                    (DataType::Int32, Arc::new(Int32Array::from(v)))
                })
            }
            (Typing::Floats, "UnitPrice" | "Price") => {
                let v: Option<Vec<f64>> = as_str.iter().map(|s| s.as_ref()?.parse().ok()).collect();
                v.map_or_else(strings, |v| {
                    (DataType::Float64, Arc::new(Float64Array::from(v)))
                })
            }
            (Typing::Exact, "UnitPrice" | "Price") => {
                let v: Option<Vec<i128>> =
                    as_str.iter().map(|s| thousandths(s.as_ref()?)).collect();
                v.map_or_else(strings, |v| {
                    let a = Decimal128Array::from(v)
                        .with_precision_and_scale(12, 3)
                        .unwrap();
                    (a.data_type().clone(), Arc::new(a))
                })
            }
            (Typing::Floats, "InvoiceDate") => {
                let v: Option<Vec<i64>> = as_str.iter().map(|s| iso_millis(s.as_ref()?)).collect();
                v.map_or_else(strings, |v| {
                    (
                        DataType::Timestamp(TimeUnit::Millisecond, None),
                        Arc::new(TimestampMillisecondArray::from(v)),
                    )
                })
            }
            (Typing::Exact, "InvoiceDate") => {
                let v: Option<Vec<i64>> = as_str
                    .iter()
                    .map(|s| Some(iso_millis(s.as_ref()?)? * 1000))
                    .collect();
                v.map_or_else(strings, |v| {
                    let a = TimestampMicrosecondArray::from(v).with_timezone("UTC");
                    (a.data_type().clone(), Arc::new(a))
                })
            }
            (Typing::Exact, "CustomerID") => {
                // `17850.0` is customer 17850; empty is null.
                let v: Option<Vec<Option<i64>>> = as_str
                    .iter()
                    .map(|s| match s.as_deref()? {
                        "" => Some(None),
                        s => Some(Some(s.strip_suffix(".0").unwrap_or(s).parse().ok()?)),
                    })
                    .collect();
                v.map_or_else(strings, |v| {
                    (DataType::Int64, Arc::new(Int64Array::from(v)))
                })
            }
            (Typing::Exact, "InvoiceNo" | "Country") => dictionary(),
            _ => strings(),
        }
    };
    let (types, arrays): (Vec<DataType>, Vec<ArrayRef>) = (0..header.len()).map(column).unzip();
    let schema = Arc::new(Schema::new(
        header
            .iter()
            .zip(types)
            .map(|(name, t)| Field::new(name, t, true))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(schema.clone(), arrays).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(group_rows))
        .build();
    let file = std::fs::File::create(out).unwrap();
    let mut writer = ArrowWriter::try_new(file, schema, Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}
