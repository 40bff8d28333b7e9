//! Record boundaries in raw CSV bytes.
//!
//! Two pieces that follow one state machine (RFC 4180 quoting, a quote is
//! special only at the start of a field, `""` escapes a quote inside quotes,
//! `\n` ends a record outside quotes, a `\r` before it is dropped):
//!
//! - [`first_record_start`] finds, from any byte offset, the first offset at
//!   which a record starts *whatever* the parser state at that offset was. It
//!   runs the machine from all five possible states in lockstep until every
//!   run sits at a record start. The true run (from the start of the file) is
//!   one of the five, so the offset is a record start of the true parse. This
//!   makes byte-range chunks exact with quoted line breaks and stray quotes: a
//!   range `[a, b)` owns the records in `[first_record_start(a), first_record_start(b))`.
//! - [`RecordSplitter`] splits the records in such a range into field spans.

/// Parser states of the CSV machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum State {
    RecordStart,
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

const ALL_STATES: [State; 5] = [
    State::RecordStart,
    State::FieldStart,
    State::Unquoted,
    State::Quoted,
    State::QuoteInQuoted,
];

#[inline]
fn step(state: State, byte: u8, delimiter: u8) -> State {
    use State::*;
    match state {
        Quoted => {
            if byte == b'"' {
                QuoteInQuoted
            } else {
                Quoted
            }
        }
        RecordStart | FieldStart | Unquoted | QuoteInQuoted => {
            if byte == b'\n' {
                RecordStart
            } else if byte == delimiter {
                FieldStart
            } else if byte == b'"' {
                match state {
                    RecordStart | FieldStart | QuoteInQuoted => Quoted,
                    _ => Unquoted,
                }
            } else {
                Unquoted
            }
        }
    }
}

/// The first offset `>= from` where a record starts whatever the parser state
/// at `from` was; `buf.len()` when there is none. `from == 0` is a record start.
pub fn first_record_start(buf: &[u8], from: usize, delimiter: u8) -> usize {
    if from == 0 {
        return 0;
    }
    let mut states = ALL_STATES;
    let mut i = from;
    while i < buf.len() {
        let b = buf[i];
        let mut all_start = true;
        let mut converged = true;
        for s in states.iter_mut() {
            *s = step(*s, b, delimiter);
            all_start &= *s == State::RecordStart;
        }
        i += 1;
        if all_start {
            return i;
        }
        for s in &states[1..] {
            converged &= *s == states[0];
        }
        if converged {
            // One run left: follow it alone to the next record end.
            let mut s = states[0];
            while i < buf.len() {
                s = step(s, buf[i], delimiter);
                i += 1;
                if s == State::RecordStart {
                    return i;
                }
            }
            return buf.len();
        }
    }
    buf.len()
}

/// A field of a record: its raw bytes `start..end` in the buffer, and whether it
/// used quotes (then the raw bytes still hold them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FieldSpan {
    pub start: u32,
    pub end: u32,
    pub quoted: bool,
}

impl FieldSpan {
    /// The field's value: raw bytes, or with quotes removed and `""` folded
    /// (written into `scratch`) when it was quoted.
    #[inline]
    pub fn value<'a>(&self, record: &'a [u8], scratch: &'a mut Vec<u8>) -> &'a [u8] {
        let raw = &record[self.start as usize..self.end as usize];
        if !self.quoted {
            return raw;
        }
        unquote(raw, scratch);
        scratch
    }
}

/// Removes the quoting of a quoted field (`"a""b"c` → `a"bc`).
pub fn unquote(raw: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    let mut in_quotes = false;
    while i < raw.len() {
        let b = raw[i];
        if in_quotes {
            if b == b'"' {
                if raw.get(i + 1) == Some(&b'"') {
                    out.push(b'"');
                    i += 2;
                    continue;
                }
                in_quotes = false;
            } else {
                out.push(b);
            }
        } else if b == b'"' && i == 0 {
            in_quotes = true;
        } else {
            out.push(b);
        }
        i += 1;
    }
}

/// Splits records into fields, reusing its buffers from record to record.
pub struct RecordSplitter {
    delimiter: u8,
    fields: Vec<FieldSpan>,
}

/// One record found by [`RecordSplitter::next_record`].
pub struct Record<'a> {
    /// Offset of the record's first byte in the buffer.
    pub offset: usize,
    /// The record's bytes without its terminator (nor a `\r` before it).
    pub bytes: &'a [u8],
    /// The fields, as spans relative to `bytes`.
    pub fields: &'a [FieldSpan],
}

impl RecordSplitter {
    pub fn new(delimiter: u8) -> RecordSplitter {
        RecordSplitter {
            delimiter,
            fields: Vec::with_capacity(32),
        }
    }

    /// Reads the record that starts at `*pos` (a record start) and moves `*pos`
    /// past its terminator. Blank records are skipped. `None` at `limit`.
    #[inline]
    pub fn next_record<'a>(
        &'a mut self,
        buf: &'a [u8],
        pos: &mut usize,
        limit: usize,
    ) -> Option<Record<'a>> {
        loop {
            if *pos >= limit {
                return None;
            }
            let start = *pos;
            let end = self.split(buf, start);
            *pos = end.1;
            let bytes = &buf[start..end.0];
            if self.fields.len() == 1 && bytes.is_empty() {
                continue; // blank line
            }
            return Some(Record {
                offset: start,
                bytes,
                fields: &self.fields,
            });
        }
    }

    /// Splits the record at `start`; returns (content end, next record start).
    #[inline]
    fn split(&mut self, buf: &[u8], start: usize) -> (usize, usize) {
        self.fields.clear();
        let d = self.delimiter;
        let len = buf.len();
        let mut i = start;
        loop {
            let field_start = i;
            let mut quoted = false;
            if i < len && buf[i] == b'"' {
                quoted = true;
                i += 1;
                loop {
                    match memchr::memchr(b'"', &buf[i..]) {
                        None => {
                            i = len;
                            break;
                        }
                        Some(q) => {
                            i += q + 1;
                            if i < len && buf[i] == b'"' {
                                i += 1; // escaped quote
                            } else {
                                break; // closing quote
                            }
                        }
                    }
                }
            }
            let stop = match memchr::memchr2(d, b'\n', &buf[i..]) {
                Some(k) => i + k,
                None => len,
            };
            if stop < len && buf[stop] == d {
                self.fields.push(FieldSpan {
                    start: (field_start - start) as u32,
                    end: (stop - start) as u32,
                    quoted,
                });
                i = stop + 1;
                continue;
            }
            // End of record: a newline, or the end of the buffer.
            let next = if stop < len { stop + 1 } else { len };
            let mut content_end = stop;
            if content_end > field_start && buf[content_end - 1] == b'\r' {
                content_end -= 1;
            }
            self.fields.push(FieldSpan {
                start: (field_start - start) as u32,
                end: (content_end - start) as u32,
                quoted,
            });
            return (content_end, next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(data: &[u8], delimiter: u8) -> Vec<Vec<Vec<u8>>> {
        let mut sp = RecordSplitter::new(delimiter);
        let mut pos = 0;
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        while let Some(r) = sp.next_record(data, &mut pos, data.len()) {
            out.push(
                r.fields
                    .iter()
                    .map(|f| f.value(r.bytes, &mut scratch).to_vec())
                    .collect(),
            );
        }
        out
    }

    #[test]
    fn splits_quotes_crlf_and_blank_lines() {
        let data = b"a,\"b,\"\"x\"\"\nc\",d\r\n\n\r\n12\" RECORD,e,f\n\"g\"h,,\n";
        let recs = split_all(data, b',');
        assert_eq!(
            recs,
            vec![
                vec![b"a".to_vec(), b"b,\"x\"\nc".to_vec(), b"d".to_vec()],
                vec![b"12\" RECORD".to_vec(), b"e".to_vec(), b"f".to_vec()],
                vec![b"gh".to_vec(), b"".to_vec(), b"".to_vec()],
            ]
        );
    }

    #[test]
    fn record_start_is_found_through_quoted_newlines() {
        let data = b"h1,h2\n\"x\ny\",1\nz,2\n";
        // Starting inside the quoted field, the next true record start is "z,2".
        let z = data.iter().position(|&b| b == b'z').unwrap();
        for from in 7..=9 {
            assert_eq!(first_record_start(data, from, b','), z, "from {from}");
        }
        // From the closing quote on, a quote could open or close a field: the
        // first offset that is a record start for every reading is the end.
        for from in 10..=z {
            assert_eq!(
                first_record_start(data, from, b','),
                data.len(),
                "from {from}"
            );
        }
        assert_eq!(first_record_start(data, data.len() - 1, b','), data.len());
    }
}
