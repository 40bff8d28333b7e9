//! Where the bytes that end a CSV field (the delimiter, `"` and `\n`) sit in a
//! 64-byte window, one bit per byte: the record splitter's fast path reads
//! lines a window at a time instead of searching field by field, and the
//! records of one buffer share the windows they fall in.
//!
//! On x86_64 the window is compared 16 bytes at a time with SSE2 (part of
//! every x86_64 CPU), or 32 bytes at a time with AVX2 ([`window_masks_avx2`])
//! where the CPU has it ([`wide_available`], checked at run time); other
//! targets compare byte by byte. Every way gives the same masks (a property
//! test compares them).

/// Bytes per window.
pub const WINDOW: usize = 64;

/// The special bytes of one window: bit `k` stands for byte `k`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowMasks {
    /// Bytes equal to the delimiter.
    pub delimiters: u64,
    /// Bytes equal to `"` or `\n`.
    pub breaks: u64,
}

/// The delimiters, quotes and line breaks of `window`.
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn window_masks(window: &[u8; WINDOW], delimiter: u8) -> WindowMasks {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let mut delimiters = 0u64;
    let mut breaks = 0u64;
    // SAFETY: SSE2 is part of the x86_64 baseline, so its intrinsics run on
    // every target this compiles for; each unaligned load reads 16 bytes at
    // offset 0, 16, 32 or 48 of the 64-byte `window`.
    unsafe {
        let delimiter = _mm_set1_epi8(delimiter as i8);
        let quote = _mm_set1_epi8(b'"' as i8);
        let newline = _mm_set1_epi8(b'\n' as i8);
        for part in 0..WINDOW / 16 {
            let bytes = _mm_loadu_si128(window.as_ptr().add(part * 16).cast::<__m128i>());
            let d = _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, delimiter)) as u16 as u64;
            let b = _mm_movemask_epi8(_mm_or_si128(
                _mm_cmpeq_epi8(bytes, quote),
                _mm_cmpeq_epi8(bytes, newline),
            )) as u16 as u64;
            delimiters |= d << (part * 16);
            breaks |= b << (part * 16);
        }
    }
    WindowMasks { delimiters, breaks }
}

/// Whether this CPU runs [`window_masks_avx2`] and the readers compiled for
/// AVX2 and BMI (checked once, then cached by the standard library).
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn wide_available() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("bmi1")
        && std::arch::is_x86_feature_detected!("bmi2")
        && std::arch::is_x86_feature_detected!("lzcnt")
        && std::arch::is_x86_feature_detected!("popcnt")
}

/// Whether this CPU runs the wide readers: never off x86_64.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub fn wide_available() -> bool {
    false
}

/// [`window_masks`] compared 32 bytes at a time.
///
/// # Safety
/// The CPU must have AVX2 ([`wide_available`]).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
pub unsafe fn window_masks_avx2(window: &[u8; WINDOW], delimiter: u8) -> WindowMasks {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256,
        _mm256_set1_epi8,
    };
    let delimiter = _mm256_set1_epi8(delimiter as i8);
    let quote = _mm256_set1_epi8(b'"' as i8);
    let newline = _mm256_set1_epi8(b'\n' as i8);
    // SAFETY: each unaligned load reads 32 bytes at offset 0 or 32 of the
    // 64-byte `window`.
    let (low, high) = unsafe {
        (
            _mm256_loadu_si256(window.as_ptr().cast::<__m256i>()),
            _mm256_loadu_si256(window.as_ptr().add(32).cast::<__m256i>()),
        )
    };
    let marks = |bytes: __m256i| {
        let d = _mm256_movemask_epi8(_mm256_cmpeq_epi8(bytes, delimiter)) as u32 as u64;
        let b = _mm256_movemask_epi8(_mm256_or_si256(
            _mm256_cmpeq_epi8(bytes, quote),
            _mm256_cmpeq_epi8(bytes, newline),
        )) as u32 as u64;
        (d, b)
    };
    let (d_low, b_low) = marks(low);
    let (d_high, b_high) = marks(high);
    WindowMasks {
        delimiters: d_high << 32 | d_low,
        breaks: b_high << 32 | b_low,
    }
}

/// The delimiters, quotes and line breaks of `window`.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub fn window_masks(window: &[u8; WINDOW], delimiter: u8) -> WindowMasks {
    let mut masks = WindowMasks::default();
    for (k, &b) in window.iter().enumerate() {
        masks.delimiters |= ((b == delimiter) as u64) << k;
        masks.breaks |= ((b == b'"' || b == b'\n') as u64) << k;
    }
    masks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The masks byte by byte, as the spec of [`window_masks`] says.
    fn masks_byte_by_byte(window: &[u8; WINDOW], delimiter: u8) -> WindowMasks {
        let mut masks = WindowMasks::default();
        for (k, &b) in window.iter().enumerate() {
            masks.delimiters |= ((b == delimiter) as u64) << k;
            masks.breaks |= ((b == b'"' || b == b'\n') as u64) << k;
        }
        masks
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, failure_persistence: None, .. Default::default() })]

        /// SSE2 and (where the CPU has it) AVX2 mark the bytes a byte-by-byte
        /// comparison marks, whatever the bytes and the delimiter.
        #[test]
        fn every_way_gives_the_byte_by_byte_masks(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    3 => proptest::sample::select(vec![b',', b';', b'"', b'\n', b'\r', b'\t', 0xfe, b'a']),
                    1 => proptest::num::u8::ANY,
                ],
                WINDOW,
            ),
            delimiter in proptest::prop_oneof![
                3 => proptest::sample::select(vec![b',', b';', b'\t', b'|', 0xfe]),
                1 => proptest::num::u8::ANY,
            ],
        ) {
            let window: [u8; WINDOW] = bytes[..].try_into().unwrap();
            let expected = masks_byte_by_byte(&window, delimiter);
            proptest::prop_assert_eq!(window_masks(&window, delimiter), expected);
            #[cfg(target_arch = "x86_64")]
            if wide_available() {
                // SAFETY: the CPU has AVX2.
                proptest::prop_assert_eq!(unsafe { window_masks_avx2(&window, delimiter) }, expected);
            }
        }
    }

    #[test]
    fn every_special_byte_and_only_those_is_marked() {
        let text = b"a,b\"c\nd;e\r\n,,xy\"0123456789,\",\n\"abcdefghijklmnopqrstuvwxyz;;,,\n\"\"";
        let window: [u8; WINDOW] = text[..WINDOW].try_into().unwrap();
        let masks = window_masks(&window, b',');
        let bits = |f: &dyn Fn(u8) -> bool| {
            window
                .iter()
                .enumerate()
                .filter(|(_, &b)| f(b))
                .fold(0u64, |m, (k, _)| m | 1 << k)
        };
        assert_eq!(masks.delimiters, bits(&|b| b == b','));
        assert_eq!(masks.breaks, bits(&|b| b == b'"' || b == b'\n'));
        // A delimiter above 0x7f compares as the same byte, in every part.
        let mut high = [b'a'; WINDOW];
        high[3] = 0xfe;
        high[63] = 0xfe;
        let masks = window_masks(&high, 0xfe);
        assert_eq!(masks.delimiters, 1 << 3 | 1 << 63);
        assert_eq!(masks.breaks, 0);
    }
}
