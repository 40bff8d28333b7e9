//! One Excel cell as the text a CSV export would hold, so that the CSV
//! classifier ([`crate::parse`]) reads it: numbers stored as binary floats
//! become the shortest decimal that reads back as the same float (`2.55`, not
//! `2.5499999999999998`; `17850`, not `17850.0`), and date serials (1900 or
//! 1904 date system) become `YYYY-MM-DD HH:MM:SS`.

use std::fmt::Write;

use calamine::Data;

use crate::date::{self, Timestamp};

/// Seconds in a day.
const DAY: f64 = 86_400.0;
/// The last day Excel knows (9999-12-31) as a 1900-system serial.
const MAX_SERIAL: f64 = 2_958_466.0;

/// The shortest decimal text that reads back as `v` (Rust's `{}` for `f64`
/// gives it, never with an exponent): integer-valued floats have no `.0`.
pub fn shortest_decimal(v: f64, out: &mut String) {
    if v == 0.0 {
        // -0 is 0 in every column.
        out.push('0');
    } else {
        let _ = write!(out, "{v}");
    }
}

/// The timestamp of a date serial, rounded to the second: days since
/// 1899-12-31 (with Excel's fictitious 1900-02-29 as serial 60, which is no
/// date) or, in the 1904 date system, since 1904-01-01. `None` outside
/// Excel's range and for serials 0 and 60 of the 1900 system.
pub fn serial_timestamp(serial: f64, is_1904: bool) -> Option<Timestamp> {
    if !serial.is_finite() || !(0.0..MAX_SERIAL).contains(&serial) {
        return None;
    }
    let secs = (serial * DAY).round() as i64;
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let epoch = if is_1904 {
        date::days_from_civil(1904, 1, 1)
    } else {
        match days {
            0 | 60 => return None,
            1..=59 => date::days_from_civil(1899, 12, 31),
            _ => date::days_from_civil(1899, 12, 30),
        }
    } as i64;
    Some((epoch + days) * 86_400 + of_day)
}

/// What a column is read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The date column: numbers are date serials.
    Date,
    /// The price column: numbers take the run's decimal mark.
    Price,
    /// Any other column.
    Other,
}

/// How cells become text: the workbook's date system and the run's options.
#[derive(Clone, Debug)]
pub struct CellText<'a> {
    pub is_1904: bool,
    pub decimal_comma: bool,
    /// `--date-format`: a text date cell is read with it.
    pub date_format: Option<&'a date::DateFormat>,
}

impl CellText<'_> {
    /// Appends the text of `cell` in a column of `role` to `out`.
    pub fn push(&self, cell: &Data, role: Role, out: &mut String) {
        match cell {
            Data::Empty => {}
            Data::String(s) => match (role, self.date_format) {
                (Role::Date, Some(f)) => match f.parse(s.trim().as_bytes()) {
                    Some(ts) => out.push_str(&date::format_timestamp(ts)),
                    None => out.push_str(s),
                },
                _ => out.push_str(s),
            },
            Data::Float(v) => self.number(*v, role, out),
            Data::Int(v) => self.number(*v as f64, role, out),
            Data::DateTime(dt) => self.number(dt.as_f64(), role, out),
            Data::Bool(b) => out.push_str(if *b { "TRUE" } else { "FALSE" }),
            Data::DateTimeIso(s) | Data::DurationIso(s) => out.push_str(s),
            Data::Error(e) => {
                let _ = write!(out, "{e}");
            }
        }
    }

    fn number(&self, v: f64, role: Role, out: &mut String) {
        match role {
            Role::Date => match serial_timestamp(v, self.is_1904) {
                Some(ts) => out.push_str(&date::format_timestamp(ts)),
                // Not a date: the number as text, which the classifier refuses.
                None => shortest_decimal(v, out),
            },
            Role::Price if self.decimal_comma => {
                let at = out.len();
                shortest_decimal(v, out);
                if let Some(i) = out[at..].find('.') {
                    out.replace_range(at + i..at + i + 1, ",");
                }
            }
            _ => shortest_decimal(v, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: f64) -> String {
        let mut s = String::new();
        shortest_decimal(v, &mut s);
        s
    }

    #[test]
    fn floats_read_back_as_their_shortest_decimal() {
        assert_eq!(text(2.55), "2.55");
        assert_eq!(text("2.5499999999999998".parse().unwrap()), "2.55");
        assert_eq!(text(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(text(0.3), "0.3");
        assert_eq!(text(17850.0), "17850");
        assert_eq!(text(-6.0), "-6");
        assert_eq!(text(-0.0), "0");
        assert_eq!(text(1e-7), "0.0000001");
        assert_eq!(text(38970.0), "38970");
        assert_eq!(text(11062.06), "11062.06");
        // Every text reads back as the same float.
        for v in [2.55, 0.1 + 0.2, 1.0 / 3.0, 4.95, 0.001, 649.5] {
            assert_eq!(text(v).parse::<f64>().unwrap(), v);
        }
    }

    #[test]
    fn date_serials_of_both_date_systems() {
        let ts = |y, mo, d, h, mi, s| date::timestamp(y, mo, d, h, mi, s).unwrap();
        // 2010-12-01 08:26 is serial 40513 + 506/1440 (the float is not exact).
        let serial = 40513.0 + (8.0 * 60.0 + 26.0) / 1440.0;
        assert_eq!(
            serial_timestamp(serial, false),
            Some(ts(2010, 12, 1, 8, 26, 0))
        );
        assert_eq!(
            serial_timestamp(40513.35138888889, false),
            Some(ts(2010, 12, 1, 8, 26, 0))
        );
        // The same day in the 1904 system is 1462 days less.
        assert_eq!(
            serial_timestamp(serial - 1462.0, true),
            Some(ts(2010, 12, 1, 8, 26, 0))
        );
        assert_eq!(serial_timestamp(0.0, true), Some(ts(1904, 1, 1, 0, 0, 0)));
        // Minutes of a fraction just below the minute round to it.
        assert_eq!(
            serial_timestamp(45943.0 + 779.0 / 1440.0 - 1e-9, false),
            Some(ts(2025, 10, 13, 12, 59, 0))
        );
        assert_eq!(
            serial_timestamp(45943.5, false),
            Some(ts(2025, 10, 13, 12, 0, 0))
        );
        // Around Excel's fictitious 1900-02-29.
        assert_eq!(serial_timestamp(1.0, false), Some(ts(1900, 1, 1, 0, 0, 0)));
        assert_eq!(
            serial_timestamp(59.0, false),
            Some(ts(1900, 2, 28, 0, 0, 0))
        );
        assert_eq!(serial_timestamp(60.0, false), None);
        assert_eq!(serial_timestamp(61.0, false), Some(ts(1900, 3, 1, 0, 0, 0)));
        assert_eq!(serial_timestamp(-1.0, false), None);
        assert_eq!(serial_timestamp(3e6, false), None);
    }

    #[test]
    fn cells_become_the_text_a_csv_export_holds() {
        let fmt = date::DateFormat::new("%d/%m/%Y %H:%M").unwrap();
        let plain = CellText {
            is_1904: false,
            decimal_comma: false,
            date_format: None,
        };
        let european = CellText {
            is_1904: false,
            decimal_comma: true,
            date_format: Some(&fmt),
        };
        let of = |c: &CellText, cell: Data, role| {
            let mut s = String::new();
            c.push(&cell, role, &mut s);
            s
        };
        assert_eq!(of(&plain, Data::Float(17850.0), Role::Other), "17850");
        assert_eq!(of(&plain, Data::Float(2.55), Role::Price), "2.55");
        assert_eq!(of(&european, Data::Float(2.55), Role::Price), "2,55");
        assert_eq!(of(&european, Data::Float(2.55), Role::Other), "2.55");
        assert_eq!(of(&plain, Data::Int(6), Role::Other), "6");
        assert_eq!(
            of(&plain, Data::Float(40513.35138888889), Role::Date),
            "2010-12-01 08:26:00"
        );
        assert_eq!(
            of(
                &european,
                Data::String("1/12/2010 08:26".into()),
                Role::Date
            ),
            "2010-12-01 08:26:00"
        );
        assert_eq!(
            of(&plain, Data::String("12/1/2010 8:26".into()), Role::Date),
            "12/1/2010 8:26"
        );
        assert_eq!(of(&plain, Data::Empty, Role::Other), "");
        assert_eq!(of(&plain, Data::Bool(true), Role::Other), "TRUE");
    }
}
