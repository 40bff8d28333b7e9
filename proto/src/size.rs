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

/// A byte size as the flags take it: `1GiB`, `512MiB`, `64KiB` when whole,
/// else the bytes.
pub fn format(n: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n > 0 && n.is_multiple_of(size) {
            return format!("{}{unit}", n / size);
        }
    }
    n.to_string()
}

/// A byte size for a person to read, to one decimal: `812B`, `3.4MiB`,
/// `1.2GiB`.
pub fn approx(n: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n >= size {
            return format!("{:.1}{unit}", n as f64 / size as f64);
        }
    }
    format!("{n}B")
}

/// The memory a finished job's result holds (`JobStatus.result_bytes`) as
/// `rfm jobs` and the Live page show it: [`approx`], or `-` while the job
/// runs or when it has no result (0).
pub fn held(result_bytes: u64) -> String {
    match result_bytes {
        0 => "-".into(),
        bytes => approx(bytes),
    }
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
        for n in [1 << 30, 3 << 29, 64 << 10, 1000, 0] {
            assert_eq!(parse(&format(n)), Some(n), "{}", format(n));
        }
        assert_eq!(format(1 << 30), "1GiB");
        assert_eq!(format(3 << 29), "1536MiB");
        assert_eq!(approx(812), "812B");
        assert_eq!(approx(1024), "1.0KiB");
        assert_eq!(approx(3_565_158), "3.4MiB");
        assert_eq!(approx(5 << 29), "2.5GiB");
        assert_eq!(held(0), "-", "a running job holds no result");
        assert_eq!(
            held(1280),
            "1.2KiB",
            "a tie rounds to even, as the Live page's script does"
        );
    }
}
