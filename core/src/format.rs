//! Input formats: which reader a file or URL needs, chosen from its name
//! (extension, URL scheme) unless `--format` overrides it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How an input's bytes are turned into records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InputFormat {
    /// Delimited text, split into byte ranges.
    #[default]
    Csv,
    /// Gzip-compressed delimited text, read as a stream (one task per file).
    CsvGzip,
    /// Zstandard-compressed delimited text, read as a stream (one task per file).
    CsvZstd,
    /// Apache Parquet; row groups are the tasks.
    Parquet,
    /// An Excel workbook (`.xlsx`, `.xls`); row ranges of sheets are the tasks.
    Excel,
}

/// Where an input lives, from its spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// A local path (file, directory or glob).
    Local,
    /// `s3://bucket/key` or `s3://bucket/prefix/*.csv`.
    S3,
    /// `http://` or `https://` (read with range requests).
    Http,
}

impl Location {
    /// Where `spec` points, from its URL scheme (case-insensitive).
    pub fn of(spec: &str) -> Location {
        let lower = spec.get(..8).unwrap_or(spec).to_ascii_lowercase();
        if lower.starts_with("s3://") {
            Location::S3
        } else if lower.starts_with("http://") || lower.starts_with("https://") {
            Location::Http
        } else {
            Location::Local
        }
    }
}

impl InputFormat {
    /// Every format, in the order `--format` lists them.
    pub const ALL: [InputFormat; 5] = [
        InputFormat::Csv,
        InputFormat::CsvGzip,
        InputFormat::CsvZstd,
        InputFormat::Parquet,
        InputFormat::Excel,
    ];

    /// The format a file or object name implies: its extension, ignoring
    /// case and any URL query; anything unknown is CSV (as `.txt`, `.tsv`).
    pub fn detect(name: &str) -> InputFormat {
        let name = name.split(['?', '#']).next().unwrap_or(name);
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".gz") || lower.ends_with(".gzip") {
            InputFormat::CsvGzip
        } else if lower.ends_with(".zst") || lower.ends_with(".zstd") {
            InputFormat::CsvZstd
        } else if lower.ends_with(".parquet") || lower.ends_with(".pq") {
            InputFormat::Parquet
        } else if lower.ends_with(".xlsx") || lower.ends_with(".xlsm") || lower.ends_with(".xls") {
            InputFormat::Excel
        } else {
            InputFormat::Csv
        }
    }

    /// The names a directory input takes: every supported format's usual
    /// extension (`.csv`, `.csv.gz`, `.csv.zst`, `.parquet`, `.xlsx`,
    /// `.xls`, any case); a hidden name (a leading `.`) never.
    pub const DIRECTORY_EXTENSIONS: [&'static str; 6] =
        [".csv", ".csv.gz", ".csv.zst", ".parquet", ".xlsx", ".xls"];

    /// Whether a directory input takes the file `name` (see
    /// [`InputFormat::DIRECTORY_EXTENSIONS`]).
    pub fn taken_from_directory(name: &std::ffi::OsStr) -> bool {
        let name = name.to_string_lossy().to_ascii_lowercase();
        !name.starts_with('.')
            && InputFormat::DIRECTORY_EXTENSIONS
                .iter()
                .any(|ext| name.len() > ext.len() && name.ends_with(ext))
    }

    /// `forced` when given (`--format`), else [`InputFormat::detect`].
    pub fn choose(name: &str, forced: Option<InputFormat>) -> InputFormat {
        forced.unwrap_or_else(|| InputFormat::detect(name))
    }

    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Csv => "csv",
            InputFormat::CsvGzip => "csv.gz",
            InputFormat::CsvZstd => "csv.zst",
            InputFormat::Parquet => "parquet",
            InputFormat::Excel => "xlsx",
        }
    }

    /// Whether the input can be split into byte ranges read independently.
    pub fn splits_by_bytes(self) -> bool {
        self == InputFormat::Csv
    }
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for InputFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "csv" | "tsv" | "txt" => Ok(InputFormat::Csv),
            "csv.gz" | "gz" | "gzip" => Ok(InputFormat::CsvGzip),
            "csv.zst" | "zst" | "zstd" => Ok(InputFormat::CsvZstd),
            "parquet" => Ok(InputFormat::Parquet),
            "xlsx" | "xls" | "excel" => Ok(InputFormat::Excel),
            _ => Err(format!(
                "{text:?} is not an input format (use one of: {})",
                InputFormat::ALL.map(InputFormat::name).join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_choose_formats() {
        assert_eq!(InputFormat::detect("a/b.CSV"), InputFormat::Csv);
        assert_eq!(InputFormat::detect("day.csv.gz"), InputFormat::CsvGzip);
        assert_eq!(InputFormat::detect("day.csv.zst"), InputFormat::CsvZstd);
        assert_eq!(
            InputFormat::detect("s3://b/t.parquet"),
            InputFormat::Parquet
        );
        assert_eq!(
            InputFormat::detect("Online Retail.xlsx"),
            InputFormat::Excel
        );
        assert_eq!(
            InputFormat::detect("https://h/x.xls?sig=1"),
            InputFormat::Excel
        );
        assert_eq!(InputFormat::detect("export.txt"), InputFormat::Csv);
        assert_eq!(
            InputFormat::choose("x.csv", Some(InputFormat::Parquet)),
            InputFormat::Parquet
        );
    }

    #[test]
    fn a_directory_takes_every_format_and_no_hidden_file() {
        for name in [
            "a.csv",
            "B.CSV",
            "day.csv.gz",
            "day.csv.zst",
            "t.parquet",
            "Book.xlsx",
            "old.xls",
        ] {
            assert!(InputFormat::taken_from_directory(name.as_ref()), "{name}");
        }
        for name in [
            ".hidden.csv",
            ".csv",
            "notes.txt",
            "a.json",
            "x.gz",
            "README",
        ] {
            assert!(!InputFormat::taken_from_directory(name.as_ref()), "{name}");
        }
    }

    #[test]
    fn every_name_parses_back_and_unknown_names_say_what_is_accepted() {
        for f in InputFormat::ALL {
            assert_eq!(f.name().parse::<InputFormat>(), Ok(f));
        }
        let err = "json".parse::<InputFormat>().unwrap_err();
        assert!(err.contains("csv, csv.gz, csv.zst, parquet, xlsx"), "{err}");
    }

    #[test]
    fn schemes_choose_locations() {
        assert_eq!(Location::of("S3://bucket/k.csv"), Location::S3);
        assert_eq!(Location::of("https://h/k.csv"), Location::Http);
        assert_eq!(Location::of("http://h/k.csv"), Location::Http);
        assert_eq!(Location::of("./s3:/k.csv"), Location::Local);
        assert_eq!(Location::of("data/x.csv"), Location::Local);
    }
}
