//! Converts the engine's [`rfm_core::RunOptions`] to and from the wire form,
//! so coordinator, workers and clients read the input the same way.

use rfm_core::date::{self, DateFormat};
use rfm_core::input::ParseOptions;
use rfm_core::{Error, RunOptions};

use crate::v1;

/// The wire form of run options.
pub fn to_proto(opts: &RunOptions) -> v1::RunOptions {
    v1::RunOptions {
        delimiter: opts.parse.delimiter as u32,
        decimal_comma: opts.parse.decimal_comma,
        date_format: opts
            .parse
            .date_format
            .as_ref()
            .map(|f| f.as_str().to_string()),
        as_of: opts.as_of.map(date::format_date),
        max_malformed_share: opts.max_malformed_share,
        chunk_size: opts.chunk_size,
    }
}

/// Run options from the wire, checked like the command line checks them.
pub fn from_proto(o: &v1::RunOptions) -> Result<RunOptions, Error> {
    let delimiter = u8::try_from(o.delimiter)
        .ok()
        .filter(|d| d.is_ascii() && *d != b'"' && *d != b'\n' && *d != b'\r')
        .ok_or_else(|| {
            Error::invalid_option(
                "--delimiter",
                format!("{} is not a usable delimiter byte", o.delimiter),
            )
        })?;
    let date_format = match &o.date_format {
        Some(f) => Some(DateFormat::new(f).map_err(|m| Error::invalid_option("--date-format", m))?),
        None => None,
    };
    let as_of = match &o.as_of {
        Some(t) => Some(date::parse_date(t).ok_or_else(|| {
            Error::invalid_option(
                "--as-of",
                format!("{t:?} is not a date of the form YYYY-MM-DD"),
            )
        })?),
        None => None,
    };
    if !(0.0..=1.0).contains(&o.max_malformed_share) {
        return Err(Error::invalid_option(
            "--max-malformed-share",
            format!(
                "{} is not a fraction between 0 and 1",
                o.max_malformed_share
            ),
        ));
    }
    if o.chunk_size == 0 {
        return Err(Error::invalid_option(
            "--chunk-size",
            "must be a positive byte size",
        ));
    }
    Ok(RunOptions {
        parse: ParseOptions {
            delimiter,
            decimal_comma: o.decimal_comma,
            date_format,
        },
        as_of,
        max_malformed_share: o.max_malformed_share,
        chunk_size: o.chunk_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip() {
        let opts = RunOptions {
            parse: ParseOptions {
                delimiter: b';',
                decimal_comma: true,
                date_format: Some(DateFormat::new("%d/%m/%Y %H:%M").unwrap()),
            },
            as_of: date::parse_date("2011-12-10"),
            max_malformed_share: 0.05,
            chunk_size: 1234,
        };
        let back = from_proto(&to_proto(&opts)).unwrap();
        assert_eq!(back.parse, opts.parse);
        assert_eq!(back.as_of, opts.as_of);
        assert_eq!(back.max_malformed_share, opts.max_malformed_share);
        assert_eq!(back.chunk_size, opts.chunk_size);
    }

    #[test]
    fn bad_values_name_the_flag() {
        let mut o = to_proto(&RunOptions::default());
        o.as_of = Some("tomorrow".into());
        assert!(from_proto(&o).unwrap_err().to_string().contains("--as-of"));
    }
}
