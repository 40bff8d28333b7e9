//! A batch of a Parquet file's role columns read as the values of lines
//! ([`LineValues`]) for the shared [`Classifier`], straight from the typed
//! arrays: no row becomes text unless it is kept as a malformed sample.
//!
//! Each value reads as the text a CSV export would hold reads, so the
//! spec's rules apply unchanged:
//! - text (UTF-8, large, view, dictionary) is trimmed and read with the CSV
//!   field rules ([`parse_quantity`], [`money::parse_price`], the date forms,
//!   [`customer_id`]); null is an empty field;
//! - an integer quantity needs at most 18 digits; an integer or decimal
//!   price is its exact value (more than 18 fractional digits round half
//!   away from zero, as the text does); a float is its shortest decimal
//!   text (`2.55`, `6`, `NaN`), read as text;
//! - a timestamp (any unit, any zone: the stored value, to the second) or a
//!   date is valid in years 0000–9999 and counts as an ISO date; `--date-format`
//!   applies only to a text date column;
//! - other types, and typed values in the invoice, customer and country
//!   columns, are read as their text.

use std::borrow::Cow;

use std::sync::Arc;

use arrow::array::{
    AnyDictionaryArray, Array, ArrayRef, AsArray, Decimal128Array, Float32Array, Float64Array,
    Int64Array, LargeStringArray, StringArray, StringViewArray,
};
use arrow::buffer::{NullBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Int32Type, Int64Type};

use crate::date::{self, Shape, Timestamp};
use crate::excel::cell::shortest_decimal;
use crate::input::ColumnMap;
use crate::money::{self, Money};
use crate::parse::{
    customer_id, parse_quantity, trim, CustomerId, DateReader, FieldRole, LineText, LineValues,
};
use crate::partial::{PackedInvoice, PartialState};

/// Seconds since 1970 of 0000-01-01 00:00:00 and 9999-12-31 23:59:59: the
/// timestamps a `YYYY-MM-DD HH:MM:SS` text can hold.
const FIRST_SECOND: Timestamp = -62_167_219_200;
const LAST_SECOND: Timestamp = 253_402_300_799;

/// The keys of a dictionary array, as indices into its values.
enum Keys {
    /// `Int32` keys (what the reader makes of a dictionary-encoded column).
    I32(ScalarBuffer<i32>),
    Other(Vec<usize>),
}

impl Keys {
    fn of(dict: &dyn AnyDictionaryArray) -> Keys {
        match dict.keys().as_primitive_opt::<Int32Type>() {
            Some(k) => Keys::I32(k.values().clone()),
            None => Keys::Other(dict.normalized_keys()),
        }
    }

    /// The key of `row` (meaningful where the row is valid).
    #[inline]
    fn get(&self, row: usize) -> usize {
        match self {
            Keys::I32(k) => k[row] as usize,
            Keys::Other(k) => k[row],
        }
    }
}

/// A column read as text.
enum TextColumn {
    Utf8(StringArray),
    Large(LargeStringArray),
    View(StringViewArray),
    /// Dictionary keys (meaningful where `valid`) into text values.
    Dictionary {
        keys: Keys,
        valid: Option<NullBuffer>,
        values: Box<TextColumn>,
    },
    /// Every row null.
    Null,
}

impl TextColumn {
    fn new(array: &ArrayRef) -> Result<TextColumn, String> {
        Ok(match array.data_type() {
            DataType::Utf8 => TextColumn::Utf8(array.as_string::<i32>().clone()),
            DataType::LargeUtf8 => TextColumn::Large(array.as_string::<i64>().clone()),
            DataType::Utf8View => TextColumn::View(array.as_string_view().clone()),
            DataType::Dictionary(..) => {
                let dict = array.as_any_dictionary();
                if dict.values().is_empty() {
                    return Ok(TextColumn::Null);
                }
                TextColumn::Dictionary {
                    keys: Keys::of(dict),
                    valid: array.logical_nulls(),
                    values: Box::new(TextColumn::new(dict.values())?),
                }
            }
            _ => TextColumn::Utf8(rendered(array)?),
        })
    }

    /// The row's text, `None` for null.
    #[inline]
    fn get(&self, row: usize) -> Option<&[u8]> {
        match self {
            TextColumn::Dictionary {
                keys,
                valid,
                values,
            } => {
                if valid.as_ref().is_some_and(|v| v.is_null(row)) {
                    return None;
                }
                values.flat_get(keys.get(row))
            }
            _ => self.flat_get(row),
        }
    }

    /// [`get`](Self::get) of a column that is not a dictionary, inlined into
    /// a dictionary's lookup (a dictionary of dictionaries reads out of line).
    #[inline]
    fn flat_get(&self, row: usize) -> Option<&[u8]> {
        match self {
            TextColumn::Utf8(a) => a.is_valid(row).then(|| a.value(row).as_bytes()),
            TextColumn::Large(a) => a.is_valid(row).then(|| a.value(row).as_bytes()),
            TextColumn::View(a) => a.is_valid(row).then(|| a.value(row).as_bytes()),
            TextColumn::Null => None,
            TextColumn::Dictionary { .. } => self.nested_get(row),
        }
    }

    #[inline(never)]
    fn nested_get(&self, row: usize) -> Option<&[u8]> {
        self.get(row)
    }

    /// The row's trimmed text; empty for null.
    #[inline]
    fn trimmed(&self, row: usize) -> &[u8] {
        trim(self.get(row).unwrap_or_default())
    }
}

/// Every row of a non-text column as the text a CSV export holds.
fn rendered(array: &ArrayRef) -> Result<StringArray, String> {
    match array.data_type() {
        DataType::Float32
        | DataType::Float64
        | DataType::Timestamp(..)
        | DataType::Date32
        | DataType::Date64 => {
            let mut out = Vec::new();
            Ok((0..array.len())
                .map(|row| {
                    array.is_valid(row).then(|| {
                        render(array, row, &mut out);
                        String::from_utf8_lossy(&out).into_owned()
                    })
                })
                .collect())
        }
        _ => {
            let text = arrow::compute::cast(array, &DataType::Utf8)
                .map_err(|e| format!("cannot read a {} column as text: {e}", array.data_type()))?;
            Ok(text.as_string::<i32>().clone())
        }
    }
}

/// Writes a float as its shortest decimal text (`-0` is `0`).
fn push_float(v: f64, out: &mut Vec<u8>) {
    let mut s = String::new();
    shortest_decimal(v, &mut s);
    out.extend_from_slice(s.as_bytes());
}

/// Writes an `f32` as its own shortest decimal text (`2.55`, not the
/// `f64` widening's digits).
fn push_float32(v: f32, out: &mut Vec<u8>) {
    use std::io::Write as _;
    if v == 0.0 {
        out.push(b'0');
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Writes a timestamp as `YYYY-MM-DD HH:MM:SS` (a value far outside the
/// calendar as its seconds since 1970).
fn push_timestamp(ts: Timestamp, out: &mut Vec<u8>) {
    const FAR: i64 = 100_000_000 * 86_400;
    if (-FAR..FAR).contains(&ts) {
        out.extend_from_slice(date::format_timestamp(ts).as_bytes());
    } else {
        out.extend_from_slice(ts.to_string().as_bytes());
    }
}

/// Seconds since 1970 of a timestamp or date array's row (the stored value,
/// to the second); `None` for other types.
fn seconds_at(array: &ArrayRef, row: usize) -> Option<i64> {
    use arrow::datatypes::*;
    let per_second = |v: i64, unit: i64| v.div_euclid(unit);
    Some(match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            array.as_primitive::<TimestampSecondType>().value(row)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => per_second(
            array.as_primitive::<TimestampMillisecondType>().value(row),
            1_000,
        ),
        DataType::Timestamp(TimeUnit::Microsecond, _) => per_second(
            array.as_primitive::<TimestampMicrosecondType>().value(row),
            1_000_000,
        ),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => per_second(
            array.as_primitive::<TimestampNanosecondType>().value(row),
            1_000_000_000,
        ),
        DataType::Date32 => array.as_primitive::<Date32Type>().value(row) as i64 * 86_400,
        DataType::Date64 => per_second(array.as_primitive::<Date64Type>().value(row), 1_000),
        _ => return None,
    })
}

/// [`seconds_at`] of every row of a timestamp or date array (seconds as
/// stored are not copied).
fn all_seconds(array: &ArrayRef) -> ScalarBuffer<i64> {
    use arrow::datatypes::*;
    fn per(values: &[i64], unit: i64) -> ScalarBuffer<i64> {
        values.iter().map(|v| v.div_euclid(unit)).collect()
    }
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            array.as_primitive::<TimestampSecondType>().values().clone()
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => per(
            array.as_primitive::<TimestampMillisecondType>().values(),
            1_000,
        ),
        DataType::Timestamp(TimeUnit::Microsecond, _) => per(
            array.as_primitive::<TimestampMicrosecondType>().values(),
            1_000_000,
        ),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => per(
            array.as_primitive::<TimestampNanosecondType>().values(),
            1_000_000_000,
        ),
        DataType::Date32 => array
            .as_primitive::<Date32Type>()
            .values()
            .iter()
            .map(|&d| d as i64 * 86_400)
            .collect(),
        DataType::Date64 => per(array.as_primitive::<Date64Type>().values(), 1_000),
        _ => (0..array.len())
            .map(|row| seconds_at(array, row).unwrap_or_default())
            .collect(),
    }
}

/// Writes a row's value as the text a CSV export would hold (nothing for
/// null): for samples and for typed values read as text.
fn render(array: &ArrayRef, row: usize, out: &mut Vec<u8>) {
    out.clear();
    if array.is_null(row) {
        return;
    }
    match array.data_type() {
        DataType::Float64 => push_float(
            array
                .as_primitive::<arrow::datatypes::Float64Type>()
                .value(row),
            out,
        ),
        DataType::Float32 => push_float32(
            array
                .as_primitive::<arrow::datatypes::Float32Type>()
                .value(row),
            out,
        ),
        DataType::Dictionary(..) => {
            let dict = array.as_any_dictionary();
            if !dict.values().is_empty() {
                let key = dict.normalized_keys()[row];
                render(dict.values(), key, out);
            }
        }
        _ => match seconds_at(array, row) {
            Some(s) => push_timestamp(s, out),
            None => {
                if let Ok(text) = arrow::util::display::array_value_to_string(array, row) {
                    out.extend_from_slice(text.as_bytes());
                }
            }
        },
    }
}

/// The quantity column.
enum QuantityColumn {
    Int(Int64Array),
    Text(TextColumn),
}

impl QuantityColumn {
    fn new(array: &ArrayRef) -> Result<QuantityColumn, String> {
        Ok(match array.data_type() {
            DataType::Int64 => QuantityColumn::Int(array.as_primitive::<Int64Type>().clone()),
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32 => {
                let wide = arrow::compute::cast(array, &DataType::Int64)
                    .map_err(|e| format!("cannot widen a {} column: {e}", array.data_type()))?;
                QuantityColumn::Int(wide.as_primitive::<Int64Type>().clone())
            }
            _ => QuantityColumn::Text(TextColumn::new(array)?),
        })
    }

    #[inline]
    fn get(&self, row: usize) -> Option<i64> {
        match self {
            // `[+-]?[0-9]{1,18}`: at most 18 digits.
            QuantityColumn::Int(a) => {
                let v = a.value(row);
                (a.is_valid(row) && v.unsigned_abs() <= 999_999_999_999_999_999).then_some(v)
            }
            QuantityColumn::Text(t) => parse_quantity(t.trimmed(row)),
        }
    }
}

/// The price column.
enum PriceColumn {
    /// Exact decimals: units of `10^-scale`.
    Decimal(Decimal128Array, Rescale),
    Int(Int64Array),
    Float64(Float64Array),
    Float32(Float32Array),
    Text(TextColumn),
}

impl PriceColumn {
    fn new(array: &ArrayRef) -> Result<PriceColumn, String> {
        let cast = |to: &DataType| {
            arrow::compute::cast(array, to)
                .map_err(|e| format!("cannot widen a {} column: {e}", array.data_type()))
        };
        Ok(match array.data_type() {
            DataType::Decimal128(_, s) => {
                PriceColumn::Decimal(array.as_primitive().clone(), Rescale::new(*s))
            }
            DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => PriceColumn::Decimal(
                cast(&DataType::Decimal128(*p, *s))?.as_primitive().clone(),
                Rescale::new(*s),
            ),
            DataType::Int64 => PriceColumn::Int(array.as_primitive().clone()),
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32 => PriceColumn::Int(cast(&DataType::Int64)?.as_primitive().clone()),
            DataType::Float64 => PriceColumn::Float64(array.as_primitive().clone()),
            DataType::Float32 => PriceColumn::Float32(array.as_primitive().clone()),
            _ => PriceColumn::Text(TextColumn::new(array)?),
        })
    }

    #[inline]
    fn get(&self, row: usize, scratch: &mut Vec<u8>) -> Option<Money> {
        match self {
            PriceColumn::Decimal(a, rescale) => {
                if a.is_null(row) {
                    return None;
                }
                rescale.money(a.value(row))
            }
            PriceColumn::Int(a) => {
                if a.is_null(row) {
                    return None;
                }
                // An i64 times 10^18 fits an i128.
                Money::ZERO.checked_add(Money(a.value(row) as i128 * money::ONE))
            }
            PriceColumn::Float64(a) => {
                scratch.clear();
                push_float(a.is_valid(row).then(|| a.value(row))?, scratch);
                money::parse_price(scratch, b'.')
            }
            PriceColumn::Float32(a) => {
                scratch.clear();
                push_float32(a.is_valid(row).then(|| a.value(row))?, scratch);
                money::parse_price(scratch, b'.')
            }
            PriceColumn::Text(t) => money::parse_price(t.trimmed(row), b'.'),
        }
    }
}

/// The exact amount of `units × 10^-scale`, as its decimal text reads:
/// digits past the 18th fractional one round half away from zero; `None`
/// beyond ±[`Money::MAX`].
#[cfg(test)]
fn decimal_money(units: i128, scale: i8) -> Option<Money> {
    Rescale::new(scale).money(units)
}

/// [`decimal_money`] of one scale, its power of ten worked out once.
#[derive(Clone, Copy)]
pub struct Rescale {
    /// Fractional digits to add (negative: to drop).
    shift: i32,
    /// `10^|shift|`, `None` beyond an i128.
    power: Option<i128>,
    /// `10^shift` when digits are added and it fits an i64 (then an i64
    /// value times it fits an i128).
    small_power: Option<i64>,
}

impl Rescale {
    pub fn new(scale: i8) -> Rescale {
        let shift = money::SCALE as i32 - scale as i32;
        let power = 10i128.checked_pow(shift.unsigned_abs());
        Rescale {
            shift,
            power,
            small_power: power
                .filter(|_| shift >= 0)
                .and_then(|p| i64::try_from(p).ok()),
        }
    }

    #[inline]
    pub fn money(self, units: i128) -> Option<Money> {
        if units == 0 {
            return Some(Money::ZERO);
        }
        if let (Some(power), Ok(small)) = (self.small_power, i64::try_from(units)) {
            let exact = Money(small as i128 * power as i128);
            return exact.in_range().then_some(exact);
        }
        let exact = if self.shift >= 0 {
            units.checked_mul(self.power?)?
        } else {
            let drop = self.power?;
            let (q, r) = (units / drop, (units % drop).unsigned_abs());
            // The first dropped digit decides: 5 or more rounds away from zero.
            let away = r >= drop.unsigned_abs() / 2;
            if away {
                q + units.signum()
            } else {
                q
            }
        };
        Money::ZERO.checked_add(Money(exact))
    }
}

/// The date column.
enum DateColumn {
    /// Seconds since 1970, from timestamps or dates.
    Seconds {
        values: ScalarBuffer<i64>,
        valid: Option<NullBuffer>,
    },
    /// Text dates, read as the CSV reads them.
    Text(TextColumn, DateReader),
}

impl DateColumn {
    fn new(array: &ArrayRef, reader: DateReader) -> Result<DateColumn, String> {
        if matches!(
            array.data_type(),
            DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
        ) {
            return Ok(DateColumn::Seconds {
                values: all_seconds(array),
                valid: array.logical_nulls(),
            });
        }
        Ok(DateColumn::Text(TextColumn::new(array)?, reader))
    }

    /// The row's timestamp, its date form (`None`: no form counted) and text.
    #[inline]
    fn get(&mut self, row: usize) -> (Option<Timestamp>, Option<Shape>, &[u8]) {
        match self {
            DateColumn::Seconds { values, valid } => {
                if valid.as_ref().is_some_and(|v| v.is_null(row)) {
                    return (None, None, b"");
                }
                let s = values[row];
                if (FIRST_SECOND..=LAST_SECOND).contains(&s) {
                    (Some(s), Some(Shape::Iso), b"")
                } else {
                    (None, Some(Shape::Other), b"")
                }
            }
            DateColumn::Text(t, reader) => {
                let text = t.trimmed(row);
                let (ts, shape) = reader.read(text);
                (ts, shape, text)
            }
        }
    }
}

/// A customer id as [`customer_id`] reads it, owned: its text is a range of
/// [`CustomerIds::text`].
#[derive(Clone, Copy)]
enum Id {
    Missing,
    Control(u8),
    Text(usize, usize),
}

/// Each value of a dictionary read once as a customer id.
pub struct CustomerIds {
    /// The dictionary values read (held: their address identifies them).
    values: ArrayRef,
    ids: Vec<Id>,
    text: Vec<u8>,
}

impl CustomerIds {
    fn new(values: &ArrayRef) -> Result<CustomerIds, String> {
        let column = TextColumn::new(values)?;
        let mut scratch = Vec::new();
        let mut text = Vec::new();
        let ids = (0..values.len())
            .map(|k| match column.get(k) {
                None => Id::Missing,
                Some(v) => match customer_id(trim(v), &mut scratch) {
                    CustomerId::Missing => Id::Missing,
                    CustomerId::Control(c) => Id::Control(c),
                    CustomerId::Text(t) => {
                        text.extend_from_slice(t);
                        Id::Text(text.len() - t.len(), text.len())
                    }
                },
            })
            .collect();
        Ok(CustomerIds {
            values: values.clone(),
            ids,
            text,
        })
    }

    /// Whether these are the ids of `values` (the same array).
    fn of(&self, values: &ArrayRef) -> bool {
        Arc::ptr_eq(&self.values, values)
    }

    #[inline]
    fn get(&self, key: usize) -> CustomerId<'_> {
        match self.ids[key] {
            Id::Missing => CustomerId::Missing,
            Id::Control(c) => CustomerId::Control(c),
            Id::Text(s, e) => CustomerId::Text(&self.text[s..e]),
        }
    }
}

/// Each value of a text dictionary read once, trimmed (null: empty), and
/// its invoice packing when it is an invoice dictionary.
pub struct DictTexts {
    /// The dictionary values read (held: their address identifies them).
    values: ArrayRef,
    /// Each value's range of `text`.
    spans: Vec<(u32, u32)>,
    text: Vec<u8>,
    packed: Vec<PackedInvoice>,
}

impl DictTexts {
    fn new(values: &ArrayRef, pack: bool) -> Result<DictTexts, String> {
        let column = TextColumn::new(values)?;
        let mut text = Vec::new();
        let mut spans = Vec::with_capacity(values.len());
        let mut packed = Vec::with_capacity(if pack { values.len() } else { 0 });
        for k in 0..values.len() {
            let v = column.trimmed(k);
            let start = text.len();
            text.extend_from_slice(v);
            let end = text.len();
            if end > u32::MAX as usize {
                return Err("a dictionary's values exceed 4 GiB of text".into());
            }
            spans.push((start as u32, end as u32));
            if pack {
                packed.push(PackedInvoice::of(v));
            }
        }
        Ok(DictTexts {
            values: values.clone(),
            spans,
            text,
            packed,
        })
    }

    /// Whether these are the texts of `values` (the same array).
    fn of(&self, values: &ArrayRef) -> bool {
        Arc::ptr_eq(&self.values, values)
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    #[inline(always)]
    fn get(&self, key: usize) -> &[u8] {
        let (s, e) = self.spans[key];
        &self.text[s as usize..e as usize]
    }
}

/// A text column whose dictionary values are read once ([`DictTexts`]), or
/// whose rows are read one by one.
enum KeyedText {
    Dictionary {
        keys: Keys,
        valid: Option<NullBuffer>,
        texts: Arc<DictTexts>,
    },
    Text(TextColumn),
}

impl KeyedText {
    /// The column of `array`; `known` holds the texts of the dictionary last
    /// read (a row group's batches share it), and is updated.
    fn new(
        array: &ArrayRef,
        known: &mut Option<Arc<DictTexts>>,
        pack: bool,
    ) -> Result<KeyedText, String> {
        if let DataType::Dictionary(..) = array.data_type() {
            let dict = array.as_any_dictionary();
            let values = dict.values();
            if !values.is_empty() {
                let texts = match known {
                    Some(t) if t.of(values) => t.clone(),
                    _ => {
                        let t = Arc::new(DictTexts::new(values, pack)?);
                        *known = Some(t.clone());
                        t
                    }
                };
                return Ok(KeyedText::Dictionary {
                    keys: Keys::of(dict),
                    valid: dict.keys().logical_nulls(),
                    texts,
                });
            }
        }
        Ok(KeyedText::Text(TextColumn::new(array)?))
    }

    /// The row's trimmed text (empty for null) and its dictionary key
    /// (`None` for null or a column without a dictionary).
    #[inline(always)]
    fn get(&self, row: usize) -> (&[u8], Option<u32>) {
        match self {
            KeyedText::Dictionary { keys, valid, texts } => {
                if valid.as_ref().is_some_and(|v| v.is_null(row)) {
                    return (b"", None);
                }
                let key = keys.get(row);
                (texts.get(key), Some(key as u32))
            }
            KeyedText::Text(t) => (t.trimmed(row), None),
        }
    }

    /// [`get`](Self::get) with the text's packed invoice.
    #[inline(always)]
    fn invoice(&self, row: usize) -> (&[u8], PackedInvoice) {
        match self {
            KeyedText::Dictionary { texts, .. } => match self.get(row) {
                (text, Some(key)) => (text, texts.packed[key as usize]),
                (text, None) => (text, PackedInvoice::of(text)),
            },
            KeyedText::Text(t) => {
                let text = t.trimmed(row);
                (text, PackedInvoice::of(text))
            }
        }
    }
}

/// The state slots of a row group's dictionary values, each resolved at its
/// first purchase line: a customer's or country's text is looked up in the
/// state once per dictionary, not once per line. Valid for one state.
pub struct Slots {
    customers_of: Option<Arc<CustomerIds>>,
    customers: Vec<u32>,
    countries_of: Option<Arc<DictTexts>>,
    countries: Vec<u32>,
}

/// A slot not resolved yet.
const UNRESOLVED: u32 = u32::MAX;

impl Slots {
    pub fn new() -> Slots {
        Slots {
            customers_of: None,
            customers: Vec::new(),
            countries_of: None,
            countries: Vec::new(),
        }
    }

    /// Follows the dictionaries of `read`: the slots of a dictionary not
    /// seen before start unresolved.
    pub fn follow(&mut self, read: &RoleColumns) {
        if let CustomerColumn::Dictionary { ids, .. } = &read.customer {
            if !self
                .customers_of
                .as_ref()
                .is_some_and(|known| Arc::ptr_eq(known, ids))
            {
                self.customers.clear();
                self.customers.resize(ids.ids.len(), UNRESOLVED);
                self.customers_of = Some(ids.clone());
            }
        }
        if let Some(KeyedText::Dictionary { texts, .. }) = &read.country {
            if !self
                .countries_of
                .as_ref()
                .is_some_and(|known| Arc::ptr_eq(known, texts))
            {
                self.countries.clear();
                self.countries.resize(texts.len(), UNRESOLVED);
                self.countries_of = Some(texts.clone());
            }
        }
    }

    /// The state slot of a row's customer `id`, `key` its dictionary key.
    #[inline]
    pub fn customer(&mut self, key: Option<u32>, id: &[u8], state: &mut PartialState) -> u32 {
        resolve(&mut self.customers, key, || state.slot_of_customer(id))
    }

    /// The state slot of a row's country `name`, `key` its dictionary key.
    #[inline]
    pub fn country(&mut self, key: Option<u32>, name: &[u8], state: &mut PartialState) -> u32 {
        resolve(&mut self.countries, key, || state.slot_of_country(name))
    }
}

impl Default for Slots {
    fn default() -> Slots {
        Slots::new()
    }
}

/// The slot of dictionary key `key` in `slots`, looked up once.
#[inline]
fn resolve(slots: &mut [u32], key: Option<u32>, look_up: impl FnOnce() -> u32) -> u32 {
    match key.and_then(|k| slots.get_mut(k as usize)) {
        Some(slot) => {
            if *slot == UNRESOLVED {
                *slot = look_up();
            }
            *slot
        }
        None => look_up(),
    }
}

/// The customer column.
enum CustomerColumn {
    /// Dictionary keys into ids read once per dictionary value.
    Dictionary {
        keys: Keys,
        valid: Option<NullBuffer>,
        ids: Arc<CustomerIds>,
    },
    /// Each row read as text.
    Text(TextColumn),
}

impl CustomerColumn {
    /// The column of `array`; `known` holds the ids of the dictionary last
    /// read (a row group's batches share it), and is updated.
    fn new(array: &ArrayRef, known: &mut Option<Arc<CustomerIds>>) -> Result<Self, String> {
        if let DataType::Dictionary(..) = array.data_type() {
            let dict = array.as_any_dictionary();
            let values = dict.values();
            let ids = match known {
                Some(ids) if ids.of(values) => ids.clone(),
                _ => {
                    let ids = Arc::new(CustomerIds::new(values)?);
                    *known = Some(ids.clone());
                    ids
                }
            };
            return Ok(CustomerColumn::Dictionary {
                keys: Keys::of(dict),
                valid: dict.keys().logical_nulls(),
                ids,
            });
        }
        Ok(CustomerColumn::Text(TextColumn::new(array)?))
    }

    /// The row's customer id (`scratch` holds a converted text) and its
    /// dictionary key (`None` without one).
    #[inline]
    fn get<'a>(&'a self, row: usize, scratch: &'a mut Vec<u8>) -> (CustomerId<'a>, Option<u32>) {
        match self {
            CustomerColumn::Dictionary { keys, valid, ids } => {
                if valid.as_ref().is_some_and(|v| v.is_null(row)) {
                    return (CustomerId::Missing, None);
                }
                let key = keys.get(row);
                (ids.get(key), Some(key as u32))
            }
            CustomerColumn::Text(t) => match t.get(row) {
                Some(v) => (customer_id(trim(v), scratch), None),
                None => (CustomerId::Missing, None),
            },
        }
    }
}

/// What a row group's batches hand on to the next: the text date reader
/// (it keeps the last text read) and what was read of the customer,
/// invoice and country dictionaries.
pub struct Carry {
    dates: DateReader,
    customers: Option<Arc<CustomerIds>>,
    invoices: Option<Arc<DictTexts>>,
    countries: Option<Arc<DictTexts>>,
}

impl Carry {
    pub fn new(dates: DateReader) -> Carry {
        Carry {
            dates,
            customers: None,
            invoices: None,
            countries: None,
        }
    }
}

/// What one row holds.
pub struct Row<'a> {
    pub values: LineValues<'a>,
    /// The date's form, `None` when none counts.
    pub shape: Option<Shape>,
    /// The date's text (a text date column's).
    pub date_text: &'a [u8],
    pub country: &'a [u8],
    /// The invoice packed as a state keeps it.
    pub invoice: PackedInvoice,
    /// The customer's and the country's dictionary keys (`None` without).
    pub customer_key: Option<u32>,
    pub country_key: Option<u32>,
}

/// One batch's role columns, read row by row.
pub struct RoleColumns {
    invoice: KeyedText,
    quantity: QuantityColumn,
    price: PriceColumn,
    date: DateColumn,
    customer: CustomerColumn,
    country: Option<KeyedText>,
    scratch: Vec<u8>,
    customer_scratch: Vec<u8>,
    customers: Option<Arc<CustomerIds>>,
    invoices: Option<Arc<DictTexts>>,
    countries: Option<Arc<DictTexts>>,
}

/// One batch's role columns as read, to write a row's texts for a sample.
pub struct RowTexts {
    arrays: Vec<ArrayRef>,
    /// The field index of each of `arrays`.
    fields: Vec<usize>,
    field_count: usize,
    /// Where the quantity, price, date and customer are in `arrays`.
    at: [usize; 4],
}

impl RowTexts {
    /// The texts of row `row`.
    pub fn row(&self, row: usize) -> RowText<'_> {
        RowText { texts: self, row }
    }
}

impl RoleColumns {
    /// The columns of a batch of the role fields `fields` (sorted field
    /// indices, one array each), and their texts; `carry` is what the row
    /// group's previous batch handed on.
    pub fn new(
        arrays: &[ArrayRef],
        fields: &[usize],
        columns: &ColumnMap,
        carry: Carry,
    ) -> Result<(RoleColumns, RowTexts), String> {
        let Carry {
            dates,
            mut customers,
            mut invoices,
            mut countries,
        } = carry;
        let at = |field: usize| fields.binary_search(&field).expect("a role column is read");
        let array = |field: usize| &arrays[at(field)];
        let texts = RowTexts {
            arrays: arrays.to_vec(),
            fields: fields.to_vec(),
            field_count: columns.field_count,
            at: [
                at(columns.quantity),
                at(columns.price),
                at(columns.date),
                at(columns.customer),
            ],
        };
        let read = RoleColumns {
            invoice: KeyedText::new(array(columns.invoice), &mut invoices, true)?,
            quantity: QuantityColumn::new(array(columns.quantity))?,
            price: PriceColumn::new(array(columns.price))?,
            date: DateColumn::new(array(columns.date), dates)?,
            customer: CustomerColumn::new(array(columns.customer), &mut customers)?,
            country: columns
                .country
                .map(|c| KeyedText::new(array(c), &mut countries, false))
                .transpose()?,
            scratch: Vec::new(),
            customer_scratch: Vec::new(),
            customers,
            invoices,
            countries,
        };
        Ok((read, texts))
    }

    /// The values of row `row`, its date's form and text (for the date form
    /// counts) and its trimmed country (empty without a country column).
    #[inline]
    pub fn values(&mut self, row: usize) -> Row<'_> {
        let quantity = self.quantity.get(row);
        let price = self.price.get(row, &mut self.scratch);
        let (ts, shape, date_text) = self.date.get(row);
        let (customer, customer_key) = self.customer.get(row, &mut self.customer_scratch);
        let (invoice_text, invoice) = self.invoice.invoice(row);
        let (country, country_key) = self
            .country
            .as_ref()
            .map_or((&[][..], None), |c| c.get(row));
        Row {
            values: LineValues {
                invoice: invoice_text,
                quantity,
                price,
                ts,
                customer,
            },
            shape,
            date_text,
            country,
            invoice,
            customer_key,
            country_key,
        }
    }

    /// What the next batch of the row group takes on.
    pub fn into_carry(self) -> Carry {
        Carry {
            dates: match self.date {
                DateColumn::Text(_, reader) => reader,
                DateColumn::Seconds { .. } => DateReader::new(None),
            },
            customers: self.customers,
            invoices: self.invoices,
            countries: self.countries,
        }
    }
}

/// A Parquet row's texts: each value as [`render`] writes it.
pub struct RowText<'a> {
    texts: &'a RowTexts,
    row: usize,
}

impl LineText for RowText<'_> {
    /// The row as a CSV record of the file's fields: the role columns'
    /// values, quoted where needed, and the other fields empty.
    fn record(&self) -> Cow<'_, [u8]> {
        let mut out = Vec::new();
        let mut value = Vec::new();
        let mut next = 0;
        for (k, &field) in self.texts.fields.iter().enumerate() {
            while next < field {
                out.push(b',');
                next += 1;
            }
            render(&self.texts.arrays[k], self.row, &mut value);
            push_csv_field(&mut out, &value);
        }
        while next + 1 < self.texts.field_count {
            out.push(b',');
            next += 1;
        }
        Cow::Owned(out)
    }

    fn field(&self, role: FieldRole) -> Cow<'_, [u8]> {
        let k = self.texts.at[match role {
            FieldRole::Quantity => 0,
            FieldRole::Price => 1,
            FieldRole::Date => 2,
            FieldRole::Customer => 3,
        }];
        let mut value = Vec::new();
        render(&self.texts.arrays[k], self.row, &mut value);
        Cow::Owned(trim(&value).to_vec())
    }
}

/// Writes a value as one CSV field: quoted when it holds a comma, a quote or
/// a line break, or starts with a quote.
fn push_csv_field(out: &mut Vec<u8>, v: &[u8]) {
    if v.iter().any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.push(b'"');
        for &b in v {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_price(units: i128, scale: i8) -> Option<Money> {
        let t = arrow::array::Decimal128Array::from(vec![units])
            .with_precision_and_scale(38, scale)
            .unwrap();
        let s = arrow::util::display::array_value_to_string(&t, 0).unwrap();
        money::parse_price(s.as_bytes(), b'.')
    }

    #[test]
    fn decimals_read_as_their_text() {
        for (units, scale) in [
            (25_500, 4),
            (-25_500, 4),
            (7, 0),
            (1, 18),
            (15, 19),
            (-15, 19),
            (14, 19),
            (-25, 20),
            (123_456_789_012_345_678_901_234_567_890_123_456, 38),
            (-99_999_999_999_999_999_999_999_999_999_999_999, 18),
            (99_999_999_999_999_999_999, 0),
            (100_000_000_000_000_000_000, 0),
            (i64::MAX as i128, 4),
            (i64::MIN as i128, 4),
            (i64::MAX as i128 + 1, 4),
            (i64::MIN as i128 - 1, 0),
            (i64::MAX as i128, 0),
            (-3, 1),
        ] {
            assert_eq!(
                decimal_money(units, scale),
                text_price(units, scale),
                "{units} scale {scale}"
            );
        }
        assert_eq!(decimal_money(123, -2), Some(Money(12_300 * money::ONE)));
        assert_eq!(decimal_money(i128::MAX, -30), None);
    }

    #[test]
    fn the_timestamp_range_is_the_texts() {
        assert_eq!(date::format_timestamp(FIRST_SECOND), "0000-01-01 00:00:00");
        assert_eq!(date::format_timestamp(LAST_SECOND), "9999-12-31 23:59:59");
        assert!(date::parse_auto(date::format_timestamp(FIRST_SECOND - 1).as_bytes()).is_none());
        assert!(date::parse_auto(date::format_timestamp(LAST_SECOND + 1).as_bytes()).is_none());
        let mut out = Vec::new();
        push_timestamp(i64::MAX, &mut out);
        assert_eq!(out, i64::MAX.to_string().as_bytes());
    }
}
