//! Converts the engine's [`rfm_core::RunOptions`] to and from the wire form,
//! so coordinator, workers and clients read the input the same way.

use rfm_core::date;
use rfm_core::engine::RunSettings;
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
        until: opts.parse.until.map(date::format_date),
        max_malformed_share: opts.max_malformed_share,
        chunk_size: opts.chunk_size,
        max_record_size: opts.parse.max_record_size,
        no_cache: false,
        format: opts.parse.format.map(|f| f.name().to_string()),
        sheets: opts.parse.sheets.clone(),
        max_decompressed_size: opts.parse.max_decompressed_size,
        max_compression_ratio: opts.parse.max_compression_ratio,
    }
}

/// Run options from the wire, checked like the command line checks them.
pub fn from_proto(o: &v1::RunOptions) -> Result<RunOptions, Error> {
    let delimiter = u8::try_from(o.delimiter).map_err(|_| {
        Error::invalid_option(
            "--delimiter",
            format!("{} is not a usable delimiter byte", o.delimiter),
        )
    })?;
    RunSettings {
        delimiter,
        decimal_comma: o.decimal_comma,
        date_format: o.date_format.as_deref(),
        as_of: o.as_of.as_deref(),
        until: o.until.as_deref(),
        max_malformed_share: o.max_malformed_share,
        chunk_size: o.chunk_size,
        max_record_size: o.max_record_size,
    }
    .check()
    .and_then(|mut opts| {
        opts.parse.format = o
            .format
            .as_deref()
            .map(|f| f.parse().map_err(|m| Error::invalid_option("--format", m)))
            .transpose()?;
        opts.parse.sheets = o.sheets.clone();
        // Zero: a sender that does not set the limits; the defaults apply.
        if o.max_decompressed_size > 0 {
            opts.parse.max_decompressed_size = o.max_decompressed_size;
        }
        if o.max_compression_ratio > 0 {
            opts.parse.max_compression_ratio = o.max_compression_ratio;
        }
        Ok(opts)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rfm_core::date::DateFormat;
    use rfm_core::input::ParseOptions;

    #[test]
    fn options_round_trip() {
        let opts = RunOptions {
            parse: ParseOptions {
                delimiter: b';',
                decimal_comma: true,
                date_format: Some(DateFormat::new("%d/%m/%Y %H:%M").unwrap()),
                max_record_size: 4096,
                until: date::parse_date("2011-06-30"),
                format: Some(rfm_core::format::InputFormat::Parquet),
                sheets: vec!["Year 2009-2010".into(), "Year 2010-2011".into()],
                max_decompressed_size: 1 << 20,
                max_compression_ratio: 7,
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
