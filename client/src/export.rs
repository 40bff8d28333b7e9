//! `rfm export`: every customer of a run, as CSV (the columns of
//! `customers.csv`) or as Parquet with typed columns, written under an
//! unguessable temporary name and renamed into place so a reader never sees
//! half a file (see `rfm_core::atomic`).

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use arrow::array::{
    ArrayRef, Decimal128Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampSecondArray, UInt8Array,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rfm_store::CustomerRecord;

use crate::cli::{ExportArgs, ExportFormat};
use crate::cluster::JobError;
use crate::results;

/// Precision and scale of `monetary` in Parquet: cents, up to 36 digits before the point.
const MONETARY_PRECISION: u8 = 38;
const MONETARY_SCALE: i8 = 2;

pub fn export(args: ExportArgs) -> Result<()> {
    let format = args.format.unwrap_or_else(|| format_of(&args.out));
    let run = results::load(&args.from)?;
    write_atomically(&args.out, |tmp| match format {
        ExportFormat::Csv => write_csv(tmp, &run.customers),
        ExportFormat::Parquet => write_parquet(tmp, &run.customers),
    })?;
    eprintln!(
        "{} customers of run {} written to {} ({})",
        run.customers.len(),
        run.run_id,
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

fn write_csv(file: &mut File, customers: &[CustomerRecord]) -> Result<()> {
    let mut w = csv::Writer::from_writer(file);
    w.write_record(rfm_core::output::CUSTOMERS_HEADER)?;
    for c in customers {
        w.write_record([
            c.customer_id.as_str(),
            &c.recency.to_string(),
            &c.frequency.to_string(),
            &c.monetary,
            &c.first_purchase,
            &c.last_purchase,
            &c.country,
            &c.r.to_string(),
            &c.f.to_string(),
            &c.m.to_string(),
            &c.rfm_score,
            &c.segment,
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

fn write_parquet(file: &mut File, customers: &[CustomerRecord]) -> Result<()> {
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

fn to_batch(schema: Arc<Schema>, customers: &[CustomerRecord]) -> Result<RecordBatch> {
    let strings = |f: fn(&CustomerRecord) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(customers.iter().map(f)))
    };
    let times = |f: fn(&CustomerRecord) -> &str| -> Result<ArrayRef> {
        let seconds = customers
            .iter()
            .map(|c| {
                let text = f(c);
                rfm_core::date::parse_auto(text.as_bytes()).ok_or_else(|| {
                    anyhow!("customer {}: unreadable timestamp {text:?}", c.customer_id)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(TimestampSecondArray::from(seconds)))
    };
    let scores = |f: fn(&CustomerRecord) -> i16| -> ArrayRef {
        Arc::new(UInt8Array::from_iter_values(
            customers.iter().map(|c| f(c).clamp(0, 5) as u8),
        ))
    };
    let cents = customers
        .iter()
        .map(|c| {
            cents_of(&c.monetary).ok_or_else(|| {
                anyhow!(
                    "customer {}: unreadable monetary {:?}",
                    c.customer_id,
                    c.monetary
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let monetary = Decimal128Array::from(cents)
        .with_precision_and_scale(MONETARY_PRECISION, MONETARY_SCALE)?;
    let columns: Vec<ArrayRef> = vec![
        strings(|c| &c.customer_id),
        Arc::new(Int32Array::from_iter_values(
            customers.iter().map(|c| c.recency),
        )),
        Arc::new(Int64Array::from_iter_values(
            customers.iter().map(|c| c.frequency),
        )),
        Arc::new(monetary),
        times(|c| &c.first_purchase)?,
        times(|c| &c.last_purchase)?,
        strings(|c| &c.country),
        scores(|c| c.r),
        scores(|c| c.f),
        scores(|c| c.m),
        strings(|c| &c.rfm_score),
        strings(|c| &c.segment),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Hundredths of a decimal with at most two places (`-12.5` → -1250).
pub(crate) fn cents_of(text: &str) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || fraction.len() > 2 || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let whole: i128 = whole.parse().ok()?;
    let fraction: i128 = format!("{fraction:0<2}").parse().ok()?;
    let value = whole.checked_mul(100)?.checked_add(fraction)?;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_are_exact() {
        assert_eq!(cents_of("117092.34"), Some(11_709_234));
        assert_eq!(cents_of("-12.5"), Some(-1_250));
        assert_eq!(cents_of("0.00"), Some(0));
        assert_eq!(cents_of("7"), Some(700));
        assert_eq!(cents_of("1.234"), None);
        assert_eq!(cents_of("1,23"), None);
        assert_eq!(cents_of(""), None);
        assert_eq!(cents_of("-"), None);
    }

    #[test]
    fn the_file_name_picks_the_format() {
        assert_eq!(format_of(Path::new("a/b.parquet")), ExportFormat::Parquet);
        assert_eq!(format_of(Path::new("b.PQ")), ExportFormat::Parquet);
        assert_eq!(format_of(Path::new("b.csv")), ExportFormat::Csv);
        assert_eq!(format_of(Path::new("b")), ExportFormat::Csv);
    }
}
