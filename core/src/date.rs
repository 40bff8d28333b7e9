//! Naive timestamps: the spec's auto-detected date forms, user strftime formats,
//! calendar arithmetic and `YYYY-MM-DD HH:MM:SS` output.
//!
//! A timestamp is seconds since 1970-01-01 00:00:00 with no time zone; a date is
//! days since 1970-01-01.

use std::fmt::Write as _;

use crate::short_bytes::same_bytes;

/// Seconds since 1970-01-01 00:00:00 (naive local time).
pub type Timestamp = i64;
/// Days since 1970-01-01.
pub type Date = i32;

const SECS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> Date {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u32;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

/// `(year, month, day)` of days since 1970-01-01.
pub fn civil_from_days(days: Date) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i32 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// A checked timestamp from its parts, or `None` for a day, hour, minute or
/// second that does not exist.
pub fn timestamp(year: i32, month: u32, day: u32, h: u32, m: u32, s: u32) -> Option<Timestamp> {
    if !valid(year, month, day, h, m, s) {
        return None;
    }
    let days = days_from_civil(year, month, day) as i64;
    Some(days * SECS_PER_DAY + (h * 3600 + m * 60 + s) as i64)
}

/// Whether the day, hour, minute and second exist.
#[inline]
fn valid(year: i32, month: u32, day: u32, h: u32, m: u32, s: u32) -> bool {
    day_exists(year, month, day) && h <= 23 && m <= 59 && s <= 59
}

/// The calendar date of a timestamp.
pub fn date_of(ts: Timestamp) -> Date {
    ts.div_euclid(SECS_PER_DAY) as Date
}

/// `YYYY-MM-DD HH:MM:SS`.
pub fn format_timestamp(ts: Timestamp) -> String {
    let (y, mo, d) = civil_from_days(date_of(ts));
    let secs = ts.rem_euclid(SECS_PER_DAY);
    let mut s = String::with_capacity(19);
    let _ = write!(
        s,
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    s
}

/// `YYYY-MM-DD`.
pub fn format_date(date: Date) -> String {
    let (y, m, d) = civil_from_days(date);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses `YYYY-MM-DD` (used for `--as-of`).
pub fn parse_date(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = digits(&b[0..4])? as i32;
    let m = digits(&b[5..7])?;
    let d = digits(&b[8..10])?;
    timestamp(y, m, d, 0, 0, 0).map(date_of)
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() {
        return None;
    }
    let mut v = 0u32;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u32;
    }
    Some(v)
}

/// Reads 1..=max digits starting at `*i`.
#[inline]
fn take_digits(b: &[u8], i: &mut usize, min: usize, max: usize) -> Option<u32> {
    let start = *i;
    let mut v = 0u32;
    while *i < b.len() && *i - start < max {
        let d = b[*i].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        v = v * 10 + d as u32;
        *i += 1;
    }
    (*i - start >= min).then_some(v)
}

#[inline]
fn expect(b: &[u8], i: &mut usize, c: u8) -> Option<()> {
    if *i < b.len() && b[*i] == c {
        *i += 1;
        Some(())
    } else {
        None
    }
}

/// Auto-detects one of the spec's forms:
/// `YYYY-MM-DD[ T]HH:MM[:SS]`, `M/D/YYYY H:MM[:SS]`, `M/D/YY H:MM`.
pub fn parse_auto(b: &[u8]) -> Option<Timestamp> {
    if b.len() >= 5 && b[4] == b'-' {
        // ISO: four-digit year, two-digit month, day, hour and minute.
        let mut i = 0;
        let y = take_digits(b, &mut i, 4, 4)?;
        expect(b, &mut i, b'-')?;
        let mo = take_digits(b, &mut i, 2, 2)?;
        expect(b, &mut i, b'-')?;
        let d = take_digits(b, &mut i, 2, 2)?;
        if i < b.len() && (b[i] == b' ' || b[i] == b'T') {
            i += 1;
        } else {
            return None;
        }
        let h = take_digits(b, &mut i, 2, 2)?;
        expect(b, &mut i, b':')?;
        let mi = take_digits(b, &mut i, 2, 2)?;
        let s = if i < b.len() {
            expect(b, &mut i, b':')?;
            take_digits(b, &mut i, 2, 2)?
        } else {
            0
        };
        if i != b.len() {
            return None;
        }
        return timestamp(y as i32, mo, d, h, mi, s);
    }
    parse_slash(b, false)
}

/// Reads a slash date `A/B/YYYY H:MM[:SS]` or `A/B/YY H:MM`: month first
/// (`A` is the month, the spec's reading) or, with `day_first`, day first.
pub fn parse_slash(b: &[u8], day_first: bool) -> Option<Timestamp> {
    let p = slash_parts(b)?;
    let (mo, d) = if day_first { (p.b, p.a) } else { (p.a, p.b) };
    timestamp(p.year, mo, d, p.h, p.mi, p.s)
}

/// The fields of a slash date, read before the calendar checks.
struct SlashParts {
    a: u32,
    b: u32,
    year: i32,
    h: u32,
    mi: u32,
    s: u32,
}

/// The fields of `A/B/YYYY H:MM[:SS]` or `A/B/YY H:MM` (`YY` is 20YY).
fn slash_parts(b: &[u8]) -> Option<SlashParts> {
    let day = slash_day(b)?;
    let (h, mi, s) = slash_time(&b[day.len..], day.seconds_allowed)?;
    Some(SlashParts {
        a: day.a,
        b: day.b,
        year: day.year,
        h,
        mi,
        s,
    })
}

/// The day of a slash date, `A/B/YYYY ` or `A/B/YY `: read up to and
/// including the space before its time, so that what it reads depends on
/// those bytes alone.
#[derive(Clone, Copy, Debug)]
struct SlashDay {
    a: u32,
    b: u32,
    year: i32,
    /// Whether the time may have seconds (a four-digit year).
    seconds_allowed: bool,
    /// The bytes read, the space included.
    len: usize,
}

fn slash_day(b: &[u8]) -> Option<SlashDay> {
    let mut i = 0;
    let a = take_digits(b, &mut i, 1, 2)?;
    expect(b, &mut i, b'/')?;
    let c = take_digits(b, &mut i, 1, 2)?;
    expect(b, &mut i, b'/')?;
    let ystart = i;
    let y = take_digits(b, &mut i, 2, 4)?;
    let (year, seconds_allowed) = match i - ystart {
        4 => (y as i32, true),
        2 => (2000 + y as i32, false),
        _ => return None,
    };
    expect(b, &mut i, b' ')?;
    Some(SlashDay {
        a,
        b: c,
        year,
        seconds_allowed,
        len: i,
    })
}

/// The time after a slash day, `H:MM[:SS]` (the seconds only when
/// `seconds_allowed`), as hour, minute and second before their checks.
fn slash_time(b: &[u8], seconds_allowed: bool) -> Option<(u32, u32, u32)> {
    let mut i = 0;
    let h = take_digits(b, &mut i, 1, 2)?;
    expect(b, &mut i, b':')?;
    let mi = take_digits(b, &mut i, 2, 2)?;
    let s = if seconds_allowed && i < b.len() {
        expect(b, &mut i, b':')?;
        take_digits(b, &mut i, 2, 2)?
    } else {
        0
    };
    (i == b.len()).then_some((h, mi, s))
}

/// Whether day `day` of month `month` exists in `year`.
fn day_exists(year: i32, month: u32, day: u32) -> bool {
    (1..=12).contains(&month) && day != 0 && day <= days_in_month(year, month)
}

/// A slash day with its two readings checked: the month-first one's date
/// (the spec's reading) and whether the day-first one exists.
#[derive(Clone, Copy, Debug)]
struct CheckedDay {
    /// The bytes of the day, its space included.
    len: usize,
    seconds_allowed: bool,
    month_first: Option<Date>,
    day_first: bool,
}

impl CheckedDay {
    fn of(day: SlashDay) -> CheckedDay {
        CheckedDay {
            len: day.len,
            seconds_allowed: day.seconds_allowed,
            month_first: day_exists(day.year, day.a, day.b)
                .then(|| days_from_civil(day.year, day.a, day.b)),
            day_first: day_exists(day.year, day.b, day.a),
        }
    }

    /// The timestamp (month first) and shape of this day at `time`, the
    /// text after the day's space.
    fn at(&self, time: &[u8]) -> (Option<Timestamp>, Shape) {
        let Some((h, mi, s)) = slash_time(time, self.seconds_allowed) else {
            return (None, Shape::Other);
        };
        let time_exists = h <= 23 && mi <= 59 && s <= 59;
        let month_first = self.month_first.filter(|_| time_exists);
        let shape = match (month_first.is_some(), time_exists && self.day_first) {
            (true, true) => Shape::Ambiguous,
            (true, false) => Shape::MonthFirst,
            (false, true) => Shape::DayFirst,
            (false, false) => Shape::Other,
        };
        let ts = month_first.map(|d| d as i64 * SECS_PER_DAY + (h * 3600 + mi * 60 + s) as i64);
        (ts, shape)
    }
}

/// Which of the auto-detected forms a date text has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `YYYY-MM-DD HH:MM[:SS]`, valid.
    Iso,
    /// A slash date valid month first only (`12/13/2010`).
    MonthFirst,
    /// A slash date valid both ways (`1/12/2010`: 12 January or 1 December).
    Ambiguous,
    /// A slash date valid day first only (`13/12/2010`): malformed without
    /// `--date-format`.
    DayFirst,
    /// None of the forms.
    Other,
}

/// The timestamp of an auto-detected date text (month first for slash
/// dates, as the spec reads them) and its [`Shape`].
pub fn parse_auto_shape(b: &[u8]) -> (Option<Timestamp>, Shape) {
    if b.len() >= 5 && b[4] == b'-' {
        let t = parse_auto(b);
        return (
            t,
            if t.is_some() {
                Shape::Iso
            } else {
                Shape::Other
            },
        );
    }
    match slash_day(b) {
        Some(day) => CheckedDay::of(day).at(&b[day.len..]),
        None => (None, Shape::Other),
    }
}

/// [`parse_auto_shape`] of texts read one after another: a slash date's day
/// is read and checked once for the texts that share it (the invoices of a
/// day), and only their times are read again.
#[derive(Debug, Default)]
pub struct AutoShapes {
    /// The last slash day read, its space included, and its readings.
    day_text: Vec<u8>,
    day: Option<CheckedDay>,
}

impl AutoShapes {
    /// [`parse_auto_shape`] of `b`.
    pub fn read(&mut self, b: &[u8]) -> (Option<Timestamp>, Shape) {
        if let Some(day) = &self.day {
            let n = day.len;
            if b.get(..n).is_some_and(|t| same_bytes(t, &self.day_text)) {
                return day.at(&b[n..]);
            }
        }
        if b.len() >= 5 && b[4] == b'-' {
            return parse_auto_shape(b);
        }
        let Some(day) = slash_day(b) else {
            return (None, Shape::Other);
        };
        let checked = CheckedDay::of(day);
        self.day_text.clear();
        self.day_text.extend_from_slice(&b[..day.len]);
        self.day = Some(checked);
        checked.at(&b[day.len..])
    }
}

/// The `--date-format` that reads a day-first date like `example`
/// (`13/12/2010 8:26` → `%d/%m/%Y %H:%M`).
pub fn day_first_format(example: &str) -> String {
    let mut parts = example.splitn(2, ' ');
    let day = parts.next().unwrap_or("");
    let time = parts.next().unwrap_or("");
    let year = if day.rsplit('/').next().is_some_and(|y| y.len() == 2) {
        "%y"
    } else {
        "%Y"
    };
    let secs = if time.matches(':').count() >= 2 {
        ":%S"
    } else {
        ""
    };
    format!("%d/%m/{year} %H:%M{secs}")
}

/// One piece of a user-supplied strftime format.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Year4,
    Year2,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Literal(u8),
}

/// A strftime-style date format given with `--date-format` (`%d/%m/%Y %H:%M`).
///
/// Supports `%Y %y %m %d %H %M %S %%` and `%T` (= `%H:%M:%S`); numbers other
/// than `%Y` take one or two digits, so `1/12/2010 8:26` matches `%d/%m/%Y %H:%M`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateFormat {
    text: String,
    pieces: Vec<Piece>,
}

impl DateFormat {
    /// Compiles a format, or says which directive is not supported.
    pub fn new(text: &str) -> Result<DateFormat, String> {
        let mut pieces = Vec::new();
        let mut chars = text.bytes();
        let (mut has_y, mut has_m, mut has_d) = (false, false, false);
        while let Some(c) = chars.next() {
            if c != b'%' {
                pieces.push(Piece::Literal(c));
                continue;
            }
            match chars.next() {
                Some(b'Y') => {
                    has_y = true;
                    pieces.push(Piece::Year4)
                }
                Some(b'y') => {
                    has_y = true;
                    pieces.push(Piece::Year2)
                }
                Some(b'm') => {
                    has_m = true;
                    pieces.push(Piece::Month)
                }
                Some(b'd') => {
                    has_d = true;
                    pieces.push(Piece::Day)
                }
                Some(b'H') => pieces.push(Piece::Hour),
                Some(b'M') => pieces.push(Piece::Minute),
                Some(b'S') => pieces.push(Piece::Second),
                Some(b'T') => pieces.extend([
                    Piece::Hour,
                    Piece::Literal(b':'),
                    Piece::Minute,
                    Piece::Literal(b':'),
                    Piece::Second,
                ]),
                Some(b'%') => pieces.push(Piece::Literal(b'%')),
                Some(other) => {
                    return Err(format!(
                        "unsupported directive %{} in date format {text:?} (supported: %Y %y %m %d %H %M %S %T %%)",
                        other as char
                    ))
                }
                None => return Err(format!("date format {text:?} ends with a lone %")),
            }
        }
        if !(has_y && has_m && has_d) {
            return Err(format!(
                "date format {text:?} must contain a year (%Y or %y), a month (%m) and a day (%d)"
            ));
        }
        Ok(DateFormat {
            text: text.to_string(),
            pieces,
        })
    }

    /// The format as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Parses a value with this format; the whole value must match.
    pub fn parse(&self, b: &[u8]) -> Option<Timestamp> {
        let (mut y, mut mo, mut d, mut h, mut mi, mut s) = (0i32, 0, 0, 0, 0, 0);
        let mut i = 0;
        for p in &self.pieces {
            match p {
                Piece::Year4 => y = take_digits(b, &mut i, 4, 4)? as i32,
                Piece::Year2 => y = 2000 + take_digits(b, &mut i, 2, 2)? as i32,
                Piece::Month => mo = take_digits(b, &mut i, 1, 2)?,
                Piece::Day => d = take_digits(b, &mut i, 1, 2)?,
                Piece::Hour => h = take_digits(b, &mut i, 1, 2)?,
                Piece::Minute => mi = take_digits(b, &mut i, 1, 2)?,
                Piece::Second => s = take_digits(b, &mut i, 1, 2)?,
                Piece::Literal(c) => expect(b, &mut i, *c)?,
            }
        }
        if i != b.len() {
            return None;
        }
        timestamp(y, mo, d, h, mi, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto(s: &str) -> Option<String> {
        parse_auto(s.as_bytes()).map(format_timestamp)
    }

    #[test]
    fn auto_detects_the_spec_forms() {
        assert_eq!(
            auto("12/1/2010 8:26").as_deref(),
            Some("2010-12-01 08:26:00")
        );
        assert_eq!(
            auto("12/01/2010 08:26:07").as_deref(),
            Some("2010-12-01 08:26:07")
        );
        assert_eq!(
            auto("2011-01-02 10:00:00").as_deref(),
            Some("2011-01-02 10:00:00")
        );
        assert_eq!(
            auto("2011-01-02 11:00").as_deref(),
            Some("2011-01-02 11:00:00")
        );
        assert_eq!(
            auto("2011-01-02T11:00:05").as_deref(),
            Some("2011-01-02 11:00:05")
        );
        assert_eq!(auto("12/1/10 8:26").as_deref(), Some("2010-12-01 08:26:00"));
        assert_eq!(
            auto("2/29/2012 23:59").as_deref(),
            Some("2012-02-29 23:59:00")
        );
    }

    #[test]
    fn rejects_what_the_spec_calls_malformed() {
        for bad in [
            "2011-01-02",
            "12/1/2010",
            "2011-01-02 10:00:00.5",
            "2011-01-02 24:00",
            "12/1/2010 24:00",
            "2/30/2011 10:00",
            "2/29/2011 10:00",
            "13/1/2010 8:26",
            "2011-1-02 10:00",
            "2011-01-02 1:00",
            "12/1/10 8:26:00",
            "12/1/201 8:26",
            "12/1/2010 8:6",
            "",
            "yesterday",
        ] {
            assert_eq!(auto(bad), None, "{bad:?} must be malformed");
        }
    }

    #[test]
    fn shapes_of_slash_dates() {
        let shape = |t: &str| parse_auto_shape(t.as_bytes()).1;
        assert_eq!(shape("1/12/2010 8:26"), Shape::Ambiguous);
        assert_eq!(shape("12/13/2010 8:26"), Shape::MonthFirst);
        assert_eq!(shape("13/12/2010 8:26"), Shape::DayFirst);
        assert_eq!(shape("31/2/2010 8:26"), Shape::Other);
        assert_eq!(shape("2011-01-02 10:00"), Shape::Iso);
        assert_eq!(shape("2011-01-32 10:00"), Shape::Other);
        assert_eq!(
            parse_slash(b"13/12/2010 8:26", true)
                .map(format_timestamp)
                .as_deref(),
            Some("2010-12-13 08:26:00")
        );
        assert_eq!(day_first_format("13/12/2010 8:26"), "%d/%m/%Y %H:%M");
        assert_eq!(day_first_format("13/12/10 8:26"), "%d/%m/%y %H:%M");
        assert_eq!(day_first_format("13/12/2010 08:26:05"), "%d/%m/%Y %H:%M:%S");
    }

    proptest::proptest! {
        /// The shape is what the two readings of the text say, and the
        /// timestamp the month-first one.
        #[test]
        fn shapes_are_the_two_readings(
            text in "[0-9]{1,2}/[0-9]{1,2}/(20)?[0-9]{2} [0-9]{1,2}:[0-6][0-9](:[0-6][0-9])?x?",
        ) {
            let b = text.as_bytes();
            let (mf, df) = (parse_slash(b, false), parse_slash(b, true));
            let shape = match (mf.is_some(), df.is_some()) {
                (true, true) => Shape::Ambiguous,
                (true, false) => Shape::MonthFirst,
                (false, true) => Shape::DayFirst,
                (false, false) => Shape::Other,
            };
            proptest::prop_assert_eq!(parse_auto_shape(b), (mf, shape));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, failure_persistence: None, .. Default::default() })]

        /// Texts read one after another, their days read once while they
        /// repeat, give what each gives read alone: slash days of both
        /// year forms, times with and without seconds, ISO and broken texts
        /// between them.
        #[test]
        fn shapes_read_in_sequence_are_the_shapes_read_alone(
            texts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "12/1/2010 8:26", "12/1/2010 8:27", "12/1/2010 08:26:07", "12/1/2010 24:00",
                    "12/1/2010 8:6", "12/1/2010 ", "12/1/2010", "12/1/2010 8:26:61", "12/1/2010 8:26x",
                    "12/1/10 8:26", "12/1/10 8:26:00", "13/1/2010 8:26", "13/1/2010 9:00",
                    "2/29/2012 23:59", "2/29/2011 23:59", "2/30/2011 1:00", "1/12/2010 0:00",
                    "12/1/201 8:26", "2011-01-02 10:00", "2011-01-02T11:00:05", "", "yesterday",
                    "12/1/2010 8:26 ", "12/1/2010  8:26",
                ]),
                0..30,
            ),
        ) {
            let mut shapes = AutoShapes::default();
            for t in &texts {
                proptest::prop_assert_eq!(shapes.read(t.as_bytes()), parse_auto_shape(t.as_bytes()), "{:?}", t);
            }
        }
    }

    #[test]
    fn user_formats() {
        let f = DateFormat::new("%d/%m/%Y %H:%M").unwrap();
        assert_eq!(
            f.parse(b"1/12/2010 8:26").map(format_timestamp).as_deref(),
            Some("2010-12-01 08:26:00")
        );
        assert_eq!(
            f.parse(b"31/12/2010 08:26")
                .map(format_timestamp)
                .as_deref(),
            Some("2010-12-31 08:26:00")
        );
        assert_eq!(f.parse(b"31/12/2010 08:26:00"), None);
        assert_eq!(f.parse(b"31/2/2010 08:26"), None);
        assert!(DateFormat::new("%d/%m").is_err());
        assert!(DateFormat::new("%d/%m/%Y %Q").is_err());
    }

    #[test]
    fn civil_round_trip() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(
            parse_date("2011-12-10").map(format_date).as_deref(),
            Some("2011-12-10")
        );
        assert_eq!(parse_date("2011-02-30"), None);
    }
}
