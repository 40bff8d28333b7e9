//! Line classification (spec §1–2): turns the records of a byte range into
//! Arrow batches of purchase lines and a [`LineLedger`] of everything else.
//!
//! A purchase batch has one row per purchase line: the normalised customer id
//! (as UTF-8 text, see [`customer_id`]), the invoice, the timestamp, the exact
//! amount (quantity × price) and the country. Lines that are not purchases are
//! only counted.
//!
//! The rules live in one [`Classifier`], which every input format feeds: the
//! CSV reader here ([`parse_range`]) with the values it parses from a
//! record's text, the Parquet reader ([`crate::parquet_input`]) with the
//! values of typed columns. A malformed line's sample and problem quote the
//! line's text ([`LineText`]), which a typed row writes only then.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use arrow::array::{ArrayRef, BinaryArray, Decimal128Array, Int64Array, RecordBatch};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::date::{self, DateFormat, Shape, Timestamp};
use crate::input::{ColumnMap, ParseOptions};
use crate::ledger::{LineLedger, MalformedSample, Reason};
use crate::money::{self, Money};
use crate::scan::{FieldSpan, RecordSplitter};
use crate::short_bytes::same_bytes;
use crate::text::quote_value;

/// Rows per purchase batch.
pub const BATCH_ROWS: usize = 32 * 1024;

/// Schema of a purchase batch.
pub fn purchase_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("customer_id", DataType::Binary, false),
                Field::new("invoice", DataType::Binary, false),
                Field::new("ts", DataType::Int64, false),
                Field::new(
                    "amount",
                    DataType::Decimal128(38, money::SCALE as i8),
                    false,
                ),
                Field::new("country", DataType::Binary, false),
            ]))
        })
        .clone()
}

/// Where a buffer of whole records sits in its file.
#[derive(Clone, Copy, Debug)]
pub struct RangeSpec {
    pub file_index: u32,
    /// File offset of the buffer's first byte (a record start).
    pub base: u64,
}

/// Growing columns of one purchase batch.
#[derive(Default)]
struct BatchBuilder {
    /// Bytes of the last batch's text columns: the next one reserves as much,
    /// instead of growing (and copying) its buffers step by step.
    value_hint: [usize; 3],
    customer_values: Vec<u8>,
    customer_offsets: Vec<i32>,
    invoice_values: Vec<u8>,
    invoice_offsets: Vec<i32>,
    country_values: Vec<u8>,
    country_offsets: Vec<i32>,
    ts: Vec<i64>,
    amount: Vec<i128>,
}

impl BatchBuilder {
    fn new() -> BatchBuilder {
        let mut b = BatchBuilder {
            // Typical ids and invoices are 5–7 bytes, countries up to 20.
            value_hint: [BATCH_ROWS * 8, BATCH_ROWS * 8, BATCH_ROWS * 16],
            ..BatchBuilder::default()
        };
        b.reset();
        b
    }

    fn reset(&mut self) {
        for offsets in [
            &mut self.customer_offsets,
            &mut self.invoice_offsets,
            &mut self.country_offsets,
        ] {
            offsets.clear();
            offsets.reserve(BATCH_ROWS + 1);
            offsets.push(0);
        }
        for (values, hint) in [
            &mut self.customer_values,
            &mut self.invoice_values,
            &mut self.country_values,
        ]
        .into_iter()
        .zip(self.value_hint)
        {
            values.clear();
            values.reserve(hint);
        }
        self.ts.clear();
        self.ts.reserve(BATCH_ROWS);
        self.amount.clear();
        self.amount.reserve(BATCH_ROWS);
    }

    #[inline]
    fn push(
        &mut self,
        customer: &[u8],
        invoice: &[u8],
        ts: Timestamp,
        amount: Money,
        country: &[u8],
    ) {
        self.customer_values.extend_from_slice(customer);
        self.customer_offsets
            .push(self.customer_values.len() as i32);
        self.invoice_values.extend_from_slice(invoice);
        self.invoice_offsets.push(self.invoice_values.len() as i32);
        self.country_values.extend_from_slice(country);
        self.country_offsets.push(self.country_values.len() as i32);
        self.ts.push(ts);
        self.amount.push(amount.0);
    }

    fn len(&self) -> usize {
        self.ts.len()
    }

    fn finish(&mut self) -> RecordBatch {
        // A little more than the last batch, so the next rarely grows.
        let hint = |v: &Vec<u8>| v.len() + v.len() / 8;
        self.value_hint = [
            hint(&self.customer_values),
            hint(&self.invoice_values),
            hint(&self.country_values),
        ];
        fn binary(values: &mut Vec<u8>, offsets: &mut Vec<i32>) -> ArrayRef {
            let offsets = OffsetBuffer::new(ScalarBuffer::from(std::mem::take(offsets)));
            let values = Buffer::from_vec(std::mem::take(values));
            Arc::new(BinaryArray::new(offsets, values, None))
        }
        let columns: Vec<ArrayRef> = vec![
            binary(&mut self.customer_values, &mut self.customer_offsets),
            binary(&mut self.invoice_values, &mut self.invoice_offsets),
            Arc::new(Int64Array::from(std::mem::take(&mut self.ts))),
            Arc::new(
                Decimal128Array::from(std::mem::take(&mut self.amount))
                    .with_precision_and_scale(38, money::SCALE as i8)
                    .expect("valid decimal type"),
            ),
            binary(&mut self.country_values, &mut self.country_offsets),
        ];
        self.reset();
        RecordBatch::try_new(purchase_schema(), columns).expect("purchase batch matches its schema")
    }
}

/// Trims spaces and tabs around a value.
#[inline]
pub fn trim(v: &[u8]) -> &[u8] {
    // Most values start and end above the space: nothing to trim.
    if v.first().is_none_or(|&b| b > b' ') && v.last().is_none_or(|&b| b > b' ') {
        return v;
    }
    let mut s = 0;
    let mut e = v.len();
    while s < e && (v[s] == b' ' || v[s] == b'\t') {
        s += 1;
    }
    while e > s && (v[e - 1] == b' ' || v[e - 1] == b'\t') {
        e -= 1;
    }
    &v[s..e]
}

/// Parses a quantity: `[+-]?[0-9]{1,18}`.
#[inline]
pub fn parse_quantity(v: &[u8]) -> Option<i64> {
    let (neg, digits) = match v.first()? {
        b'-' => (true, &v[1..]),
        b'+' => (false, &v[1..]),
        _ => (false, v),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut n: i64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + d as i64;
    }
    Some(if neg { -n } else { n })
}

/// A customer id as the spec normalises it: `None` when missing (empty, `NA`,
/// `NaN`, `null` in any case), digits followed by `.0` lose the `.0`.
#[inline]
pub fn normalise_customer(v: &[u8]) -> Option<&[u8]> {
    if v.len() <= 4 {
        let mut lower = [0u8; 4];
        for (l, b) in lower.iter_mut().zip(v) {
            *l = b.to_ascii_lowercase();
        }
        let l = &lower[..v.len()];
        if l.is_empty() || l == b"na" || l == b"nan" || l == b"null" {
            return None;
        }
    }
    if v.len() > 2 && v.ends_with(b".0") && v[..v.len() - 2].iter().all(u8::is_ascii_digit) {
        return Some(&v[..v.len() - 2]);
    }
    Some(v)
}

/// Whether a byte is a control character: U+0000–U+001F or U+007F (the same
/// bytes in UTF-8 and ISO-8859-1).
#[inline]
fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// A customer field as the spec reads it (§1 field formats, customer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustomerId<'a> {
    /// Empty, `NA`, `NaN` or `null`.
    Missing,
    /// The normalised id's UTF-8 text.
    Text(&'a [u8]),
    /// The id holds this control character: the line is malformed.
    Control(u8),
}

/// Reads a trimmed customer field: missing-value tokens, control characters,
/// the `.0` rule of [`normalise_customer`], then the id's text: its bytes when
/// they are UTF-8 (ASCII needs no check), else their ISO-8859-1 reading,
/// re-encoded as UTF-8 into `scratch`. So `C3 A9` and `E9` are both `é`.
#[inline]
pub fn customer_id<'a>(v: &'a [u8], scratch: &'a mut Vec<u8>) -> CustomerId<'a> {
    match digits_id(v) {
        Some(id) => CustomerId::Text(id),
        None => any_customer_id(v, scratch),
    }
}

/// [`customer_id`] of any text.
fn any_customer_id<'a>(v: &'a [u8], scratch: &'a mut Vec<u8>) -> CustomerId<'a> {
    let mut control = false;
    let mut high = false;
    for &b in v {
        control |= is_control(b);
        high |= b >= 0x80;
    }
    if control {
        let c = v.iter().copied().find(|&b| is_control(b)).unwrap_or(0);
        return CustomerId::Control(c);
    }
    let Some(id) = normalise_customer(v) else {
        return CustomerId::Missing;
    };
    if !high || std::str::from_utf8(id).is_ok() {
        return CustomerId::Text(id);
    }
    scratch.clear();
    for &b in id {
        if b < 0x80 {
            scratch.push(b);
        } else {
            // U+0080–U+00FF in UTF-8: two bytes.
            scratch.push(0xc0 | (b >> 6));
            scratch.push(0x80 | (b & 0x3f));
        }
    }
    CustomerId::Text(scratch)
}

/// The common customer ids, ASCII digits with or without a `.0` (`17850`,
/// `17850.0`), as [`customer_id`] reads them (no control character, not a
/// missing-value token, ASCII text, the `.0` dropped); `None` for any other
/// text, which the full reading takes.
#[inline]
fn digits_id(v: &[u8]) -> Option<&[u8]> {
    let n = v.len();
    let id = if n > 2 && v[n - 2] == b'.' && v[n - 1] == b'0' {
        &v[..n - 2]
    } else {
        v
    };
    (!id.is_empty() && id.iter().all(u8::is_ascii_digit)).then_some(id)
}

/// Whether bytes are a customer id as [`customer_id`] gives it: UTF-8 text
/// without control characters (checks states that arrive from elsewhere).
pub fn is_customer_text(id: &[u8]) -> bool {
    !id.iter().any(|&b| is_control(b)) && std::str::from_utf8(id).is_ok()
}

/// Reads the value of one field, unquoting into `scratch` when needed, trimmed.
#[inline]
fn field<'a>(bytes: &'a [u8], span: FieldSpan, scratch: &'a mut Vec<u8>) -> &'a [u8] {
    trim(span.value(bytes, scratch))
}

/// Where purchase lines go, one at a time, in file order.
pub trait Purchases {
    fn purchase(
        &mut self,
        customer: &[u8],
        invoice: &[u8],
        ts: Timestamp,
        amount: Money,
        country: &[u8],
    );
}

/// Purchase lines gathered into Arrow batches of [`BATCH_ROWS`] rows.
struct Batches<F: FnMut(RecordBatch)> {
    batch: BatchBuilder,
    emit: F,
}

impl<F: FnMut(RecordBatch)> Purchases for Batches<F> {
    #[inline]
    fn purchase(
        &mut self,
        customer: &[u8],
        invoice: &[u8],
        ts: Timestamp,
        amount: Money,
        country: &[u8],
    ) {
        self.batch.push(customer, invoice, ts, amount, country);
        if self.batch.len() == BATCH_ROWS {
            (self.emit)(self.batch.finish());
        }
    }
}

impl Purchases for crate::partial::PartialState {
    #[inline]
    fn purchase(
        &mut self,
        customer: &[u8],
        invoice: &[u8],
        ts: Timestamp,
        amount: Money,
        country: &[u8],
    ) {
        self.absorb_line(customer, invoice, ts, amount, country);
    }
}

/// A role whose field text a malformed sample's problem quotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldRole {
    Quantity,
    Price,
    Date,
    Customer,
}

/// The texts of a line, asked for only when a malformed line is kept as a
/// sample: a CSV record has them at hand, a typed row writes them.
pub trait LineText {
    /// The whole line, as a CSV record.
    fn record(&self) -> Cow<'_, [u8]>;
    /// A field's trimmed text.
    fn field(&self, role: FieldRole) -> Cow<'_, [u8]>;
}

/// What a line's fields hold, read by the input's reader (CSV text or typed
/// columns): `None` for a value that does not parse.
#[derive(Clone, Copy, Debug)]
pub struct LineValues<'a> {
    /// The trimmed invoice.
    pub invoice: &'a [u8],
    pub quantity: Option<i64>,
    pub price: Option<Money>,
    pub ts: Option<Timestamp>,
    pub customer: CustomerId<'a>,
}

/// A purchase line the rules kept, waiting for its country.
#[derive(Clone, Copy, Debug)]
pub struct Purchase<'a> {
    customer: &'a [u8],
    invoice: &'a [u8],
    ts: Timestamp,
    amount: Money,
}

impl<'a> Purchase<'a> {
    /// The customer id's text.
    pub fn customer(&self) -> &'a [u8] {
        self.customer
    }

    /// The trimmed invoice.
    pub fn invoice(&self) -> &'a [u8] {
        self.invoice
    }

    pub fn ts(&self) -> Timestamp {
        self.ts
    }

    /// Quantity × price.
    pub fn amount(&self) -> Money {
        self.amount
    }
}

/// The spec's line rules (§1 field formats, §2), shared by every input
/// format: counts lines in a [`LineLedger`], keeps malformed samples, and
/// hands purchase lines to a [`Purchases`] sink.
pub struct Classifier {
    pub ledger: LineLedger,
    file_index: u32,
    /// `--until`: purchases from the start of the next day on are left out.
    until_end: Option<Timestamp>,
}

impl Classifier {
    pub fn new(file_index: u32, opts: &ParseOptions) -> Classifier {
        Classifier {
            ledger: LineLedger::default(),
            file_index,
            until_end: opts.until.map(|d| (d as i64 + 1) * 86_400),
        }
    }

    /// Counts a line that is malformed as a whole (too long, wrong number of
    /// fields); `problem` says why.
    pub fn malformed_record(
        &mut self,
        offset: u64,
        record: &[u8],
        problem: impl FnOnce() -> String,
    ) {
        self.ledger.lines_read += 1;
        if self.ledger.wants_sample(self.file_index, offset) {
            self.ledger
                .offer_sample(sample(self.file_index, offset, record, problem()));
        }
        self.ledger.exclude(Reason::Malformed);
    }

    /// Counts the form of a line's date (per file): `shape` from the
    /// auto-detection, `None` for a date read another way (valid when `ts`
    /// is); `text` is the date's text, for the first day-first example.
    #[inline]
    pub fn date_form(
        &mut self,
        offset: u64,
        ts: Option<Timestamp>,
        shape: Option<Shape>,
        text: &[u8],
    ) {
        self.date_forms(offset, ts, shape, text, 1);
    }

    /// [`date_form`](Self::date_form) of `lines` lines with the same date
    /// text, the first of them at `offset`.
    pub fn date_forms(
        &mut self,
        offset: u64,
        ts: Option<Timestamp>,
        shape: Option<Shape>,
        text: &[u8],
        lines: u64,
    ) {
        let forms = self.ledger.dates_of(self.file_index);
        match shape {
            None if ts.is_some() => forms.formatted += lines,
            None => {}
            Some(Shape::Iso) => forms.iso += lines,
            Some(Shape::MonthFirst) => forms.month_first += lines,
            Some(Shape::Ambiguous) => forms.ambiguous += lines,
            Some(Shape::DayFirst) => {
                forms.day_first += lines;
                if forms
                    .day_first_example
                    .as_ref()
                    .is_none_or(|e| offset < e.0)
                {
                    let text = crate::text::escape_controls(&String::from_utf8_lossy(
                        &text[..text.len().min(40)],
                    ))
                    .into_owned();
                    forms.day_first_example = Some((offset, text));
                }
            }
            Some(Shape::Other) => {}
        }
    }

    /// Counts one line by the first rule that applies (malformed, missing
    /// customer, cancellation, quantity ≤ 0, price ≤ 0, after `--until`);
    /// a purchase line is returned for [`purchase`](Self::purchase).
    #[inline(always)]
    pub fn line<'a>(
        &mut self,
        offset: u64,
        v: LineValues<'a>,
        text: &dyn LineText,
    ) -> Option<Purchase<'a>> {
        self.ledger.lines_read += 1;
        let (Some(quantity), Some(price), Some(ts), false, false) = (
            v.quantity,
            v.price,
            v.ts,
            v.invoice.is_empty(),
            matches!(v.customer, CustomerId::Control(_)),
        ) else {
            if self.ledger.wants_sample(self.file_index, offset) {
                let quoted = |role| quote_value(&text.field(role));
                let problem = if v.invoice.is_empty() {
                    "empty invoice".to_string()
                } else if v.quantity.is_none() {
                    format!(
                        "quantity {} is not a whole number",
                        quoted(FieldRole::Quantity)
                    )
                } else if v.price.is_none() {
                    format!(
                        "price {} is not a decimal number {}",
                        quoted(FieldRole::Price),
                        money::RANGE_TEXT
                    )
                } else if let CustomerId::Control(c) = v.customer {
                    format!(
                        "customer id {} contains the control character U+{c:04X}",
                        quoted(FieldRole::Customer)
                    )
                } else {
                    format!("date {} is not a valid timestamp", quoted(FieldRole::Date))
                };
                self.ledger
                    .offer_sample(sample(self.file_index, offset, &text.record(), problem));
            }
            self.ledger.exclude(Reason::Malformed);
            return None;
        };
        let CustomerId::Text(customer) = v.customer else {
            self.ledger.exclude(Reason::MissingCustomer);
            return None;
        };
        if v.invoice[0] == b'C' {
            self.ledger.exclude(Reason::Cancellation);
            return None;
        }
        if quantity <= 0 {
            self.ledger.exclude(Reason::QuantityLe0);
            return None;
        }
        if price.0 <= 0 {
            self.ledger.exclude(Reason::PriceLe0);
            return None;
        }
        let Some(amount) = price.times(quantity) else {
            if self.ledger.wants_sample(self.file_index, offset) {
                let problem = format!("quantity × price is not {}", money::RANGE_TEXT);
                self.ledger
                    .offer_sample(sample(self.file_index, offset, &text.record(), problem));
            }
            self.ledger.exclude(Reason::Malformed);
            return None;
        };
        if self.until_end.is_some_and(|end| ts >= end) {
            self.ledger.exclude(Reason::AfterUntil);
            return None;
        }
        Some(Purchase {
            customer,
            invoice: v.invoice,
            ts,
            amount,
        })
    }

    /// Counts a purchase line and hands it, with its (trimmed) country, to `out`.
    #[inline]
    pub fn purchase(&mut self, p: Purchase<'_>, country: &[u8], out: &mut impl Purchases) {
        self.ledger.purchase_lines += 1;
        out.purchase(p.customer, p.invoice, p.ts, p.amount, country);
    }

    /// Counts a purchase line that the reader folds into its state itself
    /// (one that resolves each distinct customer once, not each line).
    #[inline]
    pub fn count_purchase(&mut self, _: &Purchase<'_>) {
        self.ledger.purchase_lines += 1;
    }

    /// The ledger of the lines counted.
    pub fn finish(self) -> LineLedger {
        self.ledger
    }
}

/// Reads date texts: with `--date-format` when given, else the spec's
/// auto-detected forms; consecutive equal texts (the lines of one invoice)
/// are parsed once, and of auto-detected slash dates, a day shared by
/// consecutive texts (the invoices of one day) is read once.
pub struct DateReader {
    format: Option<DateFormat>,
    auto: date::AutoShapes,
    last_text: Vec<u8>,
    last: (Option<Timestamp>, Option<Shape>),
}

impl DateReader {
    pub fn new(format: Option<DateFormat>) -> DateReader {
        DateReader {
            format,
            auto: date::AutoShapes::default(),
            last_text: Vec::with_capacity(32),
            // The empty text: no date, no form.
            last: (None, None),
        }
    }

    /// The timestamp of a trimmed date text and its auto-detected shape
    /// (`None` when read with `--date-format`).
    #[inline]
    pub fn read(&mut self, text: &[u8]) -> (Option<Timestamp>, Option<Shape>) {
        self.read_new(text).0
    }

    /// [`read`](Self::read), and whether `text` differs from the text read
    /// before (the empty text before any other).
    ///
    /// The check for an equal text is inlined into the reader's loop (it
    /// answers for most lines); a new text is read out of line.
    #[inline(always)]
    pub fn read_new(&mut self, text: &[u8]) -> ((Option<Timestamp>, Option<Shape>), bool) {
        if same_bytes(text, &self.last_text) {
            return (self.last, false);
        }
        (self.read_changed(text), true)
    }

    /// Reads a text that differs from the last one and keeps it as the last.
    #[inline(never)]
    fn read_changed(&mut self, text: &[u8]) -> (Option<Timestamp>, Option<Shape>) {
        self.last = match &self.format {
            Some(fmt) => (fmt.parse(text), None),
            None => {
                let (t, shape) = self.auto.read(text);
                (t, Some(shape))
            }
        };
        self.last_text.clear();
        self.last_text.extend_from_slice(text);
        self.last
    }
}

/// A CSV record's texts for a malformed sample.
struct RecordText<'a> {
    record: &'a [u8],
    quantity: &'a [u8],
    price: &'a [u8],
    date: &'a [u8],
    customer: &'a [u8],
}

impl LineText for RecordText<'_> {
    fn record(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.record)
    }

    fn field(&self, role: FieldRole) -> Cow<'_, [u8]> {
        Cow::Borrowed(match role {
            FieldRole::Quantity => self.quantity,
            FieldRole::Price => self.price,
            FieldRole::Date => self.date,
            FieldRole::Customer => self.customer,
        })
    }
}

/// Parses the records of `buf`, which starts at a record start and ends at one.
/// Calls `emit` with each full purchase batch (and the last, partial one) and
/// returns the ledger of the range.
pub fn parse_range(
    buf: &[u8],
    range: RangeSpec,
    columns: &ColumnMap,
    opts: &ParseOptions,
    emit: impl FnMut(RecordBatch),
) -> LineLedger {
    let mut batches = Batches {
        batch: BatchBuilder::new(),
        emit,
    };
    let ledger = parse_range_to(buf, range, columns, opts, &mut batches);
    if batches.batch.len() > 0 {
        (batches.emit)(batches.batch.finish());
    }
    ledger
}

/// [`parse_range`] folding each purchase line straight into `state` (what
/// [`PartialState::absorb`](crate::partial::PartialState::absorb) of its
/// batches would do, without the batches).
pub fn parse_range_into(
    buf: &[u8],
    range: RangeSpec,
    columns: &ColumnMap,
    opts: &ParseOptions,
    state: &mut crate::partial::PartialState,
) -> LineLedger {
    parse_range_to(buf, range, columns, opts, state)
}

/// Parses the records of `buf` (see [`parse_range`]), handing each purchase
/// line to `out`; returns the ledger of the range.
pub fn parse_range_to(
    buf: &[u8],
    range: RangeSpec,
    columns: &ColumnMap,
    opts: &ParseOptions,
    out: &mut impl Purchases,
) -> LineLedger {
    let mut classifier = Classifier::new(range.file_index, opts);
    let mut splitter = RecordSplitter::new(opts.delimiter, opts.max_record_size);
    let decimal_mark = if opts.decimal_comma { b',' } else { b'.' };
    let (mut s_inv, mut s_qty, mut s_date, mut s_price, mut s_cust, mut s_country) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let mut s_cust_text = Vec::new();
    let mut dates = DateReader::new(opts.date_format.clone());
    // The date forms are counted by runs of lines with the same date text
    // (the lines of an invoice): the run's first line notes its form
    // (and a day-first example), the others only count.
    let mut date_run: (u64, Option<Timestamp>, Option<Shape>, u64) = (0, None, None, 0);
    let mut records = splitter.records(buf, range.base, 0, buf.len());

    while let Some(rec) = records.next() {
        let offset = range.base + rec.offset as u64;
        if rec.over_long {
            classifier.malformed_record(offset, rec.bytes, || {
                format!(
                    "record longer than {} bytes (--max-record-size)",
                    opts.max_record_size
                )
            });
            continue;
        }
        let found = rec.field_count();
        if found != columns.field_count {
            classifier.malformed_record(offset, rec.bytes, || {
                format!("expected {} fields, found {found}", columns.field_count)
            });
            continue;
        }
        // A record without a quoted field (nearly every one) reads its
        // values as raw bytes, without looking at each field's quoting.
        let plain = !rec.any_quoted();
        macro_rules! value {
            ($i:expr, $scratch:expr) => {
                if plain {
                    trim(rec.raw_field($i))
                } else {
                    field(rec.bytes, rec.field($i), &mut $scratch)
                }
            };
        }
        let invoice = value!(columns.invoice, s_inv);
        let qty_text = value!(columns.quantity, s_qty);
        let price_text = value!(columns.price, s_price);
        let date_text = value!(columns.date, s_date);
        let ((ts, shape), new) = dates.read_new(date_text);
        if new {
            let (run_offset, run_ts, run_shape, repeats) = date_run;
            if repeats > 0 {
                classifier.date_forms(run_offset, run_ts, run_shape, b"", repeats);
            }
            classifier.date_form(offset, ts, shape, date_text);
            date_run = (offset, ts, shape, 0);
        } else {
            date_run.3 += 1;
        }
        let customer_text = value!(columns.customer, s_cust);
        let values = LineValues {
            invoice,
            quantity: parse_quantity(qty_text),
            price: money::parse_price(price_text, decimal_mark),
            ts,
            customer: customer_id(customer_text, &mut s_cust_text),
        };
        let text = RecordText {
            record: rec.bytes,
            quantity: qty_text,
            price: price_text,
            date: date_text,
            customer: customer_text,
        };
        if let Some(purchase) = classifier.line(offset, values, &text) {
            let country = match columns.country {
                Some(c) => value!(c, s_country),
                None => b"",
            };
            classifier.purchase(purchase, country, out);
        }
    }
    let (run_offset, run_ts, run_shape, repeats) = date_run;
    if repeats > 0 {
        classifier.date_forms(run_offset, run_ts, run_shape, b"", repeats);
    }
    classifier.finish()
}

/// A malformed line for the report: its text (lossy UTF-8, cut at 300 bytes
/// with the full length noted) with every control character escaped
/// ([`crate::text::escape_controls`]: `\x00`, `\x1b`), so no report, terminal
/// or database sees a raw NUL or ESC.
fn sample(file_index: u32, offset: u64, bytes: &[u8], problem: String) -> MalformedSample {
    let raw = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]);
    let mut text = crate::text::escape_controls(&raw).into_owned();
    if bytes.len() > 300 {
        text.push_str(&format!("… ({} bytes)", bytes.len()));
    }
    MalformedSample {
        file_index,
        offset,
        line: None,
        text,
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::DateForms;

    #[test]
    fn quantity_forms() {
        assert_eq!(parse_quantity(b"6"), Some(6));
        assert_eq!(parse_quantity(b"-12"), Some(-12));
        assert_eq!(parse_quantity(b"+3"), Some(3));
        assert_eq!(
            parse_quantity(b"999999999999999999"),
            Some(999_999_999_999_999_999)
        );
        for bad in [
            &b""[..],
            b"6.0",
            b"1e3",
            b"-",
            b"1 2",
            b"9999999999999999999",
        ] {
            assert_eq!(
                parse_quantity(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn customer_forms() {
        assert_eq!(normalise_customer(b"17850.0"), Some(&b"17850"[..]));
        assert_eq!(normalise_customer(b"017850"), Some(&b"017850"[..]));
        assert_eq!(normalise_customer(b"17850.00"), Some(&b"17850.00"[..]));
        assert_eq!(normalise_customer(b"A.0"), Some(&b"A.0"[..]));
        for missing in [&b""[..], b"NA", b"na", b"NaN", b"NULL", b"Null"] {
            assert_eq!(normalise_customer(missing), None);
        }
        assert_eq!(normalise_customer(b"NAN1"), Some(&b"NAN1"[..]));
    }

    #[test]
    fn samples_escape_control_characters() {
        let s = sample(
            0,
            0,
            b"1,12\x0046,\x1b[31m,\x7f,\t\"a\r\nb\"",
            String::new(),
        );
        assert_eq!(s.text, "1,12\\x0046,\\x1b[31m,\\x7f,\\x09\"a\\x0d\\x0ab\"");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 4000, failure_persistence: None, .. Default::default() })]

        /// The digits fast path reads ids as the full reading does.
        #[test]
        fn customer_id_fast_path_is_the_full_reading(
            v in proptest::collection::vec(
                proptest::sample::select(vec![b'0', b'1', b'9', b'.', b'a', b'N', b'A', b' ', 0, 0x7f, 0xe9]),
                0..10,
            ),
        ) {
            let (mut s1, mut s2) = (Vec::new(), Vec::new());
            proptest::prop_assert_eq!(customer_id(&v, &mut s1), any_customer_id(&v, &mut s2));
        }
    }

    /// The date forms of a buffer's lines, counted line by line: each line
    /// parsed alone, the forms merged.
    fn date_forms_line_by_line(data: &[u8], columns: &ColumnMap, opts: &ParseOptions) -> DateForms {
        let mut forms = DateForms::default();
        let mut start = 0;
        for line in data.split_inclusive(|&b| b == b'\n') {
            let range = RangeSpec {
                file_index: 0,
                base: start as u64,
            };
            let ledger = parse_range(line, range, columns, opts, |_| {});
            if let Some(f) = ledger.dates.first() {
                forms.merge(f);
            }
            start += line.len();
        }
        forms
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 500, failure_persistence: None, .. Default::default() })]

        /// Date forms counted by runs of equal date texts are the forms
        /// counted line by line: every shape, empty dates, a day-first
        /// example, lines of the wrong field count between the runs, with
        /// and without `--date-format`.
        #[test]
        fn date_forms_by_runs_are_the_forms_line_by_line(
            lines in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "", "12/1/2010 8:26", "13/1/2010 8:26", "1/13/2010 8:26",
                        "2010-12-01 08:26", "x", "31/12/2010 9:00",
                    ]),
                    1usize..4,
                    proptest::bool::weighted(0.1),
                ),
                0..40,
            ),
            formatted in proptest::bool::ANY,
        ) {
            let header: Vec<String> = ["InvoiceNo", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"]
                .iter()
                .map(|h| h.to_string())
                .collect();
            let columns = ColumnMap::resolve(std::path::Path::new("t.csv"), &header, b',').unwrap();
            let opts = ParseOptions {
                date_format: formatted.then(|| DateFormat::new("%d/%m/%Y %H:%M").unwrap()),
                ..ParseOptions::default()
            };
            let mut data = String::new();
            for (date, repeats, short) in &lines {
                for _ in 0..*repeats {
                    if *short {
                        data.push_str(&format!("1,2,{date}\n"));
                    } else {
                        data.push_str(&format!("1,2,{date},1.5,7\n"));
                    }
                }
            }
            let data = data.as_bytes();
            let range = RangeSpec { file_index: 0, base: 0 };
            let whole = parse_range(data, range, &columns, &opts, |_| {});
            let whole = whole.dates.first().cloned().unwrap_or_default();
            proptest::prop_assert_eq!(whole, date_forms_line_by_line(data, &columns, &opts));
        }
    }

    #[test]
    fn customer_ids_are_their_decoded_text() {
        let id = |v: &[u8]| {
            let mut scratch = Vec::new();
            match customer_id(v, &mut scratch) {
                CustomerId::Text(t) => Ok(t.to_vec()),
                CustomerId::Missing => Err(None),
                CustomerId::Control(c) => Err(Some(c)),
            }
        };
        assert_eq!(id(b"17850.0"), Ok(b"17850".to_vec()));
        assert_eq!(id(b"Ren\xc3\xa9"), Ok("René".as_bytes().to_vec()));
        assert_eq!(id(b"Ren\xe9"), Ok("René".as_bytes().to_vec()));
        assert_eq!(id(b"\xc3\x28"), Ok("Ã(".as_bytes().to_vec()));
        assert_eq!(id(b"\xff"), Ok("ÿ".as_bytes().to_vec()));
        assert_eq!(id(b"na"), Err(None));
        assert_eq!(id(b"12\x0046"), Err(Some(0)));
        assert_eq!(id(b"\x1b[31m"), Err(Some(0x1b)));
        assert_eq!(id(b"12346\x7f"), Err(Some(0x7f)));
        assert_eq!(id(b"12\t346"), Err(Some(b'\t')));
        assert_eq!(
            id(b"NA\n"),
            Err(Some(b'\n')),
            "malformed comes before missing"
        );
        assert_eq!(
            id("\u{85}".as_bytes()),
            Ok("\u{85}".as_bytes().to_vec()),
            "C1 is not a control here"
        );
        for t in ["17850", "René", "Ã("] {
            assert!(is_customer_text(t.as_bytes()));
        }
        for bad in [&b"Ren\xe9"[..], b"a\x00", b"\x7f"] {
            assert!(!is_customer_text(bad));
        }
    }
}
