//! `customers.csv` rows formatted by hand into byte buffers, a block of
//! rows per task on every core, written in order while later blocks are
//! formatted: the same bytes as the `csv` crate's writer (comma, `\n`
//! terminator, a field quoted only when it holds a comma, a quote, `\r` or
//! `\n`, quotes doubled), without a `String` per field. Integers and money are formatted without
//! allocation; a timestamp's date part is formatted once per day.
//! [`Text`] holds such a file whole as it travels from a coordinator to
//! `rfm submit`, checked on arrival.

use std::io::{self, Write};

use bytes::Bytes;

use crate::date::{self, Date, Timestamp};
use crate::money::{Money, ONE};
use crate::score::CustomerRow;

/// `10^16`: money units per cent.
const UNITS_PER_CENT: u128 = (ONE / 100) as u128;

/// Appends the decimal digits of `n`.
#[inline]
fn push_u128(out: &mut Vec<u8>, mut n: u128) {
    let mut digits = [0u8; 40];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends the decimal digits of `n` (a `u64` divides faster than a `u128`),
/// written in place from the last: no copy of a variable length, which
/// would be a call to `memcpy` per number.
#[inline]
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let len = n.checked_ilog10().unwrap_or(0) as usize + 1;
    let start = out.len();
    out.resize(start + len, b'0');
    for d in out[start..].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

#[inline]
fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_u64(out, n.unsigned_abs());
}

/// `n / 10^16`: the whole cents of `n` units. `10^16 = 2^16 · 5^16`, and
/// below 2^80 units (1.2 million) `n >> 16` fits a `u64`, whose division
/// is a machine instruction, not a call dividing 128-bit numbers.
#[inline]
fn whole_cents(n: u128) -> u128 {
    const FIVES: u64 = 152_587_890_625; // 5^16
    const _: () = assert!(FIVES as u128 * (1 << 16) == UNITS_PER_CENT);
    match u64::try_from(n >> 16) {
        Ok(halved) => (halved / FIVES) as u128,
        Err(_) => n / UNITS_PER_CENT,
    }
}

/// Appends `m` rounded half away from zero to 2 decimals: the text of
/// [`Money::to_fixed`]`(2)`.
#[inline]
pub(crate) fn push_money_2(out: &mut Vec<u8>, m: Money) {
    let n = m.0.unsigned_abs();
    let mut cents = whole_cents(n);
    let rest = n - cents * UNITS_PER_CENT;
    if rest >= UNITS_PER_CENT - rest {
        cents += 1;
    }
    if m.0 < 0 && cents != 0 {
        out.push(b'-');
    }
    // Divided as a `u64` where the cents fit one (a `u128` division is a
    // call).
    let frac = match u64::try_from(cents) {
        Ok(cents) => {
            push_u64(out, cents / 100);
            (cents % 100) as u8
        }
        Err(_) => {
            push_u128(out, cents / 100);
            (cents % 100) as u8
        }
    };
    out.extend_from_slice(&[b'.', b'0' + frac / 10, b'0' + frac % 10]);
}

#[inline]
fn push_2(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&[b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]);
}

/// Slots of [`DayTexts`]: a power of two above the days a run spans
/// (customers in id order come in no order of days).
const DAY_SLOTS: usize = 1024;

/// The `YYYY-MM-DD ` text of days already formatted, in a table indexed by
/// the day modulo [`DAY_SLOTS`] (a slot keeps the last day formatted in it):
/// rows in id order jump between the few hundred days of a file's
/// purchases, and each is formatted once.
struct DayTexts {
    slots: Vec<(Option<Date>, [u8; 11])>,
}

impl DayTexts {
    fn new() -> DayTexts {
        DayTexts {
            slots: vec![(None, [0; 11]); DAY_SLOTS],
        }
    }

    /// Appends `YYYY-MM-DD HH:MM:SS`: the text of [`date::format_timestamp`].
    #[inline]
    fn push(&mut self, out: &mut Vec<u8>, ts: Timestamp) {
        let day = date::date_of(ts);
        let slot = &mut self.slots[(day as i64).rem_euclid(DAY_SLOTS as i64) as usize];
        if slot.0 != Some(day) {
            match date::civil_from_days(day) {
                (y @ 0..=9999, m, d) => {
                    let y = y as u32;
                    let digit = |n: u32| b'0' + (n % 10) as u8;
                    slot.1 = [
                        digit(y / 1000),
                        digit(y / 100),
                        digit(y / 10),
                        digit(y),
                        b'-',
                        digit(m / 10),
                        digit(m),
                        b'-',
                        digit(d / 10),
                        digit(d),
                        b' ',
                    ];
                    slot.0 = Some(day);
                }
                // Years outside 0000–9999 keep the general formatter's text.
                _ => {
                    out.extend_from_slice(date::format_timestamp(ts).as_bytes());
                    return;
                }
            }
        }
        out.extend_from_slice(&slot.1);
        let secs = ts.rem_euclid(86_400) as u32;
        push_2(out, secs / 3600);
        out.push(b':');
        push_2(out, secs / 60 % 60);
        out.push(b':');
        push_2(out, secs % 60);
    }
}

/// Appends a text field, quoted when the `csv` crate would quote it.
#[inline]
fn push_text(out: &mut Vec<u8>, text: &[u8]) {
    if !text
        .iter()
        .any(|&b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
    {
        out.extend_from_slice(text);
        return;
    }
    out.push(b'"');
    for &b in text {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Customers formatted by one task, at most: blocks of rows are formatted on
/// every core and written in order as soon as each is done (about 1.8 MB a
/// full block). Large blocks are written in few calls, each filling the page
/// cache in large folios: 43,828 customers' `customers.csv` (4.7 MiB) in 3
/// writes instead of 22 made an incremental run 4 % faster; shared evenly by
/// the cores ([`rows_per_block`]), it is 4 writes (docs/PERFORMANCE.md).
const ROWS_PER_BLOCK: usize = 16384;

/// The rows of each block when `rows` rows are formatted on `threads`
/// cores: at most [`ROWS_PER_BLOCK`], in a number of blocks that the cores
/// share evenly (43,828 customers on 2 cores: 4 blocks of 10,957 rows, not
/// 2 full blocks and a third that one core formats while the other waits).
fn rows_per_block(rows: usize, threads: usize) -> usize {
    let blocks = rows
        .div_ceil(ROWS_PER_BLOCK)
        .next_multiple_of(threads.max(1))
        .max(1);
    rows.div_ceil(blocks).max(1)
}

/// Bytes a formatted row takes, about: a block's buffer is sized by it.
const ROW_BYTES: usize = 112;

/// Appends one line per customer of `customers` to `out`.
fn push_rows(out: &mut Vec<u8>, customers: &[CustomerRow]) {
    let mut days = DayTexts::new();
    for c in customers {
        push_text(out, c.customer_id.as_bytes());
        out.push(b',');
        push_i64(out, c.recency);
        out.push(b',');
        push_u64(out, c.frequency);
        out.push(b',');
        push_money_2(out, c.monetary);
        out.push(b',');
        days.push(out, c.first_purchase);
        out.push(b',');
        days.push(out, c.last_purchase);
        out.push(b',');
        push_text(out, c.country.as_bytes());
        let (r, f, m) = (b'0' + c.r, b'0' + c.f, b'0' + c.m);
        if [c.r, c.f, c.m].iter().all(|s| *s <= 9) {
            out.extend_from_slice(&[b',', r, b',', f, b',', m, b',', r, f, m, b',']);
        } else {
            // Scores are 1–5; anything else keeps the general formatter's text.
            let text = format!(",{},{},{},{}{}{},", c.r, c.f, c.m, c.r, c.f, c.m);
            out.extend_from_slice(text.as_bytes());
        }
        push_text(out, c.segment.name().as_bytes());
        out.push(b'\n');
    }
}

/// Blocks being formatted or waiting for their turn to be written, at
/// most (two cores format while this thread writes): the text in memory
/// stays bounded (about 7 MB) however many customers there are.
const BLOCKS_IN_FLIGHT: usize = 4;

/// Writes `header` and one line per customer to `w`: blocks of rows are
/// formatted on every core while this thread writes the blocks done, in
/// order (a write overlaps the formatting of the blocks after it). A
/// written block's buffer formats a later block: its pages are touched
/// once, not once per block.
pub fn write<W: Write>(header: &[&str], customers: &[CustomerRow], mut w: W) -> io::Result<()> {
    let mut out = header_line(header);
    w.write_all(&out)?;
    if rayon::current_thread_index().is_some() {
        // On a thread of the pool, waiting for the pool's tasks could wait
        // for itself: the blocks are formatted and written here.
        for rows in customers.chunks(ROWS_PER_BLOCK) {
            out.clear();
            push_rows(&mut out, rows);
            w.write_all(&out)?;
        }
    } else {
        write_formatted_beside(customers, &mut w)?;
    }
    w.flush()
}

/// The header's line, as [`write`] starts the file with it.
fn header_line(header: &[&str]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    for (i, name) in header.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_text(&mut out, name.as_bytes());
    }
    out.push(b'\n');
    out
}

/// A whole file as [`write()`] makes it, held in the pieces it came in: a
/// coordinator formats a finished job's `customers.csv` and sends it so.
/// Its records are counted as the pieces come ([`Text::push`]), so that the
/// check at the end ([`Text::check`]) costs nothing more.
#[derive(Clone, Debug, Default)]
pub struct Text {
    pieces: Vec<Bytes>,
    seen: TextCheck,
}

impl Text {
    /// Appends the next piece of the file, counting the records it ends.
    pub fn push(&mut self, piece: Bytes) {
        if piece.is_empty() {
            return;
        }
        self.seen.see(&piece);
        self.pieces.push(piece);
    }

    /// The records ended so far, the header's line among them.
    pub fn records(&self) -> u64 {
        self.seen.records()
    }

    /// The pieces, in the file's order.
    pub fn pieces(&self) -> &[Bytes] {
        &self.pieces
    }

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.seen.len()
    }

    /// Whether no byte came.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// See [`TextCheck::check`].
    pub fn check(&self, header: &[&str], rows: u64) -> Result<(), String> {
        self.seen.check(header, rows)
    }
}

/// What is known of a `customers.csv` text that streams by without being
/// kept (`rfm submit` writes each piece as it comes): its first bytes, the
/// records its pieces end, and how it ends; enough to tell at the end
/// whether it was a whole file of the customers announced.
#[derive(Clone, Debug, Default)]
pub struct TextCheck {
    /// The file's first bytes, up to the header's length at most.
    start: Vec<u8>,
    /// Records ended so far (the header's line among them).
    ends: u64,
    /// Whether the bytes so far end inside a quoted field.
    quoted: bool,
    /// The last byte seen.
    last: Option<u8>,
    /// Bytes seen.
    len: u64,
}

/// The longest header line a [`TextCheck`] keeps the start of the file for.
const HEADER_MAX: usize = 1024;

impl TextCheck {
    /// Counts the records that the next piece of the file ends (a line end
    /// inside a quoted field is part of its record; quotes are rare, so the
    /// search jumps from line end to line end).
    pub fn see(&mut self, piece: &[u8]) {
        let Some(&last) = piece.last() else {
            return;
        };
        let want = HEADER_MAX.saturating_sub(self.start.len()).min(piece.len());
        self.start.extend_from_slice(&piece[..want]);
        for at in memchr::memchr2_iter(b'"', b'\n', piece) {
            match piece[at] {
                b'"' => self.quoted = !self.quoted,
                _ if !self.quoted => self.ends += 1,
                _ => {}
            }
        }
        self.last = Some(last);
        self.len += piece.len() as u64;
    }

    /// The records ended so far, the header's line among them.
    pub fn records(&self) -> u64 {
        self.ends
    }

    /// The bytes seen.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no byte came.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Checks that the text is a whole file of `rows` customers under
    /// `header`: it starts with the header's line and holds `rows` records
    /// after it, the last one ended. Says what is wrong otherwise.
    pub fn check(&self, header: &[&str], rows: u64) -> Result<(), String> {
        if !self.start.starts_with(&header_line(header)) {
            return Err("it does not start with the customers.csv header".into());
        }
        if self.quoted || self.last != Some(b'\n') {
            return Err("its last line is cut short".into());
        }
        let got = self.ends.saturating_sub(1);
        if got != rows {
            return Err(format!(
                "it holds {got} customers, not the {rows} announced"
            ));
        }
        Ok(())
    }
}

/// A block's text, or the message of the panic that formatting it met.
type Formatted = (usize, Result<Vec<u8>, String>);

/// The rows of `customers` formatted by tasks on the pool and written by
/// this thread (not one of the pool's) in order.
fn write_formatted_beside<W: Write>(customers: &[CustomerRow], w: &mut W) -> io::Result<()> {
    use std::collections::BTreeMap;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::mpsc;

    let rows = rows_per_block(customers.len(), rayon::current_num_threads());
    let blocks: Vec<&[CustomerRow]> = customers.chunks(rows).collect();
    let (done_tx, done_rx) = mpsc::channel::<Formatted>();
    rayon::in_place_scope(|scope| {
        let format = |i: usize, mut buf: Vec<u8>| {
            let rows = blocks[i];
            let done = done_tx.clone();
            scope.spawn(move |_| {
                let formatted = catch_unwind(AssertUnwindSafe(move || {
                    buf.clear();
                    buf.reserve(rows.len() * ROW_BYTES);
                    push_rows(&mut buf, rows);
                    buf
                }))
                .map_err(|panic| {
                    panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default()
                });
                // The writer gone (it failed) leaves nobody to tell.
                let _ = done.send((i, formatted));
            });
        };
        let first = blocks.len().min(BLOCKS_IN_FLIGHT);
        for i in 0..first {
            format(i, Vec::new());
        }
        let mut next_to_format = first;
        let mut waiting: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
        let mut next_to_write = 0;
        while next_to_write < blocks.len() {
            let (i, formatted) = done_rx
                .recv()
                .map_err(|_| io::Error::other("the rows' formatting stopped"))?;
            let block = formatted.map_err(|panic| {
                io::Error::other(format!("formatting the rows failed: {panic}"))
            })?;
            waiting.insert(i, block);
            while let Some(block) = waiting.remove(&next_to_write) {
                w.write_all(&block)?;
                next_to_write += 1;
                if next_to_format < blocks.len() {
                    format(next_to_format, block);
                    next_to_format += 1;
                }
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::Segment;
    use proptest::prelude::*;

    #[test]
    fn blocks_are_shared_evenly_by_the_cores() {
        assert_eq!(rows_per_block(43_828, 2), 10_957);
        assert_eq!(rows_per_block(ROWS_PER_BLOCK, 2), ROWS_PER_BLOCK / 2);
        assert_eq!(rows_per_block(4 * ROWS_PER_BLOCK, 2), ROWS_PER_BLOCK);
        assert_eq!(rows_per_block(4 * ROWS_PER_BLOCK + 1, 2), 10_923);
        assert_eq!(rows_per_block(10, 1), 10);
        assert_eq!(rows_per_block(0, 2), 1);
        for (rows, threads) in [(1, 2), (7, 3), (100_001, 4), (2_090_000, 2)] {
            let per = rows_per_block(rows, threads);
            let blocks = rows.div_ceil(per);
            assert!(per <= ROWS_PER_BLOCK, "{rows} rows on {threads}");
            assert!(blocks <= rows.div_ceil(ROWS_PER_BLOCK).next_multiple_of(threads));
        }
    }

    fn by_csv_crate(header: &[&str], customers: &[CustomerRow]) -> Vec<u8> {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        w.write_record(header).unwrap();
        for c in customers {
            w.write_record([
                c.customer_id.as_str(),
                &c.recency.to_string(),
                &c.frequency.to_string(),
                &c.monetary.to_fixed(2),
                &date::format_timestamp(c.first_purchase),
                &date::format_timestamp(c.last_purchase),
                &*c.country,
                &c.r.to_string(),
                &c.f.to_string(),
                &c.m.to_string(),
                &c.rfm_score(),
                c.segment.name(),
            ])
            .unwrap();
        }
        w.into_inner().unwrap()
    }

    fn row(id: String, country: String, monetary: i128, ts: (i64, i64), n: i64) -> CustomerRow {
        CustomerRow {
            customer_id: id,
            recency: n,
            frequency: n.unsigned_abs(),
            monetary: Money(monetary),
            first_purchase: ts.0,
            last_purchase: ts.1,
            country: country.into(),
            r: (n.rem_euclid(5) + 1) as u8,
            f: 3,
            m: (n.rem_euclid(3) + 1) as u8,
            segment: Segment::ALL[n.rem_euclid(10) as usize],
        }
    }

    #[test]
    fn money_rounds_half_away_from_zero_like_to_fixed() {
        let cent = ONE / 100;
        for units in [
            0,
            1,
            -1,
            cent / 2,
            -cent / 2,
            cent / 2 - 1,
            -(cent / 2 - 1),
            99 * cent + cent / 2,
            -(99 * cent + cent / 2),
            crate::money::MAX_UNITS,
            -crate::money::MAX_UNITS,
            i128::MAX,
            i128::MIN,
            // Either side of 2^80 units, where whole cents take the long division.
            (1 << 80) - 1,
            1 << 80,
            -(1 << 80),
            (1 << 80) + cent / 2,
            ((1i128 << 80) / cent) * cent + cent / 2 - 1,
            ((1i128 << 80) / cent) * cent + cent / 2,
        ] {
            let mut out = Vec::new();
            push_money_2(&mut out, Money(units));
            assert_eq!(String::from_utf8(out).unwrap(), Money(units).to_fixed(2));
        }
    }

    #[test]
    fn days_sharing_a_slot_and_years_beyond_four_digits_keep_their_text() {
        // Days DAY_SLOTS apart share a slot; years before 0 and after 9999
        // take the general formatter's text.
        let day = 86_400i64;
        let slots = DAY_SLOTS as i64;
        let stamps = [
            (0, 3_599),
            (slots * day + 7, 5),
            (0, slots * day),
            (-719_530 * day, 253_402_300_800 + 61),
            (-800_000 * day + 1, 2 * slots * day + 59),
            (11, -1),
        ];
        let customers: Vec<CustomerRow> = stamps
            .iter()
            .enumerate()
            .map(|(n, &ts)| row(format!("c{n}"), "x".into(), 1, ts, n as i64))
            .collect();
        let header = crate::output::CUSTOMERS_HEADER;
        let mut ours = Vec::new();
        write(&header, &customers, &mut ours).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(by_csv_crate(&header, &customers)).unwrap()
        );
    }

    #[test]
    fn rows_of_several_blocks_are_written_in_order() {
        let customers: Vec<CustomerRow> = (0..2 * ROWS_PER_BLOCK as i64 + 17)
            .map(|n| {
                let ts = (n * 3_601, n * 86_399 + 7);
                row(
                    format!("c{n}"),
                    format!("land {}", n % 7),
                    n as i128 * 13,
                    ts,
                    n,
                )
            })
            .collect();
        let header = crate::output::CUSTOMERS_HEADER;
        let mut ours = Vec::new();
        write(&header, &customers, &mut ours).unwrap();
        assert!(ours == by_csv_crate(&header, &customers));
    }

    /// `bytes` cut into pieces at `cuts`, as a stream may bring them.
    fn text_of(bytes: &[u8], cuts: &[usize]) -> Text {
        let mut text = Text::default();
        let mut at = 0;
        for &cut in cuts.iter().chain([&bytes.len()]) {
            text.push(Bytes::copy_from_slice(&bytes[at..cut]));
            at = cut;
        }
        text
    }

    #[test]
    fn a_whole_text_passes_its_check_however_it_is_cut() {
        // Quoted fields, one holding a line end and a doubled quote: the
        // records are counted, not the lines.
        let customers: Vec<CustomerRow> = (0..ROWS_PER_BLOCK as i64 + 3)
            .map(|n| {
                let country = match n % 3 {
                    0 => "Plain".to_string(),
                    1 => "Two\nlines, \"quoted\"".to_string(),
                    _ => "a,b".to_string(),
                };
                row(format!("c{n}"), country, n as i128, (n, n), n)
            })
            .collect();
        let header = crate::output::CUSTOMERS_HEADER;
        let mut bytes = Vec::new();
        write(&header, &customers, &mut bytes).unwrap();
        let rows = customers.len() as u64;
        for cuts in [vec![], vec![1], vec![5, 6, 300], vec![bytes.len() / 2]] {
            let text = text_of(&bytes, &cuts);
            assert_eq!(text.len(), bytes.len() as u64);
            assert_eq!(text.records(), rows + 1);
            assert_eq!(text.check(&header, rows), Ok(()), "cut at {cuts:?}");
            let again: Vec<u8> = text.pieces().concat();
            assert!(again == bytes);
        }
        // A row more or less than announced.
        let text = text_of(&bytes, &[7]);
        let e = text.check(&header, rows + 1).unwrap_err();
        assert!(
            e.contains(&format!("{rows} customers, not the {}", rows + 1)),
            "{e}"
        );
        assert!(text.check(&header, rows - 1).is_err());
        // Cut short: inside a quoted field, or in the middle of a line.
        let in_quotes = bytes.iter().rposition(|&b| b == b'"').unwrap();
        let e = text_of(&bytes[..in_quotes], &[])
            .check(&header, rows)
            .unwrap_err();
        assert!(e.contains("cut short"), "{e}");
        let e = text_of(&bytes[..bytes.len() - 2], &[3])
            .check(&header, rows)
            .unwrap_err();
        assert!(e.contains("cut short"), "{e}");
        // Another header, or none at all.
        let mut other = bytes.clone();
        other[0] = b'k';
        let e = text_of(&other, &[2]).check(&header, rows).unwrap_err();
        assert!(e.contains("header"), "{e}");
        assert!(Text::default().check(&header, 0).is_err());
        // A file of no customer: the header alone.
        let mut empty = Vec::new();
        write(&header, &[], &mut empty).unwrap();
        assert_eq!(text_of(&empty, &[4]).check(&header, 0), Ok(()));
    }

    #[test]
    fn rows_written_from_a_thread_of_the_pool_are_the_same() {
        // A pool of one thread: waiting on it for the blocks would wait forever.
        let customers: Vec<CustomerRow> = (0..3 * ROWS_PER_BLOCK as i64 + 5)
            .map(|n| row(format!("c{n}"), "x,y".into(), n as i128 * 7, (n, n * 99), n))
            .collect();
        let header = crate::output::CUSTOMERS_HEADER;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let ours = pool.install(|| {
            let mut ours = Vec::new();
            write(&header, &customers, &mut ours).unwrap();
            ours
        });
        assert!(ours == by_csv_crate(&header, &customers));
    }

    #[test]
    fn a_failing_writer_fails_the_write_and_nothing_hangs() {
        struct FailsAfter(usize);
        impl Write for FailsAfter {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.0 < buf.len() {
                    return Err(io::Error::other("disk full"));
                }
                self.0 -= buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let customers: Vec<CustomerRow> = (0..40 * ROWS_PER_BLOCK as i64)
            .map(|n| row(format!("c{n}"), "x".into(), 1, (n, n), n))
            .collect();
        let header = crate::output::CUSTOMERS_HEADER;
        let err = write(&header, &customers, FailsAfter(3 << 20)).unwrap_err();
        assert_eq!(err.to_string(), "disk full");
    }

    proptest! {
        #[test]
        fn rows_are_the_csv_crates_bytes(
            rows in proptest::collection::vec(
                (
                    "[a-zA-Z0-9 ,\"é\r\n]{0,8}",
                    "[a-zA-Z ,\"]{0,10}",
                    any::<i128>().prop_map(|u| u % crate::money::MAX_UNITS),
                    (-5_000_000_000i64..5_000_000_000, -5_000_000_000i64..5_000_000_000),
                    any::<i64>(),
                ),
                0..40,
            )
        ) {
            let customers: Vec<CustomerRow> = rows
                .into_iter()
                .map(|(id, country, m, ts, n)| row(id, country, m, ts, n))
                .collect();
            let header = crate::output::CUSTOMERS_HEADER;
            let mut ours = Vec::new();
            write(&header, &customers, &mut ours).unwrap();
            let theirs = by_csv_crate(&header, &customers);
            prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
        }
    }
}
