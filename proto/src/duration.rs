//! Reads durations given on the command line: `200ms`, `2s`, `1.5s`, `1m`,
//! `1h`, `7d`, or a bare number of seconds.

use std::time::Duration;

/// Parses a duration; `None` if the text is not one.
pub fn parse(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

/// A clap value parser for durations.
pub fn clap_parse(text: &str) -> Result<Duration, String> {
    parse(text).ok_or_else(|| format!("{text:?} is not a duration (e.g. 200ms, 2s, 1.5s, 1m, 1h)"))
}

/// A clap value parser for durations that must be longer than zero.
pub fn clap_parse_positive(text: &str) -> Result<Duration, String> {
    match clap_parse(text)? {
        d if d.is_zero() => Err(format!(
            "{text:?} is zero; give a duration above 0 (e.g. 10s)"
        )),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse("200ms"), Some(Duration::from_millis(200)));
        assert_eq!(parse("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("7d"), Some(Duration::from_secs(7 * 86400)));
        assert_eq!(parse("soon"), None);
        assert_eq!(parse("-1s"), None);
        assert!(clap_parse_positive("0s").unwrap_err().contains("zero"));
        assert_eq!(clap_parse_positive("1s"), Ok(Duration::from_secs(1)));
    }
}
