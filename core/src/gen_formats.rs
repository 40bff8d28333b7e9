//! `rfm gen` in each input format: the rows of [`crate::gen`]'s CSV, written
//! as gzip or zstd compressed CSV, or as Parquet with typed columns (text for
//! invoice, stock code, description, customer and country; int64 quantity;
//! timestamp (seconds) date; decimal(18, 4) price; a missing customer is
//! null). So benchmarks and tests make their own inputs in every format.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Decimal128Builder, Int64Builder, RecordBatch, StringBuilder, TimestampSecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::format::InputFormat;
use crate::gen::{generate_with, GenOptions};

/// Rows per Parquet row group of generated files.
pub const GEN_ROW_GROUP_ROWS: usize = 128 * 1024;
/// Scale of the generated Parquet price column.
const PRICE_SCALE: u32 = 4;
/// Decompressed bytes per zstd frame.
const ZSTD_FRAME: usize = 16 << 20;

/// Writes the generated rows in `format` (CSV for anything not listed).
pub fn generate_as(
    rows: u64,
    seed: u64,
    options: GenOptions,
    format: InputFormat,
    out: impl Write + Send,
) -> std::io::Result<()> {
    match format {
        InputFormat::CsvGzip => {
            let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
            generate_with(rows, seed, options, &mut gz)?;
            gz.finish()?.flush()
        }
        InputFormat::CsvZstd => {
            let mut zst = ZstdFrames {
                out,
                pending: Vec::new(),
            };
            generate_with(rows, seed, options, &mut zst)?;
            zst.frame()?;
            zst.out.flush()
        }
        InputFormat::Parquet => {
            let mut sink = ParquetSink::new(out)?;
            generate_with(rows, seed, options, &mut sink)?;
            sink.finish()
        }
        InputFormat::Csv | InputFormat::Excel => generate_with(rows, seed, options, out),
    }
}

/// A writer of zstd frames of [`ZSTD_FRAME`] bytes each (a valid zstd stream).
struct ZstdFrames<W: Write> {
    out: W,
    pending: Vec<u8>,
}

impl<W: Write> ZstdFrames<W> {
    fn frame(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let frame = ruzstd::encoding::compress_to_vec(
            &self.pending[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        self.pending.clear();
        self.out.write_all(&frame)
    }
}

impl<W: Write> Write for ZstdFrames<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= ZSTD_FRAME {
            self.frame()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The schema of generated Parquet files.
pub fn gen_parquet_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("InvoiceNo", DataType::Utf8, false),
        Field::new("StockCode", DataType::Utf8, false),
        Field::new("Description", DataType::Utf8, false),
        Field::new("Quantity", DataType::Int64, false),
        Field::new(
            "InvoiceDate",
            DataType::Timestamp(TimeUnit::Second, None),
            false,
        ),
        Field::new(
            "UnitPrice",
            DataType::Decimal128(18, PRICE_SCALE as i8),
            false,
        ),
        Field::new("CustomerID", DataType::Utf8, true),
        Field::new("Country", DataType::Utf8, false),
    ]))
}

/// Turns the generator's CSV lines into Parquet row groups.
struct ParquetSink<W: Write + Send> {
    writer: ArrowWriter<W>,
    pending: Vec<u8>,
    header_seen: bool,
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// ISO-8859-1 bytes (the generator's descriptions) as text.
fn latin1(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => b.iter().map(|&c| c as char).collect(),
    }
}

impl<W: Write + Send> ParquetSink<W> {
    fn new(out: W) -> std::io::Result<Self> {
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(GEN_ROW_GROUP_ROWS))
            .build();
        let writer = ArrowWriter::try_new(out, gen_parquet_schema(), Some(props)).map_err(io)?;
        Ok(ParquetSink {
            writer,
            pending: Vec::new(),
            header_seen: false,
        })
    }

    /// Converts the complete lines of `pending` into a batch and writes it.
    fn convert(&mut self, all: bool) -> std::io::Result<()> {
        let upto = if all {
            self.pending.len()
        } else {
            match memchr::memrchr(b'\n', &self.pending) {
                Some(i) => i + 1,
                None => return Ok(()),
            }
        };
        let mut lines = &self.pending[..upto];
        if !self.header_seen {
            let Some(end) = memchr::memchr(b'\n', lines) else {
                return Ok(());
            };
            lines = &lines[end + 1..];
            self.header_seen = true;
        }
        let batch = to_batch(lines)?;
        if batch.num_rows() > 0 {
            self.writer.write(&batch).map_err(io)?;
        }
        self.pending.drain(..upto);
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.convert(true)?;
        let mut out = self.writer.into_inner().map_err(io)?;
        out.flush()
    }
}

impl<W: Write + Send> Write for ParquetSink<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= 16 << 20 {
            self.convert(false)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Generated CSV lines (no header) as a typed batch.
fn to_batch(lines: &[u8]) -> std::io::Result<RecordBatch> {
    let mut invoice = StringBuilder::new();
    let mut stock = StringBuilder::new();
    let mut description = StringBuilder::new();
    let mut quantity = Int64Builder::new();
    let mut date = TimestampSecondBuilder::new();
    let mut price = Decimal128Builder::new();
    let mut customer = StringBuilder::new();
    let mut country = StringBuilder::new();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(lines);
    let unit = 10i128.pow(crate::money::SCALE - PRICE_SCALE);
    for record in reader.byte_records() {
        let r = record.map_err(io)?;
        let text = |i: usize| latin1(r.get(i).unwrap_or_default());
        let bad = |what: &str, i: usize| io(format!("generated {what} {:?}", text(i)));
        invoice.append_value(text(0));
        stock.append_value(text(1));
        description.append_value(text(2));
        quantity.append_value(
            crate::parse::parse_quantity(r.get(3).unwrap_or_default())
                .ok_or_else(|| bad("quantity", 3))?,
        );
        date.append_value(
            crate::date::parse_auto(r.get(4).unwrap_or_default()).ok_or_else(|| bad("date", 4))?,
        );
        let money = crate::money::parse_price(r.get(5).unwrap_or_default(), b'.')
            .filter(|m| m.0 % unit == 0)
            .ok_or_else(|| bad("price", 5))?;
        price.append_value(money.0 / unit);
        match r.get(6).unwrap_or_default() {
            b"" => customer.append_null(),
            c => customer.append_value(latin1(c)),
        }
        country.append_value(text(7));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(invoice.finish()),
        Arc::new(stock.finish()),
        Arc::new(description.finish()),
        Arc::new(quantity.finish()),
        Arc::new(date.finish()),
        Arc::new(
            price
                .finish()
                .with_precision_and_scale(18, PRICE_SCALE as i8)
                .map_err(io)?,
        ),
        Arc::new(customer.finish()),
        Arc::new(country.finish()),
    ];
    RecordBatch::try_new(gen_parquet_schema(), columns).map_err(io)
}
