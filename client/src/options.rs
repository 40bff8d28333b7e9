//! Turns command-line input options into the engine's [`RunOptions`],
//! naming the flag at fault when a value is bad.

use rfm_core::engine::RunSettings;
use rfm_core::input::ParseOptions;
use rfm_core::{Error, RunOptions};

use crate::cli::InputArgs;

/// Reads a byte size: a number with an optional KiB/MiB/GiB (or K/M/G) suffix.
pub fn parse_size(text: &str) -> Option<u64> {
    rfm_proto::size::parse(text)
}

pub fn run_options(a: &InputArgs) -> Result<RunOptions, Error> {
    let chunk_size = match &a.chunk_size {
        None => rfm_core::engine::AUTO_CHUNK_SIZE,
        Some(text) => parse_size(text).filter(|&n| n > 0).ok_or_else(|| {
            Error::invalid_option(
                "--chunk-size",
                format!("{text:?} is not a positive byte size (e.g. 67108864 or 64MiB)"),
            )
        })?,
    };
    let max_record_size = parse_size(&a.max_record_size).ok_or_else(|| {
        Error::invalid_option(
            "--max-record-size",
            format!(
                "{:?} is not a positive byte size (e.g. 1048576 or 1MiB)",
                a.max_record_size
            ),
        )
    })?;
    let max_decompressed_size = parse_size(&a.max_decompressed_size)
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            Error::invalid_option(
                "--max-decompressed-size",
                format!(
                    "{:?} is not a positive byte size (e.g. 4GiB)",
                    a.max_decompressed_size
                ),
            )
        })?;
    if a.max_compression_ratio == 0 {
        return Err(Error::invalid_option(
            "--max-compression-ratio",
            "0 is not a ratio: give a positive number (default 100)",
        ));
    }
    RunSettings {
        delimiter: ParseOptions::parse_delimiter(&a.delimiter)?,
        decimal_comma: a.decimal_comma,
        date_format: a.date_format.as_deref(),
        as_of: a.as_of.as_deref(),
        until: a.until.as_deref(),
        max_malformed_share: a.max_malformed_share,
        chunk_size,
        max_record_size,
    }
    .check()
    .map(|mut opts| {
        opts.parse.format = a.format;
        opts.parse.sheets = a.sheets.clone();
        opts.parse.max_decompressed_size = max_decompressed_size;
        opts.parse.max_compression_ratio = a.max_compression_ratio;
        opts
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("2k"), Some(2048));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("5 parsecs"), None);
    }
}
