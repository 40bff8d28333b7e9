//! The query string of a request (`?run=…&page=2&sort=-monetary`), decoded
//! by hand: `+` is a space, `%XX` escapes are decoded
//! ([`rfm_core::percent`]); a parameter given twice keeps its last value.

/// Decoded `key=value` pairs, in order.
#[derive(Clone, Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: Option<&str>) -> Params {
        let decode = |t: &str| rfm_core::percent::decode(&t.replace('+', " "));
        Params(
            raw.unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(p), String::new()),
                })
                .collect(),
        )
    }

    /// The last non-empty value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k == key && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    }

    /// The run asked for (`run=ID`); `None`: the latest.
    pub fn run(&self) -> Option<&str> {
        self.get("run")
    }
}

/// A query string of `pairs` (values percent-encoded), for links.
pub fn encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        out.push(if out.is_empty() { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        out.push_str(&component(v));
    }
    out
}

/// `text` percent-encoded for a URL path segment or query value.
pub fn component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_encodes() {
        let p = Params::parse(Some("q=a+b%26c&run=&run=X&page=2"));
        assert_eq!(p.get("q"), Some("a b&c"));
        assert_eq!(p.run(), Some("X"));
        assert_eq!(p.get("page"), Some("2"));
        assert_eq!(p.get("none"), None);
        assert_eq!(encode(&[("q", "a b&<"), ("x", "")]), "?q=a%20b%26%3C");
        assert_eq!(
            Params::parse(Some(&encode(&[("q", "é \"'")])[1..])).get("q"),
            Some("é \"'")
        );
    }
}
