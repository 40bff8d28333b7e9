//! Exact money: fixed-point decimals with 18 fractional digits in an `i128`,
//! parsing of price text, and exact rounding (half away from zero) for output.
//!
//! Every amount the engine holds (a price, a line's quantity × price, a
//! customer's revenue, a segment's or the run's revenue) stays within
//! ±[`Money::MAX`]: at most 20 digits before the decimal point, what Arrow's
//! `Decimal128(38, 18)` (partial states) can hold. The checked operations
//! return `None` beyond it.

/// Number of fractional digits every [`Money`] value carries.
pub const SCALE: u32 = 18;
/// `10^SCALE`.
pub const ONE: i128 = 1_000_000_000_000_000_000;

/// Largest magnitude of any amount, in units: `10^38 − 1`, i.e.
/// 99,999,999,999,999,999,999.999999999999999999.
pub const MAX_UNITS: i128 = 10i128.pow(38) - 1;

/// The bound in words, for error messages.
pub const RANGE_TEXT: &str =
    "below 10^20 in absolute value (at most 20 digits before the decimal point)";

/// An exact decimal amount: `units / 10^18`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(pub i128);

impl serde::Serialize for Money {
    /// Serialised as its exact decimal text.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_exact_string())
    }
}

impl Money {
    pub const ZERO: Money = Money(0);
    /// The largest amount the engine holds.
    pub const MAX: Money = Money(MAX_UNITS);

    /// A value within ±[`Money::MAX`], or `None`.
    #[inline]
    fn bounded(units: i128) -> Option<Money> {
        (units.unsigned_abs() <= MAX_UNITS as u128).then_some(Money(units))
    }

    /// `quantity × price`, or `None` beyond ±[`Money::MAX`].
    #[inline]
    pub fn times(self, quantity: i64) -> Option<Money> {
        // Under 2^64 units (a price below about 18.4) the product of the
        // magnitudes fits a u128 by one widening multiply.
        let units = self.0.unsigned_abs();
        if units <= u64::MAX as u128 {
            let product = (units as u64 as u128) * quantity.unsigned_abs() as u128;
            if product > MAX_UNITS as u128 {
                return None;
            }
            let product = product as i128;
            return Some(Money(if (self.0 < 0) != (quantity < 0) {
                -product
            } else {
                product
            }));
        }
        self.0
            .checked_mul(quantity as i128)
            .and_then(Money::bounded)
    }

    /// The sum, or `None` beyond ±[`Money::MAX`].
    #[inline]
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).and_then(Money::bounded)
    }

    /// The exact sum of `amounts`, or `None` when it (or a partial sum) leaves ±[`Money::MAX`].
    pub fn checked_sum(amounts: impl IntoIterator<Item = Money>) -> Option<Money> {
        amounts
            .into_iter()
            .try_fold(Money::ZERO, |acc, m| acc.checked_add(m))
    }

    /// Whether the value is within ±[`Money::MAX`] (values read from the wire).
    pub fn in_range(self) -> bool {
        Money::bounded(self.0).is_some()
    }

    /// The value rounded half away from zero to `places` decimals, as text
    /// (`8.1` → `"8.10"` with two places).
    pub fn to_fixed(self, places: u32) -> String {
        div_round(self.0, ONE, places)
    }

    /// The exact value with trailing zeros removed (`"8.1"`), for NUMERIC columns.
    pub fn to_exact_string(self) -> String {
        let neg = self.0 < 0;
        let abs = self.0.unsigned_abs();
        let int = abs / ONE as u128;
        let frac = abs % ONE as u128;
        let mut s = String::new();
        if neg {
            s.push('-');
        }
        s.push_str(&int.to_string());
        if frac != 0 {
            let digits = format!("{:018}", frac);
            s.push('.');
            s.push_str(digits.trim_end_matches('0'));
        }
        s
    }
}

/// Parses a price: `[+-]?(digits[.digits] | .digits)` with `decimal_mark` as the
/// mark. Up to 18 fractional digits are exact; more are rounded half away from
/// zero. Returns `None` for anything else, or a value beyond ±[`Money::MAX`].
#[inline]
pub fn parse_price(text: &[u8], decimal_mark: u8) -> Option<Money> {
    if let Some(price) = parse_plain_price(text, decimal_mark) {
        return Some(price);
    }
    parse_other_price(text, decimal_mark)
}

/// [`parse_price`] of the texts that [`parse_plain_price`] leaves.
#[inline(never)]
fn parse_other_price(text: &[u8], decimal_mark: u8) -> Option<Money> {
    parse_short_price(text, decimal_mark).or_else(|| parse_any_price(text, decimal_mark))
}

/// The most common prices: no sign, at most 16 bytes, digits and at most one
/// mark (`2.55`, `12`, `.5`), read as one integer of all their digits, then
/// scaled by one multiply; `None` for anything else, which
/// [`parse_short_price`] then reads (or refuses).
#[inline]
fn parse_plain_price(text: &[u8], decimal_mark: u8) -> Option<Money> {
    let n = text.len();
    if n == 0 || n > 16 {
        return None;
    }
    let mut digits: u64 = 0;
    let mut mark_at = n;
    for (i, &b) in text.iter().enumerate() {
        let d = b.wrapping_sub(b'0');
        if d <= 9 {
            digits = digits * 10 + d as u64;
        } else if b == decimal_mark && mark_at == n {
            mark_at = i;
        } else {
            return None;
        }
    }
    let places = if mark_at == n { 0 } else { n - mark_at - 1 };
    if n == 1 && mark_at == 0 {
        return None; // the mark alone
    }
    // At most 16 digits times 10^18: below 10^34 units, within ±MAX.
    let units = digits as u128 * POW10[18 - places] as u128;
    Some(Money(units as i128))
}

/// `10^k` for `k` in `0..=18`.
const POW10: [u64; 19] = {
    let mut p = [1u64; 19];
    let mut k = 1;
    while k < 19 {
        p[k] = p[k - 1] * 10;
        k += 1;
    }
    p
};

/// The common prices (at most 18 digits before and after the mark) in
/// 64-bit arithmetic; `None` for anything else, which [`parse_any_price`]
/// then reads (or refuses).
#[inline]
fn parse_short_price(text: &[u8], decimal_mark: u8) -> Option<Money> {
    let (neg, body) = match text.first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let mut int: u64 = 0;
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if i == 18 {
            return None;
        }
        int = int * 10 + d as u64;
        i += 1;
    }
    let int_digits = i;
    let mut frac: u64 = 0;
    let mut places = 0;
    if i < body.len() {
        if body[i] != decimal_mark {
            return None;
        }
        for &b in &body[i + 1..] {
            let d = b.wrapping_sub(b'0');
            if d > 9 || places == 18 {
                return None;
            }
            frac = frac * 10 + d as u64;
            places += 1;
        }
    }
    if int_digits == 0 && places == 0 {
        return None;
    }
    // Below 10^36 units: always within ±MAX.
    let units = int as i128 * ONE + (frac * POW10[18 - places]) as i128;
    Some(Money(if neg { -units } else { units }))
}

/// [`parse_price`] of any text, in 128-bit arithmetic.
fn parse_any_price(text: &[u8], decimal_mark: u8) -> Option<Money> {
    let (neg, body) = match text.first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (int_part, frac_part) = match memchr::memchr(decimal_mark, body) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let frac_part = frac_part.unwrap_or(b"");
    // ".5" and "2." are fine; "." alone is not, nor "-".
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut int: i128 = 0;
    for &b in int_part {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        int = int.checked_mul(10)?.checked_add(d as i128)?;
    }
    let mut frac: i128 = 0;
    let mut places = 0u32;
    let mut round_up = false;
    for (i, &b) in frac_part.iter().enumerate() {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        if i < SCALE as usize {
            frac = frac * 10 + d as i128;
            places += 1;
        } else if i == SCALE as usize {
            round_up = d >= 5;
        }
    }
    let mut units = int
        .checked_mul(ONE)?
        .checked_add(frac * 10i128.pow(SCALE - places))?;
    if round_up {
        units = units.checked_add(1)?;
    }
    Money::bounded(if neg { -units } else { units })
}

/// `num / den` rounded half away from zero to `places` decimals, as text.
/// Exact for any `i128` operands (long division, no intermediate overflow).
pub fn div_round(num: i128, den: i128, places: u32) -> String {
    assert!(den != 0, "division by zero");
    let neg = (num < 0) != (den < 0);
    let n = num.unsigned_abs();
    let d = den.unsigned_abs();
    let int = n / d;
    let mut rem = n % d;
    // Digits after the mark, one more than asked for is decided by the remainder.
    let mut digits: Vec<u8> = Vec::with_capacity(places as usize);
    for _ in 0..places {
        let (q, r) = mul10_divmod(rem, d);
        digits.push(q as u8);
        rem = r;
    }
    // Round half away from zero: compare 2·rem with d without overflow.
    let round_up = rem >= d - rem;
    let mut int = int;
    if round_up {
        let mut i = digits.len();
        loop {
            if i == 0 {
                int += 1;
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let zero = int == 0 && digits.iter().all(|&x| x == 0);
    let mut s = String::with_capacity(places as usize + 24);
    if neg && !zero {
        s.push('-');
    }
    s.push_str(&int.to_string());
    if places > 0 {
        s.push('.');
        for x in digits {
            s.push((b'0' + x) as char);
        }
    }
    s
}

/// `(rem·10) / d` and `(rem·10) % d` for `rem < d`, without overflowing `u128`.
fn mul10_divmod(rem: u128, d: u128) -> (u128, u128) {
    if let Some(x) = rem.checked_mul(10) {
        return (x / d, x % d);
    }
    // rem·10 overflows: add rem to itself ten times, subtracting d as we go.
    let mut q = 0u128;
    let mut acc = 0u128;
    for _ in 0..10 {
        // acc < d and rem < d, so acc + rem < 2d; compare without overflow.
        if acc >= d - rem {
            acc -= d - rem;
            q += 1;
        } else {
            acc += rem;
        }
    }
    (q, acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<String> {
        parse_price(s.as_bytes(), b'.').map(|m| m.to_exact_string())
    }

    proptest::proptest! {
        #[test]
        fn short_prices_read_as_any_price(
            text in proptest::prop_oneof![
                "[-+]?[0-9]{0,21}([.,][0-9]{0,21})?[0-9.,a ]?",
                "[0-9]{0,9}([.,][0-9]{0,9})?[0-9.,]?",
            ],
            comma in proptest::bool::ANY,
        ) {
            let mark = if comma { b',' } else { b'.' };
            let short = parse_short_price(text.as_bytes(), mark);
            let plain = parse_plain_price(text.as_bytes(), mark);
            let any = parse_any_price(text.as_bytes(), mark);
            proptest::prop_assert!(short.is_none() || short == any, "{text:?}: {short:?} {any:?}");
            proptest::prop_assert!(plain.is_none() || plain == any, "{text:?}: {plain:?} {any:?}");
            proptest::prop_assert_eq!(parse_price(text.as_bytes(), mark), any);
        }
    }

    #[test]
    fn parses_price_forms() {
        assert_eq!(p("2.55").as_deref(), Some("2.55"));
        assert_eq!(p("0.001").as_deref(), Some("0.001"));
        assert_eq!(p(".5").as_deref(), Some("0.5"));
        assert_eq!(p("2.").as_deref(), Some("2"));
        assert_eq!(p("-11062.06").as_deref(), Some("-11062.06"));
        assert_eq!(p("+3").as_deref(), Some("3"));
        for bad in ["", ".", "-", "1e3", "1,000.5", "1.2.3", " 1", "abc", "--1"] {
            assert_eq!(p(bad), None, "{bad:?} must be malformed");
        }
        assert_eq!(
            parse_price(b"2,55", b',')
                .map(|m| m.to_exact_string())
                .as_deref(),
            Some("2.55")
        );
    }

    #[test]
    fn eighteen_fraction_digits_are_exact_and_more_round() {
        assert_eq!(
            p("0.000000000000000001").as_deref(),
            Some("0.000000000000000001")
        );
        assert_eq!(
            p("0.0000000000000000015").as_deref(),
            Some("0.000000000000000002")
        );
        assert_eq!(
            p("0.0000000000000000014").as_deref(),
            Some("0.000000000000000001")
        );
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(div_round(5, 1000, 2), "0.01"); // 0.005
        assert_eq!(div_round(-5, 1000, 2), "-0.01");
        assert_eq!(div_round(4, 1000, 2), "0.00");
        assert_eq!(div_round(-4, 1000, 2), "0.00");
        assert_eq!(div_round(2, 3, 6), "0.666667");
        assert_eq!(div_round(1, 3, 6), "0.333333");
        assert_eq!(div_round(999, 1000, 2), "1.00");
        assert_eq!(div_round(81, 10, 2), "8.10");
        assert_eq!(div_round(7, 1, 0), "7");
        assert_eq!(Money(8_100_000_000_000_000_000).to_fixed(2), "8.10");
    }

    #[test]
    fn amounts_stay_within_twenty_integer_digits() {
        assert_eq!(
            p("99999999999999999999.999999999999999999").as_deref(),
            Some("99999999999999999999.999999999999999999")
        );
        assert_eq!(
            p("-99999999999999999999.99").as_deref(),
            Some("-99999999999999999999.99")
        );
        assert_eq!(p("100000000000000000000"), None);
        assert_eq!(
            p("99999999999999999999.9999999999999999995"),
            None,
            "rounds up past the bound"
        );
        let big = parse_price(b"50000000000000000000", b'.').unwrap();
        assert_eq!(big.times(1), Some(big));
        assert_eq!(big.times(2), None);
        assert_eq!(big.checked_add(big), None);
        let just_under = Money(MAX_UNITS - big.0);
        assert_eq!(big.checked_add(just_under), Some(Money::MAX));
        assert_eq!(Money::checked_sum([big, just_under]), Some(Money::MAX));
        assert_eq!(Money::checked_sum([big, big, Money(-big.0)]), None);
        assert!(Money::MAX.in_range() && !Money(MAX_UNITS + 1).in_range());
        assert!(Money(-MAX_UNITS).in_range() && !Money(i128::MIN).in_range());
    }

    #[test]
    fn times_is_the_exact_product_within_the_range() {
        let reference = |m: Money, q: i64| m.0.checked_mul(q as i128).and_then(Money::bounded);
        let prices = [
            0,
            1,
            -1,
            2_550_000_000_000_000_000,
            -2_550_000_000_000_000_000,
            u64::MAX as i128,
            -(u64::MAX as i128),
            u64::MAX as i128 + 1,
            MAX_UNITS,
            -MAX_UNITS,
        ];
        let quantities = [0, 1, -1, 6, -80_995, i64::MAX, i64::MIN, i64::MIN + 1];
        for &p in &prices {
            for &q in &quantities {
                assert_eq!(Money(p).times(q), reference(Money(p), q), "{p} × {q}");
            }
        }
    }

    #[test]
    fn long_division_survives_huge_operands() {
        let big = i128::MAX - 7;
        assert_eq!(div_round(big / 2, big, 6), "0.500000");
        assert_eq!(div_round(big, big, 2), "1.00");
    }
}
