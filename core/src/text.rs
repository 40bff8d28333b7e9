//! Text shown to people. Data reaches terminals through the run summary, error
//! messages, the `rfm` tables and the dashboard; here it is made harmless
//! there: control characters become visible escapes (so a CSV cannot retitle
//! the terminal with `ESC]0;…`, clear it with `ESC[2J` or colour it), and long
//! values are cut (so a 5 MB field does not make a 5 MB message).

use std::borrow::Cow;
use std::fmt::Write as _;

/// How many characters of a bad value a message quotes.
pub const VALUE_CHARS: usize = 120;

/// Whether `c` is a control character: C0 (U+0000–U+001F), DEL (U+007F) or
/// C1 (U+0080–U+009F).
pub fn is_control(c: char) -> bool {
    c.is_control()
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_control(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !is_control(c) || keep(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// `text` with every control character written visibly: `\x1b` for C0 and
/// DEL, `\u{9b}` for C1. For one value (an id, a country, a sample line).
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    escape(text, |_| false)
}

/// [`escape_controls`], keeping line breaks: for a whole text rfm composed
/// (a summary, a table, an error message) before it goes to a terminal.
pub fn escape_for_terminal(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\n')
}

/// `text` cut to at most `max` characters; a cut text ends with
/// `… (N bytes)`, N being the length of the whole.
pub fn cut(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some((end, _)) => Cow::Owned(format!("{}… ({} bytes)", &text[..end], text.len())),
    }
}

/// A bad field value as a message quotes it: decoded (invalid UTF-8 shown as
/// U+FFFD), cut to [`VALUE_CHARS`] characters, in quotes with control
/// characters escaped.
pub fn quote_value(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(VALUE_CHARS * 4)];
    let decoded = String::from_utf8_lossy(head);
    match decoded.char_indices().nth(VALUE_CHARS) {
        None if head.len() == bytes.len() => format!("{decoded:?}"),
        Some((end, _)) => format!("{:?}… ({} bytes)", &decoded[..end], bytes.len()),
        None => format!("{decoded:?}… ({} bytes)", bytes.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible() {
        assert_eq!(escape_controls("plain é"), "plain é");
        assert!(matches!(escape_controls("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape_controls("\u{1b}]0;pwned\u{7}\u{1b}[2J"),
            "\\x1b]0;pwned\\x07\\x1b[2J"
        );
        assert_eq!(escape_controls("a\u{9b}31mb\u{7f}"), "a\\u{9b}31mb\\x7f");
        assert_eq!(escape_controls("a\nb\tc"), "a\\x0ab\\x09c");
        assert_eq!(escape_for_terminal("a\nb\u{1b}c\r"), "a\nb\\x1bc\\x0d");
        // U+00A0 and later are printable.
        assert_eq!(escape_controls("\u{a0}\u{ff}"), "\u{a0}\u{ff}");
    }

    #[test]
    fn long_text_is_cut_with_its_length() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("abcdef", 3), "abc… (6 bytes)");
        assert_eq!(cut("ééé", 2), "éé… (6 bytes)");
        assert_eq!(cut("abc", 3), "abc");
    }

    #[test]
    fn values_are_quoted_short() {
        assert_eq!(quote_value(b"1e3"), "\"1e3\"");
        assert_eq!(quote_value(b"a\x1bb"), "\"a\\u{1b}b\"");
        let big = vec![b'9'; 5_000_000];
        let quoted = quote_value(&big);
        assert!(quoted.len() < 200, "{}", quoted.len());
        assert!(quoted.ends_with("… (5000000 bytes)"), "{quoted}");
        let wide = "é".repeat(1000);
        assert!(quote_value(wide.as_bytes()).ends_with("… (2000 bytes)"));
    }
}
