//! Percent-decoding of URL components (`%2F` → `/`), for the query parameters
//! of database URLs: the store reads them (`sslmode`, `sslrootcert`) and the
//! settings mask them (`password=`) by the same decoding, so a key spelled
//! `pass%77ord` is seen as `password` by both.

/// `text` with every valid `%XX` escape decoded; an invalid or cut-short
/// escape stays as written, and bytes that are not UTF-8 after decoding
/// become U+FFFD.
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn escapes_are_decoded_and_broken_ones_kept() {
        assert_eq!(decode("pass%77ord"), "password");
        assert_eq!(decode("%2Fetc%2Fca.pem"), "/etc/ca.pem");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("%C3%A9"), "é");
        assert_eq!(decode("%FF"), "\u{FFFD}");
    }
}
