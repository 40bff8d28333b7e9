//! Text formatting of figures for the screen: thousands separators, exact
//! percentages from published share text (both shared with the CLI through
//! [`rfm_core::figures`]), and short forms for narrow cells.

use rfm_core::money::{self, Money};

pub use rfm_core::figures::{counted, group, money, percent};

/// A count with thousands separators.
pub fn count(n: u64) -> String {
    rfm_core::figures::count(n)
}

/// `part / whole` as a percentage with one decimal, exact.
pub fn ratio_percent(part: i128, whole: i128) -> String {
    if whole == 0 {
        return String::new();
    }
    format!("{}%", money::div_round(part * 100, whole, 1))
}

/// A short form for narrow cells (`1.2k`, `4.3M`); exact values are shown elsewhere.
pub fn short(value: f64) -> String {
    let a = value.abs();
    if a >= 1e9 {
        format!("{:.1}G", value / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", value / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", value / 1e3)
    } else if a >= 10.0 || a.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// Money in short form.
pub fn money_short(m: Money) -> String {
    short(m.0 as f64 / money::ONE as f64)
}

/// Cuts text to `width` characters, ending with `…` when cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut s: String = text.chars().take(width - 1).collect();
    s.push('…');
    s
}

/// A horizontal bar of `fraction` (0–1) of `width` cells, with eighth blocks.
pub fn bar(fraction: f64, width: usize) -> String {
    const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let fraction = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let eighths = (fraction * width as f64 * 8.0).round() as usize;
    let mut s = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        s.push(PARTS[eighths % 8]);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    // group, percent and money are rfm_core::figures' (tested there).
    #[test]
    fn dashboard_figures() {
        assert_eq!(count(1_077), "1,077");
        assert_eq!(ratio_percent(1, 3), "33.3%");
    }

    #[test]
    fn bars_scale() {
        assert_eq!(bar(1.0, 4), "████");
        assert_eq!(bar(0.5, 4), "██");
        assert_eq!(bar(0.0, 4), "");
        assert_eq!(bar(1.0 / 16.0, 2), "▏");
        assert_eq!(fit("Potential Loyalists", 10), "Potential…");
    }
}
