//! Turns command-line input options into the engine's [`RunOptions`],
//! naming the flag at fault when a value is bad.

use rfm_core::date::{self, DateFormat};
use rfm_core::input::ParseOptions;
use rfm_core::{Error, RunOptions};

use crate::cli::InputArgs;

/// Reads a byte size: a number with an optional KiB/MiB/GiB (or K/M/G) suffix.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

pub fn run_options(a: &InputArgs) -> Result<RunOptions, Error> {
    let delimiter = ParseOptions::parse_delimiter(&a.delimiter)?;
    let date_format = match &a.date_format {
        Some(f) => Some(DateFormat::new(f).map_err(|m| Error::invalid_option("--date-format", m))?),
        None => None,
    };
    let as_of = match &a.as_of {
        Some(t) => Some(date::parse_date(t).ok_or_else(|| {
            Error::invalid_option(
                "--as-of",
                format!("{t:?} is not a date of the form YYYY-MM-DD"),
            )
        })?),
        None => None,
    };
    if !(0.0..=1.0).contains(&a.max_malformed_share) {
        return Err(Error::invalid_option(
            "--max-malformed-share",
            format!(
                "{} is not a fraction between 0 and 1",
                a.max_malformed_share
            ),
        ));
    }
    let chunk_size = parse_size(&a.chunk_size)
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            Error::invalid_option(
                "--chunk-size",
                format!(
                    "{:?} is not a positive byte size (e.g. 67108864 or 64MiB)",
                    a.chunk_size
                ),
            )
        })?;
    Ok(RunOptions {
        parse: ParseOptions {
            delimiter,
            decimal_comma: a.decimal_comma,
            date_format,
        },
        as_of,
        max_malformed_share: a.max_malformed_share,
        chunk_size,
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
