//! Where the bytes that end a CSV field (the delimiter, `"` and `\n`) sit in a
//! 16-byte block, as one bit per byte: the record splitter's fast path reads
//! lines a block at a time instead of searching field by field.
//!
//! On x86_64 the block is compared with SSE2 (part of every x86_64 CPU); other
//! targets compare byte by byte, with the same result.

/// Bytes per block.
pub const BLOCK: usize = 16;

/// Bit `k` is set when `block[k]` is `delimiter`, `"` or `\n`.
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn special_mask(block: &[u8; BLOCK], delimiter: u8) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline, so its intrinsics run on
    // every target this compiles for; the unaligned load reads exactly the 16
    // bytes of `block`.
    unsafe {
        let bytes = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
        let delimiters = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(delimiter as i8));
        let quotes = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'"' as i8));
        let newlines = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'\n' as i8));
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(delimiters, quotes), newlines)) as u32
    }
}

/// Bit `k` is set when `block[k]` is `delimiter`, `"` or `\n`.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub fn special_mask(block: &[u8; BLOCK], delimiter: u8) -> u32 {
    let mut mask = 0;
    for (k, &b) in block.iter().enumerate() {
        mask |= ((b == delimiter || b == b'"' || b == b'\n') as u32) << k;
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_special_byte_and_only_those_is_marked() {
        let block: [u8; BLOCK] = *b"a,b\"c\nd;e\r\n,,xy\"";
        let mask = special_mask(&block, b',');
        let expected = block
            .iter()
            .enumerate()
            .filter(|(_, &b)| matches!(b, b',' | b'"' | b'\n'))
            .fold(0u32, |m, (k, _)| m | 1 << k);
        assert_eq!(mask, expected);
        // A delimiter above 0x7f compares as the same byte.
        let mut high = [b'a'; BLOCK];
        high[3] = 0xfe;
        assert_eq!(special_mask(&high, 0xfe), 1 << 3);
    }
}
