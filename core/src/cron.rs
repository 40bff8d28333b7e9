//! Five-field cron expressions (`minute hour day-of-month month day-of-week`)
//! for scheduled runs (`--cron`), evaluated in UTC: each field is `*`, a
//! number, a range `a-b`, a step `*/n` or `a-b/n`, or a comma list of them.
//! Day of week is 0-7 (0 and 7 are Sunday). As in classic cron, when both
//! day of month and day of week are restricted, a day matching either fires.
//! Names (`MON`, `JAN`) and `@daily`-style shortcuts are not accepted.

use crate::date::{civil_from_days, days_from_civil, Timestamp};

/// A parsed cron expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    text: String,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_restricted: bool,
    weekdays_restricted: bool,
}

/// Why a cron expression does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron expression {expr:?}: {problem} (expected 5 fields: minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\")")]
pub struct CronError {
    pub expr: String,
    pub problem: String,
}

const FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
];

/// The most days searched for a next fire time (a date like 30 February
/// never comes; eight years cover every leap-day pattern).
const SEARCH_DAYS: i32 = 366 * 8;

impl Cron {
    /// Parses `expr` (five fields separated by spaces).
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        let err = |problem: String| CronError {
            expr: expr.to_string(),
            problem,
        };
        let fields: Vec<&str> = expr.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(err(format!("{} fields", fields.len())));
        }
        let mut sets = [0u64; 5];
        for (i, (field, &(name, low, high))) in fields.iter().zip(FIELDS.iter()).enumerate() {
            sets[i] = parse_field(field, low, high)
                .map_err(|p| err(format!("{name} field {field:?}: {p}")))?;
        }
        // Sunday is 0 and 7.
        if sets[4] & (1 << 7) != 0 {
            sets[4] |= 1;
        }
        let cron = Cron {
            text: fields.join(" "),
            minutes: sets[0],
            hours: sets[1],
            days: sets[2],
            months: sets[3],
            weekdays: sets[4] & 0x7f,
            days_restricted: fields[2] != "*",
            weekdays_restricted: fields[4] != "*",
        };
        if cron.next_after(0).is_none() {
            return Err(err("it never fires (no such date)".into()));
        }
        Ok(cron)
    }

    /// The expression, its fields separated by one space.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn day_matches(&self, days: i32) -> bool {
        let (_, month, day) = civil_from_days(days);
        if self.months & (1 << month) == 0 {
            return false;
        }
        // 1970-01-01 was a Thursday (4).
        let weekday = (days.rem_euclid(7) + 4) % 7;
        let by_day = self.days & (1 << day) != 0;
        let by_weekday = self.weekdays & (1 << weekday) != 0;
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => by_day || by_weekday,
            (true, false) => by_day,
            (false, true) => by_weekday,
            (false, false) => true,
        }
    }

    /// The first fire time strictly after `after` (seconds since 1970, UTC),
    /// on a whole minute; `None` if none comes within eight years.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let start = after.div_euclid(60) + 1; // the next whole minute
        let first_day = start.div_euclid(1440) as i32;
        let mut from_minute = start.rem_euclid(1440) as u32;
        for days in first_day..first_day + SEARCH_DAYS {
            if self.day_matches(days) {
                for minute_of_day in from_minute..1440 {
                    let (h, m) = (minute_of_day / 60, minute_of_day % 60);
                    if self.hours & (1 << h) != 0 && self.minutes & (1 << m) != 0 {
                        return Some(days as i64 * 86_400 + minute_of_day as i64 * 60);
                    }
                }
            }
            from_minute = 0;
        }
        None
    }
}

impl std::fmt::Display for Cron {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Cron {
    type Err = CronError;
    fn from_str(s: &str) -> Result<Cron, CronError> {
        Cron::parse(s)
    }
}

/// The set of values (bit per value) of one field.
fn parse_field(field: &str, low: u32, high: u32) -> Result<u64, String> {
    let mut set = 0u64;
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = number(s)?;
                if step == 0 {
                    return Err("a step of 0".into());
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (low, high)
        } else if let Some((a, b)) = range.split_once('-') {
            (number(a)?, number(b)?)
        } else {
            let a = number(range)?;
            // `5/15` means from 5 to the end, every 15.
            (a, if step > 1 { high } else { a })
        };
        for v in [a, b] {
            if v < low || v > high {
                return Err(format!("{v} is out of range {low}-{high}"));
            }
        }
        if a > b {
            return Err(format!("range {a}-{b} goes backwards"));
        }
        let mut v = a;
        while v <= b {
            set |= 1 << v;
            v += step;
        }
    }
    Ok(set)
}

fn number(text: &str) -> Result<u32, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || text.len() > 4 {
        return Err(format!("{text:?} is not a number"));
    }
    text.parse()
        .map_err(|_| format!("{text:?} is not a number"))
}

/// Seconds since 1970 of a UTC date and time (for tests and logs).
pub fn utc(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> Timestamp {
    days_from_civil(year, month, day) as i64 * 86_400 + hour as i64 * 3600 + minute as i64 * 60
}

#[cfg(test)]
mod tests {
    use super::{utc, Cron};

    fn next(expr: &str, after: i64) -> i64 {
        Cron::parse(expr).unwrap().next_after(after).unwrap()
    }

    #[test]
    fn next_fire_times() {
        let t = utc(2011, 12, 9, 12, 30);
        // Every night at 02:00: tomorrow.
        assert_eq!(next("0 2 * * *", t), utc(2011, 12, 10, 2, 0));
        // Strictly after: at 02:00 exactly, the next day's.
        assert_eq!(
            next("0 2 * * *", utc(2011, 12, 10, 2, 0)),
            utc(2011, 12, 11, 2, 0)
        );
        // Seconds into a minute: the next minute.
        assert_eq!(next("* * * * *", t + 59), t + 60);
        // Steps and lists.
        assert_eq!(next("*/15 * * * *", t), utc(2011, 12, 9, 12, 45));
        assert_eq!(next("5,40 12 * * *", t), utc(2011, 12, 9, 12, 40));
        // Ranges of hours; 9 December 2011 was a Friday (5).
        assert_eq!(next("0 9-17 * * 1-5", t), utc(2011, 12, 9, 13, 0));
        assert_eq!(
            next("0 9-17 * * 1-5", utc(2011, 12, 9, 17, 0)),
            utc(2011, 12, 12, 9, 0)
        );
        // Sunday is 0 and 7.
        assert_eq!(next("0 0 * * 7", t), utc(2011, 12, 11, 0, 0));
        assert_eq!(next("0 0 * * 0", t), utc(2011, 12, 11, 0, 0));
        // Month and day: the new year; 29 February: the next leap year.
        assert_eq!(next("0 0 1 1 *", t), utc(2012, 1, 1, 0, 0));
        assert_eq!(next("0 0 29 2 *", t), utc(2012, 2, 29, 0, 0));
        assert_eq!(
            next("0 0 29 2 *", utc(2012, 3, 1, 0, 0)),
            utc(2016, 2, 29, 0, 0)
        );
        // Day of month and day of week both restricted: either fires
        // (the 13th, or a Monday).
        assert_eq!(next("0 0 13 * 1", t), utc(2011, 12, 12, 0, 0));
        // From step: 5/20 is 5, 25, 45.
        assert_eq!(next("5/20 * * * *", t), utc(2011, 12, 9, 12, 45));
    }

    #[test]
    fn invalid_expressions_say_which_field() {
        for (expr, fragment) in [
            ("0 2 * *", "4 fields"),
            ("0 2 * * * *", "6 fields"),
            ("60 * * * *", "minute field \"60\": 60 is out of range 0-59"),
            ("0 24 * * *", "hour field \"24\": 24 is out of range 0-23"),
            (
                "0 0 0 * *",
                "day-of-month field \"0\": 0 is out of range 1-31",
            ),
            ("0 0 * 13 *", "month field"),
            ("0 0 * * 8", "day-of-week field"),
            ("*/0 * * * *", "a step of 0"),
            ("5-1 * * * *", "goes backwards"),
            ("0 2 * * MON", "\"MON\" is not a number"),
            ("0 0 30 2 *", "never fires"),
            ("", "0 fields"),
        ] {
            let e = Cron::parse(expr).unwrap_err().to_string();
            assert!(e.contains(fragment), "{expr:?}: {e}");
            assert!(
                e.contains("minute hour day-of-month month day-of-week"),
                "{e}"
            );
        }
    }
}
