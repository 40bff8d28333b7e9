//! Reads byte sizes given on the command line: a number with an optional
//! KiB/MiB/GiB (or K/M/G) suffix, e.g. `67108864` or `64MiB`.

/// Parses a byte size; `None` if the text is not one.
pub fn parse(text: &str) -> Option<u64> {
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

/// A clap value parser for byte sizes of at least one byte.
pub fn clap_parse_positive(text: &str) -> Result<u64, String> {
    match parse(text) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "{text:?} is not a positive byte size (e.g. 1048576 or 1MiB)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse("64MiB"), Some(64 << 20));
        assert_eq!(parse("1k"), Some(1024));
        assert_eq!(parse("12"), Some(12));
        assert_eq!(parse("lots"), None);
        assert!(clap_parse_positive("0").is_err());
    }
}
