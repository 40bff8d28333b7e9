//! Figures as people read them, the same in every human output (the `rfm`
//! tables and summaries, the dashboard): thousands separators for counts
//! and money, exact percentages, singular or plural nouns, segments in
//! value order. JSON and result files keep plain numbers.

use crate::money::{self, Money};
use crate::Segment;

/// Inserts thousands separators into a decimal text (`-4339953.67` → `-4,339,953.67`).
pub fn group(text: &str) -> String {
    let (sign, rest) = match text.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", text),
    };
    let (int, frac) = match rest.find('.') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let mut out = String::with_capacity(text.len() + int.len() / 3);
    out.push_str(sign);
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out.push_str(frac);
    out
}

/// A count with thousands separators (`1077` → `1,077`).
pub fn count(n: impl Into<i128>) -> String {
    group(&n.into().to_string())
}

/// Money rounded to cents, with separators (`4,339,953.67`).
pub fn money(m: Money) -> String {
    group(&m.to_fixed(2))
}

/// A share published as text (`0.487011`) as a percentage with one decimal
/// (`48.7%`), rounded exactly; text that is not a number gives nothing.
pub fn percent(share: &str) -> String {
    match money::parse_price(share.as_bytes(), b'.') {
        Some(v) => format!("{}%", Money(v.0 * 100).to_fixed(1)),
        None => String::new(),
    }
}

/// `n` and the noun, singular for one (`1 invoice`, `2 invoices`, `1,077 days`).
pub fn counted(n: impl Into<i128>, singular: &str, plural: &str) -> String {
    let n = n.into();
    format!("{} {}", count(n), if n == 1 { singular } else { plural })
}

/// A segment's place in value order — Champions first, Hibernating last
/// (the order of [`Segment::ALL`]), the order every table lists them in.
pub fn segment_rank(s: Segment) -> usize {
    Segment::ALL
        .iter()
        .position(|x| *x == s)
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(group("4339953.67"), "4,339,953.67");
        assert_eq!(group("-1000"), "-1,000");
        assert_eq!(group("-100"), "-100");
        assert_eq!(group("999"), "999");
        assert_eq!(count(1_077u64), "1,077");
        assert_eq!(count(-1_234_567i64), "-1,234,567");
        assert_eq!(money(Money(12_345 * money::ONE / 100)), "123.45");
    }

    #[test]
    fn percent_is_exact() {
        assert_eq!(percent("0.487011"), "48.7%");
        assert_eq!(percent("0.000450"), "0.0%");
        assert_eq!(percent("0.00050"), "0.1%");
        assert_eq!(percent(""), "");
    }

    #[test]
    fn one_is_singular() {
        assert_eq!(counted(1u64, "invoice", "invoices"), "1 invoice");
        assert_eq!(counted(0u64, "invoice", "invoices"), "0 invoices");
        assert_eq!(counted(1077u64, "day", "days"), "1,077 days");
    }

    #[test]
    fn segments_in_value_order() {
        assert_eq!(segment_rank(Segment::Champions), 0);
        assert_eq!(segment_rank(Segment::Hibernating), 9);
    }
}
