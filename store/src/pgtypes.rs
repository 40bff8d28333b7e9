//! PostgreSQL binary encodings the COPY path needs and `postgres` lacks
//! without extra crates: exact decimals as NUMERIC, naive timestamps and dates.

use std::error::Error as StdError;

use bytes::{BufMut, BytesMut};
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};

type BoxError = Box<dyn StdError + Sync + Send>;

/// NUMERIC sign word of a positive value (and zero).
const NUMERIC_POS: u16 = 0x0000;
/// NUMERIC sign word of a negative value.
const NUMERIC_NEG: u16 = 0x4000;

/// An exact decimal given as text (`-12.3400`), sent as a PostgreSQL NUMERIC
/// with the text's scale: the server stores exactly these digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecimalText<'a>(pub &'a str);

/// A decimal's binary NUMERIC form: base-10000 digits, the weight of the first
/// digit, the sign and the display scale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumericParts {
    pub digits: Vec<i16>,
    pub weight: i16,
    pub negative: bool,
    pub dscale: u16,
}

/// Why a text is not a plain decimal.
#[derive(Debug, thiserror::Error)]
#[error("not a decimal number: {0:?} (expected [-+]digits[.digits])")]
pub struct NotADecimal(pub String);

impl NumericParts {
    /// Parses `[-+]digits[.digits]` (also `.5` and `5.`).
    pub fn parse(text: &str) -> Result<NumericParts, NotADecimal> {
        let bad = || NotADecimal(text.to_string());
        let (negative, body) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let int = int.trim_start_matches('0');
        let dscale = u16::try_from(frac.len()).map_err(|_| bad())?;
        // Groups of four decimal digits aligned on the decimal point.
        let int_groups = int.len().div_ceil(4);
        let frac_groups = frac.len().div_ceil(4);
        let mut digits: Vec<i16> = Vec::with_capacity(int_groups + frac_groups);
        let lead = int.len() - (int_groups.saturating_sub(1)) * 4;
        let mut start = 0;
        for g in 0..int_groups {
            let end = if g == 0 { lead } else { start + 4 };
            digits.push(group_value(&int.as_bytes()[start..end]));
            start = end;
        }
        for chunk in frac.as_bytes().chunks(4) {
            let mut v = group_value(chunk);
            for _ in chunk.len()..4 {
                v *= 10;
            }
            digits.push(v);
        }
        let mut weight = i32::try_from(int_groups).map_err(|_| bad())? - 1;
        // Strip zero groups at both ends; the weight follows the first kept group.
        let first = digits.iter().position(|&d| d != 0);
        let Some(first) = first else {
            return Ok(NumericParts {
                digits: Vec::new(),
                weight: 0,
                negative: false,
                dscale,
            });
        };
        let last = digits.iter().rposition(|&d| d != 0).unwrap_or(first);
        weight -= first as i32;
        let digits = digits[first..=last].to_vec();
        let weight = i16::try_from(weight).map_err(|_| bad())?;
        i16::try_from(digits.len()).map_err(|_| bad())?;
        Ok(NumericParts {
            digits,
            weight,
            negative,
            dscale,
        })
    }

    /// Appends the wire form.
    pub fn encode(&self, out: &mut BytesMut) {
        out.reserve(8 + 2 * self.digits.len());
        out.put_i16(self.digits.len() as i16);
        out.put_i16(self.weight);
        out.put_u16(if self.negative {
            NUMERIC_NEG
        } else {
            NUMERIC_POS
        });
        out.put_u16(self.dscale);
        for &d in &self.digits {
            out.put_i16(d);
        }
    }
}

fn group_value(ascii_digits: &[u8]) -> i16 {
    ascii_digits
        .iter()
        .fold(0i16, |v, &b| v * 10 + (b - b'0') as i16)
}

impl ToSql for DecimalText<'_> {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        NumericParts::parse(self.0)?.encode(out);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    to_sql_checked!();
}

/// Seconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_SECS: i64 = 946_684_800;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;

/// A naive timestamp in seconds since 1970-01-01 (the core's `Timestamp`), sent
/// as `timestamp` (without time zone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NaiveTimestamp(pub i64);

impl ToSql for NaiveTimestamp {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let micros = (self.0 - PG_EPOCH_SECS)
            .checked_mul(1_000_000)
            .ok_or_else(|| format!("timestamp out of range: {} seconds", self.0))?;
        out.put_i64(micros);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMP
    }

    to_sql_checked!();
}

/// A calendar date in days since 1970-01-01 (the core's `Date`), sent as `date`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayDate(pub i32);

impl ToSql for DayDate {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        out.put_i32(self.0 - PG_EPOCH_DAYS);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::DATE
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(t: &str) -> (Vec<i16>, i16, bool, u16) {
        let p = NumericParts::parse(t).unwrap();
        (p.digits, p.weight, p.negative, p.dscale)
    }

    #[test]
    fn splits_into_base_10000_groups() {
        assert_eq!(parts("0"), (vec![], 0, false, 0));
        assert_eq!(parts("0.00"), (vec![], 0, false, 2));
        assert_eq!(parts("-0.0"), (vec![], 0, false, 1));
        assert_eq!(parts("1"), (vec![1], 0, false, 0));
        assert_eq!(parts("12345.678"), (vec![1, 2345, 6780], 1, false, 3));
        assert_eq!(parts("-8.1"), (vec![8, 1000], 0, true, 1));
        assert_eq!(parts("10000"), (vec![1], 1, false, 0));
        assert_eq!(parts("0.00001"), (vec![1000], -2, false, 5));
        assert_eq!(parts(".5"), (vec![5000], -1, false, 1));
        assert_eq!(parts("007.50"), (vec![7, 5000], 0, false, 2));
        assert_eq!(
            parts("279489.020000000000000001"),
            (vec![27, 9489, 200, 0, 0, 0, 100], 1, false, 18)
        );
    }

    #[test]
    fn rejects_what_is_not_a_decimal() {
        for t in ["", "-", ".", "1.2.3", "1e5", "NaN", " 1", "1,5", "--1"] {
            assert!(NumericParts::parse(t).is_err(), "{t:?}");
        }
    }
}
