//! How an input is read and scored: the flags `rfm run`, `rfm submit`,
//! `rfm watch` and `rfm-coordinator --watch` share (format, delimiter,
//! decimal comma, date format, as-of, until, malformed share, record size,
//! sheets, workbook expansion limits), and their translation into the engine's [`RunOptions`], naming
//! the flag at fault when a value is bad.

use clap::Args;
use rfm_core::engine::RunSettings;
use rfm_core::input::ParseOptions;
use rfm_core::{Error, RunOptions};

/// The flags of how an input is read (flattened into each command's).
#[derive(Args, Debug, Clone)]
pub struct ReadArgs {
    /// How the input is read: csv, csv.gz, csv.zst, parquet or xlsx (default: from each file's
    /// extension; anything unknown is csv).
    #[arg(long, value_parser = parse_input_format)]
    pub format: Option<rfm_core::format::InputFormat>,
    /// Field delimiter: one character, or `tab`.
    #[arg(long, default_value = ",")]
    pub delimiter: String,
    /// Prices use ',' as the decimal mark (European exports).
    #[arg(long)]
    pub decimal_comma: bool,
    /// strftime format of InvoiceDate, e.g. '%d/%m/%Y %H:%M' (default: auto-detect the spec's forms).
    #[arg(long)]
    pub date_format: Option<String>,
    /// Reference date for recency, YYYY-MM-DD (default: the day after the latest purchase, or
    /// after --until).
    #[arg(long)]
    pub as_of: Option<String>,
    /// Point in time, YYYY-MM-DD: keep only purchases on or before this day (later ones are
    /// counted as "after --until"); the as-of becomes the next day unless given.
    #[arg(long)]
    pub until: Option<String>,
    /// Fail when malformed / lines read is greater than this fraction.
    #[arg(long, default_value_t = 0.01)]
    pub max_malformed_share: f64,
    /// Longest record (line) in bytes, e.g. 1MiB; a longer one is one malformed line.
    #[arg(long, default_value = "1MiB")]
    pub max_record_size: String,
    /// A sheet of an Excel workbook input to read (repeatable; default: every sheet).
    #[arg(long = "sheet", value_name = "NAME")]
    pub sheets: Vec<String>,
    /// Most bytes an .xlsx workbook's compressed parts may expand to, together, e.g. 8GiB (a zip
    /// bomb is refused before it is read).
    #[arg(long, default_value = "4GiB")]
    pub max_decompressed_size: String,
    /// Most times a large .xlsx part may expand (real sheets: 5 to 30; a zip bomb: about 1000).
    #[arg(long, default_value_t = rfm_core::excel::limits::DEFAULT_MAX_COMPRESSION_RATIO)]
    pub max_compression_ratio: u64,
}

fn parse_input_format(text: &str) -> Result<rfm_core::format::InputFormat, String> {
    text.parse()
}

impl ReadArgs {
    /// The engine's options, with `chunk_size` (`--chunk-size`'s text;
    /// `None` for the automatic size).
    pub fn run_options(&self, chunk_size: Option<&str>) -> Result<RunOptions, Error> {
        let chunk_size = match chunk_size {
            None => rfm_core::engine::AUTO_CHUNK_SIZE,
            Some(text) => rfm_proto::size::parse(text)
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    Error::invalid_option(
                        "--chunk-size",
                        format!("{text:?} is not a positive byte size (e.g. 67108864 or 64MiB)"),
                    )
                })?,
        };
        let max_record_size = rfm_proto::size::parse(&self.max_record_size).ok_or_else(|| {
            Error::invalid_option(
                "--max-record-size",
                format!(
                    "{:?} is not a positive byte size (e.g. 1048576 or 1MiB)",
                    self.max_record_size
                ),
            )
        })?;
        let max_decompressed_size = rfm_proto::size::parse(&self.max_decompressed_size)
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                Error::invalid_option(
                    "--max-decompressed-size",
                    format!(
                        "{:?} is not a positive byte size (e.g. 4GiB)",
                        self.max_decompressed_size
                    ),
                )
            })?;
        if self.max_compression_ratio == 0 {
            return Err(Error::invalid_option(
                "--max-compression-ratio",
                "0 is not a ratio: give a positive number (default 100)",
            ));
        }
        RunSettings {
            delimiter: ParseOptions::parse_delimiter(&self.delimiter)?,
            decimal_comma: self.decimal_comma,
            date_format: self.date_format.as_deref(),
            as_of: self.as_of.as_deref(),
            until: self.until.as_deref(),
            max_malformed_share: self.max_malformed_share,
            chunk_size,
            max_record_size,
        }
        .check()
        .map(|mut opts| {
            opts.parse.format = self.format;
            opts.parse.sheets = self.sheets.clone();
            opts.parse.max_decompressed_size = max_decompressed_size;
            opts.parse.max_compression_ratio = self.max_compression_ratio;
            opts
        })
    }
}
