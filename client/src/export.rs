//! `rfm export`: the customers of a run (all, or those `--segment` and
//! `--where` select, see [`crate::select`]), as CSV (the columns of
//! `customers.csv`) or as Parquet with typed columns, written under an
//! unguessable temporary name and renamed into place so a reader never sees
//! half a file (see `rfm_core::atomic`).

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::{
    ArrayRef, Decimal128Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampSecondArray, UInt8Array,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rfm_core::date::format_timestamp;
use rfm_core::figures::counted;
use rfm_core::money;
use rfm_runs::Customer;

use crate::cli::{ExportArgs, ExportFormat};
use crate::cluster::JobError;
use crate::results;
use crate::select::Selection;

/// Precision and scale of `monetary` in Parquet: cents, up to 36 digits before the point.
const MONETARY_PRECISION: u8 = 38;
const MONETARY_SCALE: i8 = 2;

pub fn export(args: ExportArgs) -> Result<()> {
    let format = args.format.unwrap_or_else(|| format_of(&args.out));
    let selection = Selection::of(&args.select)?;
    let run = results::load(&args.from)?;
    let customers: Vec<Customer> = if selection.is_all() {
        run.customers.clone()
    } else {
        run.customers
            .iter()
            .filter(|c| selection.matches(c))
            .cloned()
            .collect()
    };
    write_atomically(&args.out, |tmp| match format {
        ExportFormat::Csv => write_csv(tmp, &customers),
        ExportFormat::Parquet => write_parquet(tmp, &customers),
    })?;
    eprintln!(
        "{} of run {} written to {} ({})",
        counted(customers.len() as u64, "customer", "customers"),
        run.run_id(),
        args.out.display(),
        match format {
            ExportFormat::Csv => "CSV",
            ExportFormat::Parquet => "Parquet",
        }
    );
    Ok(())
}

/// The format a file name asks for: Parquet for `.parquet` and `.pq`, else CSV.
fn format_of(path: &Path) -> ExportFormat {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq") => {
            ExportFormat::Parquet
        }
        _ => ExportFormat::Csv,
    }
}

/// Writes `out` through `write` into a new temporary file beside it, synced
/// and renamed into place once complete; on failure removes the temporary
/// file and fails with the output exit code, naming `out`.
pub(crate) fn write_atomically(
    out: &Path,
    write: impl FnOnce(&mut File) -> Result<()>,
) -> Result<()> {
    let written = rfm_core::atomic::TempFile::beside(out)
        .context("cannot create a temporary file beside it")
        .and_then(|mut tmp| {
            write(tmp.file())?;
            tmp.persist(out).context("cannot rename it into place")
        });
    if let Err(e) = written {
        return Err(JobError {
            code: crate::exit::OUTPUT,
            message: format!("cannot write {}: {e:#}", out.display()),
        }
        .into());
    }
    Ok(())
}

/// Writes customers with the columns and the form of `customers.csv`.
pub(crate) fn write_csv(file: impl std::io::Write, customers: &[Customer]) -> Result<()> {
    let mut w = csv::Writer::from_writer(file);
    w.write_record(rfm_core::output::CUSTOMERS_HEADER)?;
    for c in customers {
        w.write_record([
            c.customer_id.as_str(),
            &c.recency.to_string(),
            &c.frequency.to_string(),
            &c.monetary_text(),
            &format_timestamp(c.first_purchase),
            &format_timestamp(c.last_purchase),
            &c.country,
            &c.r.to_string(),
            &c.f.to_string(),
            &c.m.to_string(),
            &c.rfm_score(),
            c.segment.name(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// The Parquet schema of an export: the columns of `customers.csv`, typed.
pub fn parquet_schema() -> Schema {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    let time = |name: &str| Field::new(name, DataType::Timestamp(TimeUnit::Second, None), false);
    let score = |name: &str| Field::new(name, DataType::UInt8, false);
    Schema::new(vec![
        text("customer_id"),
        Field::new("recency", DataType::Int32, false),
        Field::new("frequency", DataType::Int64, false),
        Field::new(
            "monetary",
            DataType::Decimal128(MONETARY_PRECISION, MONETARY_SCALE),
            false,
        ),
        time("first_purchase"),
        time("last_purchase"),
        text("country"),
        score("r"),
        score("f"),
        score("m"),
        text("rfm_score"),
        text("segment"),
    ])
}

fn write_parquet(file: &mut File, customers: &[Customer]) -> Result<()> {
    let schema = Arc::new(parquet_schema());
    let batch = to_batch(schema.clone(), customers)?;
    let file = BufWriter::new(file);
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("rfm {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut writer = ArrowWriter::try_new(file, schema, Some(props))?;
    writer.write(&batch)?;
    writer.into_inner()?.flush()?;
    Ok(())
}

/// One column's values converted to its Parquet type; a value that does not
/// fit is an error naming the customer.
fn fitted<V, T>(customers: &[Customer], column: &str, value: fn(&Customer) -> V) -> Result<Vec<T>>
where
    V: Copy + std::fmt::Display,
    T: TryFrom<V>,
{
    customers
        .iter()
        .map(|c| {
            let v = value(c);
            T::try_from(v).map_err(|_| {
                anyhow::anyhow!(
                    "customer {}: {column} {v} does not fit the Parquet column",
                    c.customer_id
                )
            })
        })
        .collect()
}

fn to_batch(schema: Arc<Schema>, customers: &[Customer]) -> Result<RecordBatch> {
    let strings = |f: fn(&Customer) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(customers.iter().map(f)))
    };
    let times = |f: fn(&Customer) -> i64| -> ArrayRef {
        Arc::new(TimestampSecondArray::from_iter_values(
            customers.iter().map(f),
        ))
    };
    let scores = |f: fn(&Customer) -> u8| -> ArrayRef {
        Arc::new(UInt8Array::from_iter_values(customers.iter().map(f)))
    };
    // Monetary as published has 2 decimals: a whole number of cents.
    let cent = money::ONE / 10i128.pow(MONETARY_SCALE as u32);
    let monetary = Decimal128Array::from_iter_values(customers.iter().map(|c| c.monetary.0 / cent))
        .with_precision_and_scale(MONETARY_PRECISION, MONETARY_SCALE)?;
    let recency: Vec<i32> = fitted(customers, "recency", |c| c.recency)?;
    let frequency: Vec<i64> = fitted(customers, "frequency", |c| c.frequency)?;
    let columns: Vec<ArrayRef> = vec![
        strings(|c| &c.customer_id),
        Arc::new(Int32Array::from(recency)),
        Arc::new(Int64Array::from(frequency)),
        Arc::new(monetary),
        times(|c| c.first_purchase),
        times(|c| c.last_purchase),
        strings(|c| &c.country),
        scores(|c| c.r),
        scores(|c| c.f),
        scores(|c| c.m),
        Arc::new(StringArray::from_iter_values(
            customers.iter().map(Customer::rfm_score),
        )),
        strings(|c| c.segment.name()),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_name_picks_the_format() {
        assert_eq!(format_of(Path::new("a/b.parquet")), ExportFormat::Parquet);
        assert_eq!(format_of(Path::new("b.PQ")), ExportFormat::Parquet);
        assert_eq!(format_of(Path::new("b.csv")), ExportFormat::Csv);
        assert_eq!(format_of(Path::new("b")), ExportFormat::Csv);
    }
}
