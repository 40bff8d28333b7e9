//! The orders scoring needs (spec §4), by radix sort: customers by id, and
//! positions by recency, frequency or monetary, ties broken by position
//! (the id order). A stable LSD radix sort on a 64-bit key per element
//! does the bulk, skipping the bytes every key shares (recency days and
//! invoice counts take one or two passes); elements whose keys are equal
//! but whose full values may differ (ids sharing their first 8 bytes,
//! amounts beyond 64 bits) are then ordered by a comparison sort within
//! each such run. The result is the order of a comparison sort on the full
//! value then the position, whatever the values.
//!
//! Keys are first made small: less the smallest, their shared low zero
//! bits shifted out, amounts divided by the largest power of ten that
//! divides them all (whole cents, most often), or else each byte recoded
//! in as few bits as the values it takes need (ids of digits). When such
//! a key and the position fit in 64 bits together, the sort moves one
//! `u64` per element (key above, position below) and reads it in order at
//! every pass; only wider keys are sorted as positions that look their key
//! up. Scores of keys of a small span are counted, not sorted
//! ([`ntiles_by_u64`]).

use std::cmp::Ordering;
use std::ops::Range;

use crate::money::Money;

/// The positions `0..keys.len()` ordered by `keys`, ties in position order
/// (a stable sort).
pub fn radix_order(keys: &[u64]) -> Vec<u32> {
    let n = keys.len();
    let identity = || (0..n as u32).collect();
    let Some((min, max)) = keys.iter().fold(None, |bounds, &k| match bounds {
        None => Some((k, k)),
        Some((lo, hi)) => Some((k.min(lo), k.max(hi))),
    }) else {
        return Vec::new();
    };
    if min == max {
        return identity();
    }
    // Less the smallest, every key has the low zero bits of their OR: shifted
    // out, the keys keep their order and ties.
    let shared_zeros = keys
        .iter()
        .fold(0u64, |or, &k| or | (k - min))
        .trailing_zeros();
    let key_bits = 64 - ((max - min) >> shared_zeros).leading_zeros();
    let pos_bits = 64 - ((n - 1) as u64).leading_zeros();
    if key_bits + pos_bits <= 64 {
        // Key above, position below: sorting these sorts by (key, position).
        let packed = keys
            .iter()
            .zip(0u64..)
            .map(|(&k, pos)| ((k - min) >> shared_zeros) << pos_bits | pos)
            .collect();
        return positions_of_packed(packed, key_bits, pos_bits);
    }
    let codes = ByteCodes::of(keys);
    if codes.bits + pos_bits <= 64 {
        let packed = keys
            .iter()
            .zip(0u64..)
            .map(|(&k, pos)| codes.code(k) << pos_bits | pos)
            .collect();
        return positions_of_packed(packed, codes.bits, pos_bits);
    }
    radix_order_by_lookup(keys)
}

/// The positions of values that hold a key of `key_bits` above a position
/// of `pos_bits`, sorted by key then position.
fn positions_of_packed(packed: Vec<u64>, key_bits: u32, pos_bits: u32) -> Vec<u32> {
    // The bytes that hold key bits; the position bits below them in the
    // lowest such byte only refine ties the way the stable sort would.
    let bytes = (pos_bits / 8) as usize..(pos_bits + key_bits).div_ceil(8) as usize;
    let pos_mask = (1u64 << pos_bits) - 1;
    sort_packed(packed, bytes)
        .into_iter()
        .map(|v| (v & pos_mask) as u32)
        .collect()
}

/// Keys recoded byte by byte: each byte's values that occur numbered in
/// increasing order, in as few bits as their count needs, the codes put
/// side by side from the most significant byte. The same order as the
/// keys, in fewer bits when bytes take few values (ids of digits: ten
/// values a byte, four bits).
struct ByteCodes {
    /// Per byte (most significant first): the code of each value, and the
    /// code's width.
    bytes: Vec<(usize, [u8; 256], u32)>,
    /// The width of a whole code.
    bits: u32,
}

impl ByteCodes {
    fn of(keys: &[u64]) -> ByteCodes {
        let mut seen = [[false; 256]; 8];
        for &k in keys {
            for (byte, seen) in seen.iter_mut().enumerate() {
                seen[((k >> (8 * byte)) & 0xff) as usize] = true;
            }
        }
        let mut bytes = Vec::new();
        let mut bits = 0;
        for byte in (0..8).rev() {
            let mut codes = [0u8; 256];
            let mut next = 0u32;
            for (value, &present) in seen[byte].iter().enumerate() {
                if present {
                    codes[value] = next as u8;
                    next += 1;
                }
            }
            // A byte every key shares needs no bits.
            let width = 32 - (next - 1).leading_zeros();
            if width > 0 {
                bytes.push((byte, codes, width));
                bits += width;
            }
        }
        ByteCodes { bytes, bits }
    }

    #[inline]
    fn code(&self, key: u64) -> u64 {
        self.bytes.iter().fold(0u64, |code, (byte, codes, width)| {
            code << width | codes[((key >> (8 * byte)) & 0xff) as usize] as u64
        })
    }
}

/// `values` sorted by their bytes `bytes` (stable LSD passes; a byte every
/// value shares is skipped).
fn sort_packed(mut values: Vec<u64>, bytes: Range<usize>) -> Vec<u64> {
    let n = values.len();
    let mut counts = vec![[0u32; 256]; bytes.len()];
    for &v in &values {
        for (c, byte) in counts.iter_mut().zip(bytes.clone()) {
            c[((v >> (8 * byte)) & 0xff) as usize] += 1;
        }
    }
    let mut next = vec![0u64; n];
    for (c, byte) in counts.iter().zip(bytes) {
        if c.iter().any(|&k| k as usize == n) {
            continue;
        }
        let mut at = starts(c);
        let shift = 8 * byte;
        for &v in &values {
            let d = ((v >> shift) & 0xff) as usize;
            next[at[d] as usize] = v;
            at[d] += 1;
        }
        std::mem::swap(&mut values, &mut next);
    }
    values
}

/// Where each digit's run starts, from the digits' counts.
fn starts(counts: &[u32; 256]) -> [u32; 256] {
    let mut at = [0u32; 256];
    let mut sum = 0;
    for (a, &k) in at.iter_mut().zip(counts) {
        *a = sum;
        sum += k;
    }
    at
}

/// [`radix_order`] of keys too wide to travel with their positions: the
/// positions are sorted, each pass looking its key up.
fn radix_order_by_lookup(keys: &[u64]) -> Vec<u32> {
    let n = keys.len();
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut counts = vec![[0u32; 256]; 8];
    for &k in keys {
        for (byte, c) in counts.iter_mut().enumerate() {
            c[((k >> (8 * byte)) & 0xff) as usize] += 1;
        }
    }
    let mut next = vec![0u32; n];
    for (byte, c) in counts.iter().enumerate() {
        // Every key has the same byte here: the pass would not move anything.
        if c.iter().any(|&k| k as usize == n) {
            continue;
        }
        let mut at = starts(c);
        let shift = 8 * byte;
        for &pos in &order {
            let d = ((keys[pos as usize] >> shift) & 0xff) as usize;
            next[at[d] as usize] = pos;
            at[d] += 1;
        }
        std::mem::swap(&mut order, &mut next);
    }
    order
}

/// Orders, within each run of equal `keys` in `order`, the positions by
/// `cmp` (a total order of the full values; equal values keep their
/// position order).
pub fn order_ties(order: &mut [u32], keys: &[u64], cmp: impl Fn(u32, u32) -> Ordering) {
    let mut start = 0;
    while start < order.len() {
        let key = keys[order[start] as usize];
        let mut end = start + 1;
        while end < order.len() && keys[order[end] as usize] == key {
            end += 1;
        }
        if end - start > 1 {
            order[start..end].sort_unstable_by(|&a, &b| cmp(a, b).then(a.cmp(&b)));
        }
        start = end;
    }
}

/// The largest power of ten that [`order_by_money`] divides amounts by
/// (`10^18` is one currency unit).
const MAX_TEN_POWER: u32 = 18;

/// `d`'s inverse modulo 2^128 (`d` odd), by Newton's iteration: each step
/// doubles the bits that are right, and `d` is its own inverse modulo 8.
const fn inverse_mod_2_128(d: u128) -> u128 {
    let mut x = d;
    let mut step = 0;
    while step < 6 {
        x = x.wrapping_mul(2u128.wrapping_sub(d.wrapping_mul(x)));
        step += 1;
    }
    x
}

/// `5^k` for `k` up to [`MAX_TEN_POWER`], with its inverse modulo 2^128:
/// `y` is a multiple of `5^k` exactly when `y * inverse <= u128::MAX / 5^k`,
/// and then that product is `y / 5^k` (exact division by multiplication).
const POWERS_OF_FIVE: [(u128, u128); MAX_TEN_POWER as usize + 1] = {
    let mut table = [(0, 0); MAX_TEN_POWER as usize + 1];
    let mut k = 0;
    while k <= MAX_TEN_POWER as usize {
        let p = 5u128.pow(k as u32);
        table[k] = (p, inverse_mod_2_128(p));
        k += 1;
    }
    table
};

/// `x / 10^k` when `10^k` divides `x`.
#[inline]
fn divided_by_ten_power(x: u128, k: u32) -> Option<u128> {
    let (p, inverse) = POWERS_OF_FIVE[k as usize];
    if x.trailing_zeros() < k {
        return None;
    }
    let q = (x >> k).wrapping_mul(inverse);
    (q <= u128::MAX / p).then_some(q)
}

/// The keys of `values` as whole multiples of the largest power of ten
/// (up to `10^18`) that divides each one's offset from the smallest, when
/// they fit in 64 bits: exact keys in the values' order (whole cents of
/// the offset, most often).
fn exact_money_keys(values: &[Money]) -> Option<Vec<u64>> {
    let first = values.first()?.0;
    // A power of ten divides every offset from the smallest exactly when it
    // divides every distance from the first (each set is the other's
    // differences): one pass finds it with the bounds. A multiple of 10^k
    // is one of 10^(k-1) too, so `k` only goes down.
    let distance = |v: i128| {
        if v >= first {
            v.wrapping_sub(first) as u128
        } else {
            first.wrapping_sub(v) as u128
        }
    };
    let (mut min, mut max, mut k) = (first, first, MAX_TEN_POWER);
    for m in values {
        (min, max) = (min.min(m.0), max.max(m.0));
        let d = distance(m.0);
        k = k.min(d.trailing_zeros());
        while k > 0 && divided_by_ten_power(d, k).is_none() {
            k -= 1;
        }
    }
    // Offsets from the smallest, as unsigned: the same order.
    let span = max.wrapping_sub(min) as u128;
    divided_by_ten_power(span, k).filter(|&q| q <= u64::MAX as u128)?;
    let (_, inverse) = POWERS_OF_FIVE[k as usize];
    Some(
        values
            .iter()
            .map(|m| (m.0.wrapping_sub(min) as u128 >> k).wrapping_mul(inverse) as u64)
            .collect(),
    )
}

/// The positions of `values` ordered by value, ties in position order.
pub fn order_by_money(values: &[Money]) -> Vec<u32> {
    match exact_money_keys(values) {
        Some(keys) => radix_order(&keys),
        None => order_by_wide_money(values),
    }
}

/// [`order_by_money`] of amounts whose exact keys do not fit in 64 bits:
/// their top 64 significant bits sorted, the ties refined by value.
fn order_by_wide_money(values: &[Money]) -> Vec<u32> {
    let Some(min) = values.iter().map(|m| m.0).min() else {
        return Vec::new();
    };
    let offset = |m: &Money| m.0.wrapping_sub(min) as u128;
    let span = values.iter().map(offset).max().unwrap_or(0);
    let shift = (128 - span.leading_zeros()).saturating_sub(64);
    let keys: Vec<u64> = values.iter().map(|m| (offset(m) >> shift) as u64).collect();
    let mut order = radix_order(&keys);
    if shift > 0 {
        order_ties(&mut order, &keys, |a, b| {
            values[a as usize].cmp(&values[b as usize])
        });
    }
    order
}

/// Where NTILE(5) over `n` rows starts its buckets 2 to 5: the score of
/// rank `r` is one more than the number of these at or below it.
fn ntile_bounds(n: usize) -> [usize; 4] {
    let (q, r) = (n / 5, n % 5);
    std::array::from_fn(|j| {
        let bucket = j + 1;
        if bucket <= r {
            bucket * (q + 1)
        } else {
            r * (q + 1) + (bucket - r) * q
        }
    })
}

/// The NTILE(5) score of rank `rank`, given [`ntile_bounds`].
#[inline]
fn ntile_of(rank: usize, bounds: &[usize; 4]) -> u8 {
    1 + bounds.iter().map(|&b| (rank >= b) as u8).sum::<u8>()
}

/// The NTILE(5) score of each position, given the positions in rank order.
pub fn ntiles_of_order(order: &[u32]) -> Vec<u8> {
    let bounds = ntile_bounds(order.len());
    let mut scores = vec![0u8; order.len()];
    for (rank, &pos) in order.iter().enumerate() {
        scores[pos as usize] = ntile_of(rank, &bounds);
    }
    scores
}

/// Key spans up to which [`ntiles_by_u64`] counts keys rather than sorting
/// them (below the number of keys, it always does).
const COUNTED_SPAN: u64 = 1 << 20;

/// The NTILE(5) score of each position ranked by `keys`, ties in position
/// order. Keys of a small span (days, invoice counts, most cents) are
/// counted: a key's rank is the number of smaller keys plus the number of
/// equal ones before it, found in one pass in position order, with no
/// sort. Others are radix sorted.
pub fn ntiles_by_u64(keys: &[u64]) -> Vec<u8> {
    let n = keys.len();
    let Some((min, max)) = keys.iter().fold(None, |bounds, &k| match bounds {
        None => Some((k, k)),
        Some((lo, hi)) => Some((k.min(lo), k.max(hi))),
    }) else {
        return Vec::new();
    };
    let span = max - min;
    if span > COUNTED_SPAN.max(n as u64) {
        return ntiles_of_order(&radix_order(keys));
    }
    let mut next_rank = vec![0u32; span as usize + 1];
    for &k in keys {
        next_rank[(k - min) as usize] += 1;
    }
    let mut below = 0;
    for slot in next_rank.iter_mut() {
        let count = *slot;
        *slot = below;
        below += count;
    }
    let bounds = ntile_bounds(n);
    keys.iter()
        .map(|&k| {
            let slot = &mut next_rank[(k - min) as usize];
            let rank = *slot;
            *slot += 1;
            ntile_of(rank as usize, &bounds)
        })
        .collect()
}

/// The NTILE(5) score of each position ranked by `values` from the
/// largest, ties in position order.
pub fn ntiles_by_i64_desc(values: &[i64]) -> Vec<u8> {
    ntiles_by_u64(&desc_keys(values))
}

/// The NTILE(5) score of each position ranked by `values`, ties in
/// position order.
pub fn ntiles_by_money(values: &[Money]) -> Vec<u8> {
    match exact_money_keys(values) {
        Some(keys) => ntiles_by_u64(&keys),
        None => ntiles_of_order(&order_by_wide_money(values)),
    }
}

/// Keys that order i64 values from the largest: flipping the sign bit
/// orders i64 as u64; flipping every bit reverses.
fn desc_keys(values: &[i64]) -> Vec<u64> {
    values.iter().map(|&v| !((v as u64) ^ (1 << 63))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference: a comparison sort of (value, position) pairs.
    fn by_sort<K: Ord + Copy>(values: &[K]) -> Vec<u32> {
        let mut pairs: Vec<(K, u32)> = values.iter().copied().zip(0..).collect();
        pairs.sort_unstable();
        pairs.into_iter().map(|(_, p)| p).collect()
    }

    /// The positions of `values` ordered by value, ties in position order.
    fn order_by_u64(values: &[u64]) -> Vec<u32> {
        radix_order(values)
    }

    /// The positions of `values` ordered by value from the largest, ties in
    /// position order.
    fn order_by_i64_desc(values: &[i64]) -> Vec<u32> {
        radix_order(&desc_keys(values))
    }

    #[test]
    fn ntile_bounds_give_sql_ntile() {
        for n in 0..300 {
            let bounds = ntile_bounds(n);
            for rank in 0..n {
                assert_eq!(
                    ntile_of(rank, &bounds),
                    crate::score::ntile(rank, n, 5),
                    "rank {rank} of {n}"
                );
            }
        }
    }

    #[test]
    fn extremes_and_ties_order_like_a_comparison_sort() {
        let money = [
            Money(crate::money::MAX_UNITS),
            Money(-crate::money::MAX_UNITS),
            Money(0),
            Money(1),
            Money(crate::money::MAX_UNITS - 1),
            Money(0),
            Money(-1),
            Money(crate::money::MAX_UNITS),
        ];
        assert_eq!(order_by_money(&money), by_sort(&money));
        let small = [3u64, 1, 3, 0, u64::MAX, 1, 3];
        assert_eq!(order_by_u64(&small), by_sort(&small));
        let days = [5i64, -2, 5, i64::MAX, i64::MIN, 0, 5];
        let reversed: Vec<std::cmp::Reverse<i64>> =
            days.iter().map(|&d| std::cmp::Reverse(d)).collect();
        assert_eq!(order_by_i64_desc(&days), by_sort(&reversed));
        assert!(order_by_money(&[]).is_empty());
        assert_eq!(order_by_u64(&[7]), [0]);
    }

    #[test]
    fn powers_of_five_have_their_inverses() {
        for (k, &(p, inverse)) in POWERS_OF_FIVE.iter().enumerate() {
            assert_eq!(p, 5u128.pow(k as u32));
            assert_eq!(p.wrapping_mul(inverse), 1, "5^{k}");
        }
        assert_eq!(divided_by_ten_power(1_250_000, 4), Some(125));
        assert_eq!(divided_by_ten_power(1_250_000, 5), None);
        assert_eq!(divided_by_ten_power(1_200_000, 5), Some(12));
        assert_eq!(divided_by_ten_power(0, 18), Some(0));
        assert_eq!(divided_by_ten_power(5 * 10u128.pow(17), 18), None);
    }

    #[test]
    fn amounts_become_whole_units_of_their_largest_shared_power_of_ten() {
        let cent = crate::money::ONE / 100;
        let keys =
            |units: &[i128]| exact_money_keys(&units.iter().map(|&u| Money(u)).collect::<Vec<_>>());
        // Cents, below and above the first value: offsets from -1.25 in cents.
        assert_eq!(
            keys(&[300 * cent, -125 * cent, 0, -125 * cent]),
            Some(vec![425, 0, 125, 0])
        );
        // Whole units (10^18) at most, however round the amounts.
        assert_eq!(keys(&[0, 2000 * crate::money::ONE]), Some(vec![0, 2000]));
        // A span of more than 64 bits of units has no exact keys.
        assert_eq!(
            keys(&[-crate::money::MAX_UNITS, crate::money::MAX_UNITS]),
            None
        );
        assert_eq!(keys(&[]), None);
    }

    #[test]
    fn amounts_in_cents_order_exactly_with_ties_in_position_order() {
        // Whole cents (10^16 units) far apart, equal amounts among them, and
        // the widest range: each order as a comparison sort's.
        let cent = crate::money::ONE / 100;
        let cases: Vec<Vec<Money>> = vec![
            [125, -3, 125, 0, 99_999_999, -3, 125]
                .iter()
                .map(|&c| Money(c * cent))
                .collect(),
            vec![
                Money(crate::money::MAX_UNITS / cent * cent),
                Money(0),
                Money(-cent),
            ],
            vec![
                Money(crate::money::MAX_UNITS),
                Money(-crate::money::MAX_UNITS),
                Money(0),
            ],
            vec![Money(7 * cent); 5],
        ];
        for money in cases {
            assert_eq!(order_by_money(&money), by_sort(&money), "{money:?}");
        }
    }

    proptest! {
        #[test]
        fn radix_orders_equal_comparison_sorts(
            money in proptest::collection::vec(
                prop_oneof![
                    (0i128..50).prop_map(|c| c * crate::money::ONE / 100),
                    any::<i128>().prop_map(|u| u % crate::money::MAX_UNITS),
                    (-5i128..5),
                ],
                0..300,
            ),
            small in proptest::collection::vec(
                prop_oneof![0u64..20, any::<u64>()],
                0..300,
            ),
            days in proptest::collection::vec(prop_oneof![-3i64..400, any::<i64>()], 0..300),
        ) {
            let money: Vec<Money> = money.into_iter().map(Money).collect();
            prop_assert_eq!(order_by_money(&money), by_sort(&money));
            prop_assert_eq!(order_by_u64(&small), by_sort(&small));
            let reversed: Vec<std::cmp::Reverse<i64>> =
                days.iter().map(|&d| std::cmp::Reverse(d)).collect();
            prop_assert_eq!(order_by_i64_desc(&days), by_sort(&reversed));
            // Scores counted or sorted: those of the comparison sort's ranks.
            prop_assert_eq!(ntiles_by_money(&money), ntiles_of_order(&by_sort(&money)));
            prop_assert_eq!(ntiles_by_u64(&small), ntiles_of_order(&by_sort(&small)));
            prop_assert_eq!(ntiles_by_i64_desc(&days), ntiles_of_order(&by_sort(&reversed)));
        }

        /// Keys that travel with their positions (small spans, shared low
        /// zero bits) and keys that do not, in the same sort as before.
        #[test]
        fn packed_and_looked_up_keys_order_alike(
            base in any::<u64>(),
            shift in 0u32..40,
            steps in proptest::collection::vec(0u64..1000, 0..400),
            wide in proptest::collection::vec(any::<u64>(), 0..50),
        ) {
            let packed: Vec<u64> = steps
                .iter()
                .map(|&s| base.wrapping_add(s << shift))
                .collect();
            prop_assert_eq!(radix_order(&packed), by_sort(&packed));
            prop_assert_eq!(ntiles_by_u64(&packed), ntiles_of_order(&by_sort(&packed)));
            let mut mixed = packed.clone();
            mixed.extend(&wide);
            prop_assert_eq!(radix_order(&mixed), by_sort(&mixed));
        }

        /// Keys whose bytes take few values each, over the whole width (id
        /// prefixes of digits): recoded byte by byte, ordered as before.
        #[test]
        fn keys_of_few_byte_values_order_like_a_comparison_sort(
            ids in proptest::collection::vec("[1-9][0-9]{0,9}", 0..400),
            choices in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..4), 8),
            picks in proptest::collection::vec(any::<[u8; 8]>(), 0..300),
        ) {
            let prefixes: Vec<u64> = ids
                .iter()
                .map(|id| {
                    let mut b = [0u8; 8];
                    let k = id.len().min(8);
                    b[..k].copy_from_slice(&id.as_bytes()[..k]);
                    u64::from_be_bytes(b)
                })
                .collect();
            prop_assert_eq!(radix_order(&prefixes), by_sort(&prefixes));
            let keys: Vec<u64> = picks
                .iter()
                .map(|p| {
                    let bytes: [u8; 8] = std::array::from_fn(|i| {
                        choices[i][p[i] as usize % choices[i].len()]
                    });
                    u64::from_le_bytes(bytes)
                })
                .collect();
            prop_assert_eq!(radix_order(&keys), by_sort(&keys));
            prop_assert_eq!(ntiles_by_u64(&keys), ntiles_of_order(&by_sort(&keys)));
        }

        /// Amounts that are all multiples of one power of ten (exact keys)
        /// or, past 64 bits of them, not: ordered as a comparison sort.
        #[test]
        fn amounts_of_one_scale_order_like_a_comparison_sort(
            k in 0u32..=20,
            counts in proptest::collection::vec(-100_000i128..100_000, 0..300),
            spread in prop_oneof![Just(1i128), Just(10i128.pow(19)), Just(10i128.pow(15))],
        ) {
            let unit = 10i128.pow(k);
            let money: Vec<Money> = counts
                .iter()
                .map(|&c| Money(((c * spread) % (crate::money::MAX_UNITS / unit)) * unit))
                .collect();
            prop_assert_eq!(order_by_money(&money), by_sort(&money));
            prop_assert_eq!(ntiles_by_money(&money), ntiles_of_order(&by_sort(&money)));
        }
    }
}
