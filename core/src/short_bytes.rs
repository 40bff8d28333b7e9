//! Equality and packing of short byte strings (ids, invoices, countries,
//! dates: mostly under 32 bytes) with a few fixed-size loads instead of a
//! call to `memcmp` or `memcpy`, for the per-line checks of the CSV reader
//! and the partial state.

/// Bytes `at..at + N` of `s` (which holds them) as an array.
#[inline]
fn word<const N: usize>(s: &[u8], at: usize) -> [u8; N] {
    s[at..at + N].try_into().expect("a slice of N bytes")
}

/// Whether `a` and `b` hold the same bytes.
#[inline]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    // Two overlapping loads cover every length from N to 2N.
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, n - 4) == word::<4>(b, n - 4),
        8..=15 => word::<8>(a, 0) == word::<8>(b, 0) && word::<8>(a, n - 8) == word::<8>(b, n - 8),
        16..=32 => {
            word::<16>(a, 0) == word::<16>(b, 0) && word::<16>(a, n - 16) == word::<16>(b, n - 16)
        }
        _ => a == b,
    }
}

/// The big-endian value of `s` (at most 16 bytes): `b"\x01\x02"` → `0x0102`.
#[inline]
pub fn big_endian_value(s: &[u8]) -> u128 {
    let n = s.len();
    debug_assert!(n <= 16);
    // The first N bytes shifted up over the last ones, which overlap them.
    let (high, low, low_bits) = match n {
        0 => return 0,
        1..=3 => {
            let mut v = 0u128;
            for &b in s {
                v = v << 8 | b as u128;
            }
            return v;
        }
        4..=7 => (
            u32::from_be_bytes(word(s, 0)) as u128,
            u32::from_be_bytes(word(s, n - 4)) as u128,
            8 * (n - 4),
        ),
        8..=15 => (
            u64::from_be_bytes(word(s, 0)) as u128,
            u64::from_be_bytes(word(s, n - 8)) as u128,
            8 * (n - 8),
        ),
        _ => return u128::from_be_bytes(word(s, 0)),
    };
    high << low_bits | low & ((1u128 << low_bits) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 4000, failure_persistence: None, .. Default::default() })]

        /// Equal to `==` for every length, with strings that differ in one
        /// byte anywhere.
        #[test]
        fn same_bytes_is_slice_equality(
            a in proptest::collection::vec(proptest::sample::select(vec![0u8, 1, b'a', 0xff]), 0..40),
            flip in proptest::option::of(0usize..40),
            longer in proptest::bool::ANY,
        ) {
            let mut b = a.clone();
            if let Some(i) = flip.filter(|&i| i < b.len()) {
                b[i] ^= 0x10;
            }
            if longer {
                b.push(0);
            }
            proptest::prop_assert_eq!(same_bytes(&a, &b), a == b);
            proptest::prop_assert!(same_bytes(&a, &a));
        }

        /// The value of the bytes read one by one.
        #[test]
        fn big_endian_value_reads_the_bytes_in_order(
            s in proptest::collection::vec(proptest::num::u8::ANY, 0..=16),
        ) {
            let expected = s.iter().fold(0u128, |v, &b| v << 8 | b as u128);
            proptest::prop_assert_eq!(big_endian_value(&s), expected);
        }
    }
}
