//! The orders scoring needs (spec §4), by radix sort: customers by id, and
//! positions by recency, frequency or monetary, ties broken by position
//! (the id order). A stable LSD radix sort on a 64-bit key per element
//! does the bulk, skipping the bytes every key shares (recency days and
//! invoice counts take one or two passes); elements whose keys are equal
//! but whose full values may differ (ids sharing their first 8 bytes,
//! amounts beyond 64 bits) are then ordered by a comparison sort within
//! each such run. The result is the order of a comparison sort on the full
//! value then the position, whatever the values.

use std::cmp::Ordering;

use crate::money::Money;

/// The positions `0..keys.len()` ordered by `keys`, ties in position order
/// (a stable sort).
pub fn radix_order(keys: &[u64]) -> Vec<u32> {
    let n = keys.len();
    let mut order: Vec<u32> = (0..n as u32).collect();
    if n < 2 {
        return order;
    }
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
        let mut at = [0u32; 256];
        let mut sum = 0;
        for (a, &k) in at.iter_mut().zip(c) {
            *a = sum;
            sum += k;
        }
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

/// The positions of `values` ordered by value, ties in position order.
pub fn order_by_money(values: &[Money]) -> Vec<u32> {
    let Some(min) = values.iter().map(|m| m.0).min() else {
        return Vec::new();
    };
    // Offsets from the smallest, as unsigned: the same order.
    let span = values
        .iter()
        .map(|m| m.0.wrapping_sub(min) as u128)
        .max()
        .unwrap_or(0);
    // Their top 64 significant bits: an order up to ties, refined below.
    let shift = (128 - span.leading_zeros()).saturating_sub(64);
    let keys: Vec<u64> = values
        .iter()
        .map(|m| (m.0.wrapping_sub(min) as u128 >> shift) as u64)
        .collect();
    let mut order = radix_order(&keys);
    if shift > 0 {
        order_ties(&mut order, &keys, |a, b| {
            values[a as usize].cmp(&values[b as usize])
        });
    }
    order
}

/// The positions of `values` ordered by value, ties in position order.
pub fn order_by_u64(values: &[u64]) -> Vec<u32> {
    radix_order(values)
}

/// The positions of `values` ordered by value from the largest, ties in
/// position order.
pub fn order_by_i64_desc(values: &[i64]) -> Vec<u32> {
    // Flipping the sign bit orders i64 as u64; flipping every bit reverses.
    let keys: Vec<u64> = values.iter().map(|&v| !((v as u64) ^ (1 << 63))).collect();
    radix_order(&keys)
}

/// The NTILE(5) score of each position, given the positions in rank order.
pub fn ntiles_of_order(order: &[u32]) -> Vec<u8> {
    let n = order.len();
    let mut scores = vec![0u8; n];
    for (rank, &pos) in order.iter().enumerate() {
        scores[pos as usize] = crate::score::ntile(rank, n, 5);
    }
    scores
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
        }
    }
}
