//! HTML building: [`esc`] escapes every data value (text and attributes:
//! `& < > " '`), [`layout`] wraps a page's body in the shared head,
//! navigation and banner, and the number formats every page uses. No page
//! holds inline script or style: the Content-Security-Policy forbids them.

use std::fmt::Write;

use rfm_core::money::Money;

/// `text` safe inside an element or a quoted attribute.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole number with thousands separators: `4,338`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// An amount with 2 decimals and thousands separators: `4,339,953.67`.
pub fn money(m: Money) -> String {
    let fixed = m.to_fixed(2);
    let (sign, body) = match fixed.strip_prefix('-') {
        Some(b) => ("-", b),
        None => ("", fixed.as_str()),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, "00"));
    let int: u64 = int.parse().unwrap_or(0);
    format!("{sign}{}.{frac}", count(int))
}

/// A share given as a fraction text (`0.487011`) as a percentage with one
/// decimal (`48.7%`); empty stays empty.
pub fn percent(fraction: &str) -> String {
    match fraction.parse::<f64>() {
        Ok(f) => format!("{:.1}%", f * 100.0),
        Err(_) => String::new(),
    }
}

/// The pages of the navigation bar: (path, title).
pub const NAV: [(&str, &str); 7] = [
    ("/", "Overview"),
    ("/heatmap", "R×F heatmap"),
    ("/distributions", "Distributions"),
    ("/customers", "Customers"),
    ("/runs", "Runs"),
    ("/movement", "Movement"),
    ("/live", "Live"),
];

/// What every page shows around its body.
pub struct Frame<'a> {
    pub title: &'a str,
    /// The nav entry to mark current.
    pub current: &'a str,
    /// The run shown, kept in the navigation links (`?run=`), if one was named.
    pub run: Option<&'a str>,
    /// Where the runs come from.
    pub source: &'a str,
    /// A problem to show above the body (escaped here).
    pub banner: Option<&'a str>,
    /// Reload the page every N seconds (while the source is unreachable).
    pub refresh: Option<u32>,
}

/// A complete page.
pub fn layout(frame: &Frame, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 2048);
    out.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    out.push_str("<meta name=\"color-scheme\" content=\"light dark\">");
    if let Some(s) = frame.refresh {
        let _ = write!(out, "<meta http-equiv=\"refresh\" content=\"{s}\">");
    }
    let _ = write!(out, "<title>{} · rfm</title>", esc(frame.title));
    out.push_str("<link rel=\"stylesheet\" href=\"/assets/app.css\">");
    out.push_str("<script src=\"/assets/app.js\" defer></script></head><body>");
    out.push_str("<header><a class=\"brand\" href=\"/\">rfm</a><nav>");
    let suffix = frame
        .run
        .map(|r| crate::params::encode(&[("run", r)]))
        .unwrap_or_default();
    for (path, title) in NAV {
        let cur = if path == frame.current {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(out, "<a href=\"{path}{}\"{cur}>{title}</a>", esc(&suffix));
    }
    let _ = write!(
        out,
        "</nav><span class=\"source\" title=\"where the runs are read\">{}</span></header>",
        esc(frame.source)
    );
    if let Some(b) = frame.banner {
        let _ = write!(
            out,
            "<div class=\"banner\" role=\"alert\" id=\"banner\">{}</div>",
            esc(b)
        );
    }
    out.push_str("<main>");
    out.push_str(body);
    out.push_str("</main><div id=\"tip\" role=\"tooltip\" hidden></div></body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_formats() {
        assert_eq!(
            esc("<script>alert(1)</script> \"a\" 'b' &"),
            "&lt;script&gt;alert(1)&lt;/script&gt; &quot;a&quot; &#39;b&#39; &amp;"
        );
        assert_eq!(count(4338), "4,338");
        assert_eq!(count(100), "100");
        assert_eq!(count(1_000_000), "1,000,000");
        let m = rfm_core::money::parse_price(b"4339953.67", b'.').unwrap();
        assert_eq!(money(m), "4,339,953.67");
        assert_eq!(percent("0.487011"), "48.7%");
    }
}
