//! Record boundaries in raw CSV bytes.
//!
//! One state machine (RFC 4180 quoting, a quote is special only at the start
//! of a field, `""` escapes a quote inside quotes, `\n` ends a record outside
//! quotes, a `\r` before it is dropped), with one rule that bounds records:
//! the file is cut into cells of `max_record` bytes (the `--max-record-size`),
//! and a `\n` inside quotes still ends a record that began two cells or more
//! before the `\n`'s cell. A record of at most `max_record` bytes (line break
//! not counted) spans at most two cells, so the rule never touches it; a
//! longer one is *over-long*: one malformed line.
//!
//! - [`sync_point`] finds, from a cell start, the first offset at which a record
//!   starts *whatever* the parser state there was. It runs the machine from every
//!   possible state — the five parser states, and for a record begun before the
//!   cell whether it began in the previous cell or earlier — in lockstep until
//!   every run sits at a record start. The true run is one of them, so the
//!   offset is a record start of the true parse. The search gives up after a
//!   bounded window (inside an over-long record no run can end); the engine then
//!   tries the next cell start. That makes byte-range chunks exact with quoted
//!   line breaks and stray quotes, in time linear in the input.
//! - [`RecordSplitter`] splits the records of a range into field spans: lines
//!   without a quoted field a 64-byte window at a time
//!   ([`crate::byte_blocks`]; the records of one buffer read through
//!   [`RecordSplitter::records`] share the windows they fall in), the rest
//!   field by field; both give the same spans (property tests compare them).

#[cfg(target_arch = "x86_64")]
use crate::byte_blocks::{wide_available, window_masks_avx2};
use crate::byte_blocks::{window_masks, WindowMasks, WINDOW};

/// Default limit on a record's length in bytes (`--max-record-size`).
pub const DEFAULT_MAX_RECORD_SIZE: u64 = 1 << 20;
/// Largest accepted `--max-record-size` (field offsets are 32-bit).
pub const MAX_RECORD_LIMIT: u64 = 1 << 30;

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

/// How many cells back the current record began: 0, 1, or 2 for two or more
/// (then a `\n` ends it even inside quotes).
type Age = u8;

/// A set of runs `(state, age)`, one bit each.
type Runs = u16;

#[inline]
fn run_bit(state: State, age: Age) -> Runs {
    1 << (state as u16 * 3 + age as u16)
}

/// Runs on which a byte other than `\n`, `"` and the delimiter changes nothing
/// (and a delimiter only turns Unquoted into FieldStart).
const QUIET: Runs = 0b111 << (State::Unquoted as u16 * 3) | 0b111 << (State::Quoted as u16 * 3);

/// Every run at a record start: one run, the record start.
const SYNCED: Runs = 1;

#[inline]
fn advance(state: State, age: Age, byte: u8, delimiter: u8) -> (State, Age) {
    if byte == b'\n' && (state != State::Quoted || age >= 2) {
        return (State::RecordStart, 0);
    }
    (step(state, byte, delimiter), age)
}

#[inline]
fn advance_runs(runs: Runs, byte: u8, delimiter: u8) -> Runs {
    let mut out = 0;
    let mut rest = runs;
    while rest != 0 {
        let k = rest.trailing_zeros() as usize;
        rest &= rest - 1;
        let (s, a) = advance(ALL_STATES[k / 3], (k % 3) as Age, byte, delimiter);
        out |= run_bit(s, a);
    }
    out
}

/// The runs after a delimiter: Unquoted ones stand at a field start.
#[inline]
fn unquoted_to_field_start(runs: Runs) -> Runs {
    let unquoted = (runs >> (State::Unquoted as u16 * 3)) & 0b111;
    (runs & !(0b111 << (State::Unquoted as u16 * 3))) | unquoted << (State::FieldStart as u16 * 3)
}

/// At a cell start: every record still open began one cell further back.
#[inline]
fn age_runs(runs: Runs) -> Runs {
    let mut out = 0;
    let mut rest = runs;
    while rest != 0 {
        let k = rest.trailing_zeros() as usize;
        rest &= rest - 1;
        let s = ALL_STATES[k / 3];
        let a = if s == State::RecordStart {
            0
        } else {
            ((k % 3) as Age + 1).min(2)
        };
        out |= run_bit(s, a);
    }
    out
}

/// Runs the set of runs over `buf[from..]` (`buf[0]` is at file offset `base`)
/// until every run is at a record start; the index after that byte, or `None`.
fn run_to_sync(
    buf: &[u8],
    base: u64,
    from: usize,
    mut runs: Runs,
    cell: u64,
    delimiter: u8,
) -> Option<usize> {
    let cell = cell.max(1);
    let len = buf.len();
    let at = base + from as u64;
    // Index of the first cell start after `from`.
    let mut next_cell = from as u64 + (cell - at % cell);
    let mut i = from;
    while i < len {
        if i as u64 == next_cell {
            runs = age_runs(runs);
            next_cell += cell;
        }
        if runs & !QUIET == 0 {
            // Only `\n` and `"` can change these runs beyond a delimiter
            // turning Unquoted into FieldStart: jump to the next of them and
            // settle that from the byte before it.
            let stop = (len as u64).min(next_cell) as usize;
            let found = memchr::memchr2(b'\n', b'"', &buf[i..stop]);
            let to = found.map_or(stop, |k| i + k);
            if to > i && buf[to - 1] == delimiter {
                runs = unquoted_to_field_start(runs);
            }
            i = to;
            if found.is_none() {
                continue;
            }
        }
        runs = advance_runs(runs, buf[i], delimiter);
        i += 1;
        if runs == SYNCED {
            return Some(i);
        }
    }
    None
}

/// The first offset in `window` (which starts at the cell start `base`) where
/// a record starts whatever the parser state at `base` was; `None` when the
/// window holds none. `ends_file`: the window ends at the end of the file,
/// which ends every record.
pub fn sync_point(
    window: &[u8],
    base: u64,
    cell: u64,
    delimiter: u8,
    ends_file: bool,
) -> Option<usize> {
    debug_assert_eq!(base % cell.max(1), 0, "sync_point starts at a cell start");
    // A record starts at `base`, or one began in an earlier cell.
    let mut runs = run_bit(State::RecordStart, 0);
    for s in &ALL_STATES[1..] {
        runs |= run_bit(*s, 1) | run_bit(*s, 2);
    }
    run_to_sync(window, base, 0, runs, cell, delimiter).or(ends_file.then_some(window.len()))
}

/// Where the record starting at `buf[start]` ends under the length rule: the
/// index after its terminator, or `buf.len()`.
fn record_end(buf: &[u8], base: u64, start: usize, cell: u64, delimiter: u8) -> usize {
    run_to_sync(
        buf,
        base,
        start,
        run_bit(State::RecordStart, 0),
        cell,
        delimiter,
    )
    .unwrap_or(buf.len())
}

/// A field of a record: its raw bytes `start..end` in the record, and whether it
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

/// The ends of a record's fields, relative to the record's start, after a
/// first `u32::MAX`: field `i` spans `ends[i] + 1 .. ends[i + 1]` (wrapping,
/// so from 0 for the first), since one delimiter separates each field from
/// the next (a quoted field's span ends after its closing quote, which the
/// delimiter follows). One `u32` a field
/// and no field's quoting stored (a field is quoted when its first byte is a
/// quote). The ends of the first [`FIXED_FIELDS`] fields go into a fixed
/// array that the fast path writes without a capacity check; a record with
/// more fields is split again by the machine into a vector.
struct FieldEnds {
    fixed: [u32; FIXED_FIELDS + 1],
    /// Every end, for a record of more than [`FIXED_FIELDS`] fields.
    more: Vec<u32>,
    count: usize,
    /// Whether a field of the record is quoted: when not, no field's first
    /// byte needs a look.
    any_quoted: bool,
}

/// Fields whose ends the fast path writes (a power of two).
const FIXED_FIELDS: usize = 64;

/// The end before the first field: the first field starts at `NO_END + 1`,
/// wrapping to 0.
const NO_END: u32 = u32::MAX;

impl FieldEnds {
    fn new() -> FieldEnds {
        FieldEnds {
            fixed: [NO_END; FIXED_FIELDS + 1],
            more: Vec::new(),
            count: 0,
            any_quoted: false,
        }
    }

    #[inline(always)]
    fn clear(&mut self) {
        self.count = 0;
        self.any_quoted = false;
    }

    /// Appends an end (the machine's way, any number of fields).
    #[inline]
    fn push(&mut self, end: u32) {
        if self.count < FIXED_FIELDS {
            self.fixed[self.count + 1] = end;
        } else {
            self.push_more(end);
        }
        self.count += 1;
    }

    #[cold]
    #[inline(never)]
    fn push_more(&mut self, end: u32) {
        if self.count == FIXED_FIELDS {
            self.more.clear();
            self.more.extend_from_slice(&self.fixed);
        }
        self.more.push(end);
    }

    /// The current record's ends, and whether a field is quoted.
    #[inline(always)]
    fn get(&self) -> (&[u32], bool) {
        let ends = if self.count <= FIXED_FIELDS {
            &self.fixed[..=self.count]
        } else {
            &self.more[..=self.count]
        };
        (ends, self.any_quoted)
    }
}

/// Splits records into fields, reusing its buffers from record to record.
pub struct RecordSplitter {
    delimiter: u8,
    max_record: u64,
    fields: FieldEnds,
    /// Whether [`Self::split`] may read windows (the delimiter is neither `"`
    /// nor `\n`, which the option reader refuses anyway).
    block_fast_path: bool,
    /// Whether windows are compared with AVX2 (the CPU has it).
    wide: bool,
}

/// One record found by [`RecordSplitter::next_record`].
pub struct Record<'a> {
    /// Offset of the record's first byte in the buffer.
    pub offset: usize,
    /// The record's bytes without its terminator (nor a `\r` before it).
    pub bytes: &'a [u8],
    /// The ends of the fields after [`NO_END`] (see [`FieldEnds`]); none
    /// when over-long.
    field_ends: &'a [u32],
    /// Whether a field is quoted.
    any_quoted: bool,
    /// Longer than the record size limit: one malformed line, `bytes` holds
    /// its start only.
    pub over_long: bool,
}

impl<'a> Record<'a> {
    /// How many fields the record has (none when over-long).
    #[inline]
    pub fn field_count(&self) -> usize {
        self.field_ends.len() - 1
    }

    /// Field `i` (below [`Self::field_count`]) as a span of `bytes`.
    #[inline(always)]
    pub fn field(&self, i: usize) -> FieldSpan {
        let end = self.field_ends[i + 1];
        let start = self.field_ends[i].wrapping_add(1);
        FieldSpan {
            start,
            end,
            quoted: self.any_quoted && start < end && self.bytes[start as usize] == b'"',
        }
    }

    /// Whether a field of the record is quoted; when none is, every field's
    /// value is its raw bytes ([`Self::raw_field`]).
    #[inline(always)]
    pub fn any_quoted(&self) -> bool {
        self.any_quoted
    }

    /// Field `i`'s raw bytes (below [`Self::field_count`]): its value when
    /// no field of the record is quoted ([`Self::any_quoted`]).
    #[inline(always)]
    pub fn raw_field(&self, i: usize) -> &'a [u8] {
        let end = self.field_ends[i + 1] as usize;
        let start = self.field_ends[i].wrapping_add(1) as usize;
        &self.bytes[start..end]
    }

    /// Every field, in order.
    pub fn fields(&self) -> impl Iterator<Item = FieldSpan> + '_ {
        (0..self.field_count()).map(|i| self.field(i))
    }
}

/// The records of one buffer, from [`RecordSplitter::records`]: call
/// [`Records::next`] until it returns `None`.
pub struct Records<'b> {
    splitter: &'b mut RecordSplitter,
    buf: &'b [u8],
    base: u64,
    pos: usize,
    limit: usize,
    /// The last window read from `buf`.
    window: Window,
}

impl Records<'_> {
    /// The next record (see [`RecordSplitter::next_record`]).
    #[inline]
    #[allow(clippy::should_implement_trait)] // a lending cursor: the record borrows it
    pub fn next(&mut self) -> Option<Record<'_>> {
        self.splitter.next_in(
            self.buf,
            self.base,
            &mut self.pos,
            self.limit,
            &mut self.window,
        )
    }

    /// Where the next record starts.
    pub fn pos(&self) -> usize {
        self.pos
    }
}

/// How far ahead of the window being read its bytes are asked for: an
/// input parsed from its mapping comes from memory, not from a copy the
/// read just made, and the hardware's prefetching stops at each 4 KiB page.
const PREFETCH_AHEAD: usize = 2048;

/// A window of [`WINDOW`] bytes of a buffer at `at`, with its masks.
#[derive(Clone, Copy, Debug)]
struct Window {
    at: usize,
    masks: WindowMasks,
}

impl Window {
    /// No window: holds no position.
    const NONE: Window = Window {
        at: usize::MAX,
        masks: WindowMasks {
            delimiters: 0,
            breaks: 0,
        },
    };

    #[inline]
    fn holds(&self, pos: usize) -> bool {
        pos >= self.at && pos - self.at < WINDOW
    }

    /// Reads the window of `buf` at `at`; `false` (and no window) when fewer
    /// than [`WINDOW`] bytes are left there. `wide`: compare with AVX2 (the
    /// CPU has it).
    #[inline]
    fn read(&mut self, buf: &[u8], at: usize, delimiter: u8, wide: bool) -> bool {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint: it reads nothing Rust sees and never
        // faults, wherever the address points (past `buf` at its end).
        #[allow(unused_unsafe)]
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(buf.as_ptr().wrapping_add(at + PREFETCH_AHEAD).cast());
        }
        match buf.get(at..at + WINDOW) {
            Some(bytes) => {
                let bytes: &[u8; WINDOW] = bytes.try_into().expect("a slice of WINDOW bytes");
                #[cfg(target_arch = "x86_64")]
                let masks = if wide {
                    // SAFETY: `wide` is set only when the CPU has AVX2.
                    unsafe { window_masks_avx2(bytes, delimiter) }
                } else {
                    window_masks(bytes, delimiter)
                };
                #[cfg(not(target_arch = "x86_64"))]
                let masks = {
                    let _ = wide;
                    window_masks(bytes, delimiter)
                };
                *self = Window { at, masks };
                true
            }
            None => {
                *self = Window::NONE;
                false
            }
        }
    }
}

/// Where the quoted field at `buf[at]` (a `"`) ends: the index after its
/// closing quote (`""` inside is an escaped quote), or `None` when it does
/// not close in `buf`. What [`RecordSplitter::split_from`] reads.
#[inline]
fn quoted_field_end(buf: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    loop {
        i += memchr::memchr(b'"', &buf[i..])? + 1;
        if buf.get(i) != Some(&b'"') {
            return Some(i);
        }
        i += 1; // escaped quote
    }
}

/// Bytes of an over-long record kept for its malformed sample.
const OVER_LONG_KEPT: usize = 300;

impl RecordSplitter {
    /// A splitter for records of at most `max_record` bytes (see the module doc).
    pub fn new(delimiter: u8, max_record: u64) -> RecordSplitter {
        RecordSplitter {
            delimiter,
            max_record: max_record.clamp(1, MAX_RECORD_LIMIT),
            fields: FieldEnds::new(),
            block_fast_path: !matches!(delimiter, b'"' | b'\n'),
            #[cfg(target_arch = "x86_64")]
            wide: wide_available(),
            #[cfg(not(target_arch = "x86_64"))]
            wide: false,
        }
    }

    /// Reads the record that starts at `*pos` (a record start) and moves `*pos`
    /// past its terminator. Blank records are skipped. `None` at `limit`.
    /// `buf[0]` is at file offset `base` (the length rule counts cells of the file).
    /// To read many records of one buffer, [`Self::records`] is faster.
    #[inline]
    pub fn next_record<'a>(
        &'a mut self,
        buf: &'a [u8],
        base: u64,
        pos: &mut usize,
        limit: usize,
    ) -> Option<Record<'a>> {
        let mut window = Window::NONE;
        self.next_in(buf, base, pos, limit, &mut window)
    }

    /// The records of `buf` from the record start `pos` on, up to `limit`
    /// (as [`Self::next_record`] reads them), read through windows that
    /// consecutive records share.
    pub fn records<'b>(
        &'b mut self,
        buf: &'b [u8],
        base: u64,
        pos: usize,
        limit: usize,
    ) -> Records<'b> {
        Records {
            splitter: self,
            buf,
            base,
            pos,
            limit,
            window: Window::NONE,
        }
    }

    /// [`Self::next_record`] with the window of `buf` last read (every
    /// window passed here must have been read from this same `buf`).
    #[inline(always)]
    fn next_in<'a>(
        &'a mut self,
        buf: &'a [u8],
        base: u64,
        pos: &mut usize,
        limit: usize,
        window: &mut Window,
    ) -> Option<Record<'a>> {
        loop {
            if *pos >= limit {
                return None;
            }
            let start = *pos;
            // A record within the limit ends inside this view (its content,
            // then at most "\r\n").
            let view = buf.len().min(start + self.max_record as usize + 2);
            let (content_end, next, terminated) = self.split(buf, view, start, window);
            if content_end - start > self.max_record as usize || (!terminated && view < buf.len()) {
                self.fields.clear();
                *pos = record_end(buf, base, start, self.max_record, self.delimiter);
                let kept = (start + OVER_LONG_KEPT).min(*pos);
                return Some(Record {
                    offset: start,
                    bytes: &buf[start..kept],
                    field_ends: &[NO_END],
                    any_quoted: false,
                    over_long: true,
                });
            }
            *pos = next;
            let bytes = &buf[start..content_end];
            if self.fields.count == 1 && bytes.is_empty() {
                continue; // blank line
            }
            let (field_ends, any_quoted) = self.fields.get();
            return Some(Record {
                offset: start,
                bytes,
                field_ends,
                any_quoted,
                over_long: false,
            });
        }
    }

    /// Splits the record at `start` of `buf[..view]`; returns (content end,
    /// next record start, whether a line break ended it).
    ///
    /// The fast path reads the record a window at a time ([`window_masks`]):
    /// the delimiters before the window's first quote or line break cut
    /// fields; a line break ends the record; a quote inside an unquoted
    /// field is plain data. It hands over to [`Self::split_from`], the
    /// machine field by field, from a field that starts with a quote and
    /// for a window that does not lie wholly inside `view`. `window` is the
    /// last window read from `buf`, kept for the next record.
    #[inline(always)]
    fn split(
        &mut self,
        buf: &[u8],
        view: usize,
        start: usize,
        window: &mut Window,
    ) -> (usize, usize, bool) {
        self.fields.clear();
        if !self.block_fast_path {
            return self.split_from(&buf[..view], start, start);
        }
        let d = self.delimiter;
        let wide = self.wide;
        if !window.holds(start) && !window.read(buf, start, d, wide) {
            return self.split_from(&buf[..view], start, start);
        }
        // The ends are written into the fixed array, counted in a local
        // (in registers) and wrapped around its length; a record of more
        // fields is split again by the machine, from its start.
        let ends = &mut self.fields.fixed;
        let mut count = 0;
        let mut any_quoted = false;
        macro_rules! hand_over {
            ($from:expr) => {{
                let from = if count > FIXED_FIELDS {
                    count = 0;
                    any_quoted = false;
                    start
                } else {
                    $from
                };
                self.fields.count = count;
                self.fields.any_quoted = any_quoted;
                return self.split_from(&buf[..view], start, from);
            }};
        }
        macro_rules! push_end {
            ($end:expr) => {{
                ends[count % FIXED_FIELDS + 1] = ($end - start) as u32;
                count += 1;
            }};
        }
        // The bits of the window from the record's start on.
        let from_start = u64::MAX << (start - window.at);
        let mut delimiters = window.masks.delimiters & from_start;
        let mut breaks = window.masks.breaks & from_start;
        let mut field_start = start;
        loop {
            if window.at + WINDOW > view {
                hand_over!(field_start);
            }
            // Bits below the first quote or line break (all when none).
            let lowest_break = breaks & breaks.wrapping_neg();
            let before_break = lowest_break.wrapping_sub(1);
            let mut cuts = delimiters & before_break;
            while cuts != 0 {
                let k = window.at + cuts.trailing_zeros() as usize;
                cuts &= cuts - 1;
                push_end!(k);
                field_start = k + 1;
            }
            if breaks != 0 {
                let k = window.at + breaks.trailing_zeros() as usize;
                breaks &= breaks - 1;
                if buf[k] == b'\n' {
                    let mut content_end = k;
                    if content_end > field_start && buf[content_end - 1] == b'\r' {
                        content_end -= 1;
                    }
                    push_end!(content_end);
                    if count > FIXED_FIELDS {
                        hand_over!(start);
                    }
                    self.fields.count = count;
                    self.fields.any_quoted = any_quoted;
                    return (content_end, k + 1, true);
                }
                if k == field_start {
                    // A quoted field, read as the machine reads it; when a
                    // delimiter follows its closing quote, the windows go
                    // on from the next field.
                    let end = match quoted_field_end(&buf[..view], field_start) {
                        Some(end) if end < view && buf[end] == d => end,
                        _ => hand_over!(field_start),
                    };
                    push_end!(end);
                    any_quoted = true;
                    field_start = end + 1;
                    if !window.holds(field_start) && !window.read(buf, field_start, d, wide) {
                        hand_over!(field_start);
                    }
                    let from_field = u64::MAX << (field_start - window.at);
                    delimiters = window.masks.delimiters & from_field;
                    breaks = window.masks.breaks & from_field;
                    continue;
                }
                // A quote inside an unquoted field: data. The delimiters up
                // to it are cut.
                delimiters &= !(before_break | lowest_break);
                continue;
            }
            if !window.read(buf, window.at + WINDOW, d, wide) {
                hand_over!(field_start);
            }
            delimiters = window.masks.delimiters;
            breaks = window.masks.breaks;
        }
    }

    /// Ends the current field at `end` (an index of the buffer).
    #[inline]
    fn push_field(&mut self, record_start: usize, end: usize) {
        self.fields.push((end - record_start) as u32);
    }

    /// The state machine field by field: splits the rest of the record at
    /// `start` from the field start `from` (the fields before it already
    /// pushed); returns as [`Self::split`].
    #[inline(never)]
    fn split_from(&mut self, buf: &[u8], start: usize, from: usize) -> (usize, usize, bool) {
        let d = self.delimiter;
        let len = buf.len();
        let mut i = from;
        loop {
            let field_start = i;
            if i < len && buf[i] == b'"' {
                self.fields.any_quoted = true;
                i = quoted_field_end(buf, i).unwrap_or(len);
            }
            let stop = match memchr::memchr2(d, b'\n', &buf[i..]) {
                Some(k) => i + k,
                None => len,
            };
            if stop < len && buf[stop] == d {
                self.push_field(start, stop);
                i = stop + 1;
                continue;
            }
            // End of record: a newline, or the end of the buffer.
            let terminated = stop < len;
            let next = if terminated { stop + 1 } else { len };
            let mut content_end = stop;
            if content_end > field_start && buf[content_end - 1] == b'\r' {
                content_end -= 1;
            }
            self.push_field(start, content_end);
            return (content_end, next, terminated);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(data: &[u8], delimiter: u8) -> Vec<Vec<Vec<u8>>> {
        let mut sp = RecordSplitter::new(delimiter, DEFAULT_MAX_RECORD_SIZE);
        let mut pos = 0;
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        while let Some(r) = sp.next_record(data, 0, &mut pos, data.len()) {
            out.push(
                r.fields()
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

    /// Every record of `data` (from `from`, cells counted from `base`) as
    /// (offset, bytes, fields, over-long, next position).
    type Split = (usize, Vec<u8>, Vec<FieldSpan>, bool, usize);
    fn records(
        data: &[u8],
        base: u64,
        from: usize,
        delimiter: u8,
        max: u64,
        blocks: bool,
    ) -> Vec<Split> {
        let mut sp = RecordSplitter::new(delimiter, max);
        sp.block_fast_path = blocks;
        let record = |r: Record<'_>| {
            if !r.any_quoted() {
                // A record without a quoted field: raw bytes are values.
                let mut scratch = Vec::new();
                for (i, f) in r.fields().enumerate() {
                    assert!(!f.quoted);
                    assert_eq!(r.raw_field(i), f.value(r.bytes, &mut scratch));
                }
            }
            (
                r.offset,
                r.bytes.to_vec(),
                r.fields().collect(),
                r.over_long,
            )
        };
        let mut out = Vec::new();
        if blocks {
            // Through the cursor, whose records share windows; with the
            // CPU's widest window comparison and with SSE2.
            let mut narrow = Vec::new();
            for (wide, out) in [(sp.wide, &mut out), (false, &mut narrow)] {
                sp.wide = wide;
                let mut records = sp.records(data, base, from, data.len());
                while let Some(r) = records.next() {
                    let (offset, bytes, fields, over_long) = record(r);
                    out.push((offset, bytes, fields, over_long, records.pos()));
                }
            }
            assert_eq!(out, narrow, "the wide and the SSE2 windows split alike");
        } else {
            let mut pos = from;
            while let Some(r) = sp.next_record(data, base, &mut pos, data.len()) {
                let (offset, bytes, fields, over_long) = record(r);
                out.push((offset, bytes, fields, over_long, pos));
            }
        }
        out
    }

    /// `next_record` one record at a time (no shared window) with the fast
    /// path splits as the cursor.
    fn records_one_by_one(data: &[u8], delimiter: u8, max: u64) -> Vec<Split> {
        let mut sp = RecordSplitter::new(delimiter, max);
        let mut pos = 0;
        let mut out = Vec::new();
        while let Some(r) = sp.next_record(data, 0, &mut pos, data.len()) {
            out.push((
                r.offset,
                r.bytes.to_vec(),
                r.fields().collect(),
                r.over_long,
                pos,
            ));
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, failure_persistence: None, .. Default::default() })]

        /// The block fast path splits exactly as the machine field by field:
        /// quotes anywhere, CR, LF, delimiters, long lines, small limits,
        /// records ending at the end of the buffer.
        #[test]
        fn blocks_split_as_the_field_by_field_machine(
            data in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b'b', b',', b';', b'"', b'\r', b'\n', b' ', b'9']),
                0..300,
            ),
            delimiter in proptest::sample::select(vec![b',', b';', b'\t']),
            max in proptest::prop_oneof![1u64..40, proptest::strategy::Just(DEFAULT_MAX_RECORD_SIZE)],
            base in 0u64..64,
            from in 0usize..20,
        ) {
            let from = from.min(data.len());
            proptest::prop_assert_eq!(
                records(&data, base, from, delimiter, max, true),
                records(&data, base, from, delimiter, max, false)
            );
        }

        /// Lines made mostly of plain fields (the fast path's common case)
        /// with the odd quoted field, across block boundaries.
        #[test]
        fn blocks_split_plain_lines_as_the_machine(
            lines in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof![
                        6 => "[a-z0-9 ]{0,20}",
                        1 => "\"[a-z,\n\"]{0,12}\"",
                        1 => "[a-z]{0,3}\"[a-z]{0,3}",
                    ],
                    1..10,
                ),
                0..20,
            ),
            crlf in proptest::bool::ANY,
        ) {
            let end = if crlf { "\r\n" } else { "\n" };
            let data: String = lines.iter().map(|l| l.join(",") + end).collect();
            let data = data.as_bytes();
            splits_as_the_machine(data)?;
        }
    }

    /// The fast path and the record-by-record splitter give the machine's
    /// records of `data`.
    fn splits_as_the_machine(data: &[u8]) -> Result<(), proptest::test_runner::TestCaseError> {
        let machine = records(data, 0, 0, b',', DEFAULT_MAX_RECORD_SIZE, false);
        proptest::prop_assert_eq!(
            &records(data, 0, 0, b',', DEFAULT_MAX_RECORD_SIZE, true),
            &machine
        );
        proptest::prop_assert_eq!(
            &records_one_by_one(data, b',', DEFAULT_MAX_RECORD_SIZE),
            &machine
        );
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 300, failure_persistence: None, .. Default::default() })]

        /// Records of more fields than the fast path's fixed array (64),
        /// with the odd quoted field, split as the machine splits them.
        #[test]
        fn wide_records_split_as_the_machine(
            lines in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof![
                        8 => "[a-z0-9]{0,2}",
                        1 => "\"[a-z,\n\"]{0,4}\"",
                    ],
                    1..150,
                ),
                1..6,
            ),
        ) {
            let data: String = lines.iter().map(|l| l.join(",") + "\n").collect();
            let data = data.as_bytes();
            splits_as_the_machine(data)?;
        }
    }

    #[test]
    fn field_spans_and_quoting_of_a_record() {
        let data = b"a,\"b\"\"c\",,\"\"\r\n";
        let mut sp = RecordSplitter::new(b',', DEFAULT_MAX_RECORD_SIZE);
        let mut pos = 0;
        let r = sp.next_record(data, 0, &mut pos, data.len()).unwrap();
        assert_eq!(r.field_count(), 4);
        let spans: Vec<_> = r.fields().map(|f| (f.start, f.end, f.quoted)).collect();
        assert_eq!(
            spans,
            vec![(0, 1, false), (2, 8, true), (9, 9, false), (10, 12, true)]
        );
    }

    #[test]
    fn sync_point_is_found_through_quoted_newlines() {
        // Cells of 8 bytes: the window starts at the cell start 8, inside the
        // quoted field; the next true record start is "z,2".
        let data = b"h1,h2\n\"x\ny\",1\nz,2\n";
        let z = data.iter().position(|&b| b == b'z').unwrap();
        assert_eq!(sync_point(&data[8..], 8, 8, b',', true), Some(z - 8));
        // Without the end of the file, the window holds no record start that
        // every reading agrees on.
        assert_eq!(sync_point(&data[8..12], 8, 8, b',', false), None);
    }

    #[test]
    fn an_over_long_record_ends_at_the_first_line_break_two_cells_on() {
        // Limit 4: the quoted field never closes; the line break in the cell
        // two cells after the record's start ends it.
        let data = b"\"abcdef\nghijklmn\nrest\n";
        let mut sp = RecordSplitter::new(b',', 4);
        let mut pos = 0;
        let r = sp.next_record(data, 0, &mut pos, data.len()).unwrap();
        assert!(r.over_long);
        assert_eq!(pos, 17, "after the second line break (offset 16, cell 4)");
        let r = sp.next_record(data, 0, &mut pos, data.len()).unwrap();
        assert!(!r.over_long);
        assert_eq!(r.bytes, b"rest");
    }
}
