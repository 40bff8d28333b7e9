//! Decompression limits of an `.xlsx` workbook (a zip of XML parts): a
//! small file must not expand into more than the engine means to parse.
//!
//! Before calamine reads a workbook, its zip central directory is checked:
//! the declared uncompressed sizes of all entries together must stay within
//! `--max-decompressed-size` (default 4 GiB), and an entry of more than
//! 1 MiB must not expand more than `--max-compression-ratio` times (default
//! 100; real sheets expand 5 to 30 times, a zip bomb about 1000). The zip
//! reader then bounds each entry's output by its declared size (a part that
//! inflates past it fails the read), so the check holds while reading too.
//! `.xls` files are not compressed and need no check.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use crate::error::{Error, Result};
use crate::input::ParseOptions;

/// `--max-decompressed-size`'s default: 4 GiB of uncompressed parts.
pub const DEFAULT_MAX_DECOMPRESSED_SIZE: u64 = 4 << 30;

/// `--max-compression-ratio`'s default.
pub const DEFAULT_MAX_COMPRESSION_RATIO: u64 = 100;

/// Entries up to this size are not held to the ratio (tiny parts of
/// repeated markup expand far more than any sheet, harmlessly).
const RATIO_EXEMPT_SIZE: u64 = 1 << 20;

/// A byte count for messages: `5.0 GiB`, `12.3 MiB`, `900 bytes`.
pub fn size_text(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size {
            return format!("{:.1} {unit}", n as f64 / size as f64);
        }
    }
    format!("{n} bytes")
}

fn too_large(path: &Path, entry: &str, message: String) -> Error {
    Error::WorkbookTooLarge {
        path: path.to_path_buf(),
        entry: entry.to_string(),
        message,
    }
}

/// Checks the declared sizes of the workbook's zip entries against the
/// limits in `parse`; a zip that cannot be read is left to calamine's
/// error.
pub fn check_xlsx(file: File, path: &Path, parse: &ParseOptions) -> Result<()> {
    let Ok(mut zip) = zip::ZipArchive::new(BufReader::with_capacity(1 << 16, file)) else {
        return Ok(());
    };
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let Ok(entry) = zip.by_index_raw(i) else {
            continue;
        };
        let name = entry
            .name()
            .map_or_else(|_| format!("#{i}"), |n| n.to_string());
        let (size, packed) = (entry.size(), entry.compressed_size());
        total = total.saturating_add(size);
        if total > parse.max_decompressed_size {
            return Err(too_large(
                path,
                &name,
                format!(
                    "expands to {} and the workbook's parts so far to {}, over the limit of \
                     {} of uncompressed workbook content (--max-decompressed-size); raise \
                     --max-decompressed-size if the workbook is genuine",
                    size_text(size),
                    size_text(total),
                    size_text(parse.max_decompressed_size)
                ),
            ));
        }
        let ratio = size / packed.max(1);
        if size > RATIO_EXEMPT_SIZE && ratio > parse.max_compression_ratio {
            return Err(too_large(
                path,
                &name,
                format!(
                    "expands {ratio} times ({} compressed to {}), over the cap of {} \
                     (--max-compression-ratio): a zip bomb, or a sheet of extremely repetitive \
                     rows; raise --max-compression-ratio if the workbook is genuine",
                    size_text(packed),
                    size_text(size),
                    parse.max_compression_ratio
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_their_unit() {
        assert_eq!(size_text(900), "900 bytes");
        assert_eq!(size_text(3 << 20), "3.0 MiB");
        assert_eq!(size_text(5 << 30), "5.0 GiB");
    }
}
