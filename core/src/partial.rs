//! The partial RFM state of some part of the input: per customer the first and
//! last purchase, the exact revenue, the set of invoices and the lines per
//! country; plus the [`LineLedger`]. Merging is associative and commutative, so
//! the order in which chunks finish can never change a result. A state converts
//! to and from an Arrow [`RecordBatch`] to travel between processes; a state of
//! no customer (a chunk of only returns) is a valid state like any other.
//!
//! Customers are keyed by their normalised id's UTF-8 text (see
//! [`crate::parse::customer_id`]), so the byte forms of one text merge into one
//! customer whichever chunks or files they come from.

use std::sync::Arc;

use ahash::AHashMap;
use arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, Decimal128Array, Int64Array, ListBuilder, RecordBatch,
    UInt64Builder,
};
use arrow::datatypes::{DataType, Decimal128Type, Field, Int64Type, Schema, UInt64Type};

use crate::error::{Error, Result};
use crate::ledger::LineLedger;
use crate::money::{self, Money};
use crate::parse::is_customer_text;

/// An invoice number packed for fast equality: values of up to 15 bytes fit in
/// a `u128` together with their length; longer ones are kept as bytes.
type InvoiceKey = u128;

#[inline]
fn pack_invoice(inv: &[u8]) -> Option<InvoiceKey> {
    if inv.len() > 15 {
        return None;
    }
    let mut key = (inv.len() as u128) << 120;
    for (i, &b) in inv.iter().enumerate() {
        key |= (b as u128) << (8 * (14 - i));
    }
    Some(key)
}

#[cfg(test)]
fn unpack_invoice(key: InvoiceKey) -> Vec<u8> {
    unpack_invoice_into(key, &mut [0u8; 15]).to_vec()
}

/// The bytes of a packed invoice, written into `buf`.
#[inline]
fn unpack_invoice_into(key: InvoiceKey, buf: &mut [u8; 15]) -> &[u8] {
    let len = (key >> 120) as usize;
    for (i, b) in buf.iter_mut().enumerate().take(len) {
        *b = (key >> (8 * (14 - i))) as u8;
    }
    &buf[..len]
}

/// One customer's accumulated purchases.
#[derive(Clone, Debug)]
pub struct CustomerAcc {
    pub id: Box<[u8]>,
    pub first_ts: i64,
    pub last_ts: i64,
    pub monetary: Money,
    invoices: Vec<InvoiceKey>,
    long_invoices: Vec<Box<[u8]>>,
    last_invoice: InvoiceKey,
    /// (index into the state's countries, purchase lines).
    countries: Vec<(u32, u64)>,
}

impl CustomerAcc {
    fn new(id: &[u8]) -> CustomerAcc {
        CustomerAcc {
            id: id.into(),
            first_ts: i64::MAX,
            last_ts: i64::MIN,
            monetary: Money::ZERO,
            invoices: Vec::new(),
            long_invoices: Vec::new(),
            last_invoice: 0,
            countries: Vec::new(),
        }
    }

    /// Sorts and deduplicates the invoice sets.
    fn normalise(&mut self) {
        self.invoices.sort_unstable();
        self.invoices.dedup();
        self.long_invoices.sort_unstable();
        self.long_invoices.dedup();
        self.last_invoice = 0;
    }

    /// Distinct invoices (valid after [`PartialState::seal`]).
    pub fn frequency(&self) -> u64 {
        (self.invoices.len() + self.long_invoices.len()) as u64
    }

    #[inline]
    fn add_country(&mut self, country: u32, lines: u64) {
        for c in self.countries.iter_mut() {
            if c.0 == country {
                c.1 += lines;
                return;
            }
        }
        self.countries.push((country, lines));
    }
}

/// Partial RFM state: mergeable, serialisable, deterministic.
#[derive(Clone, Debug, Default)]
pub struct PartialState {
    customers: Vec<CustomerAcc>,
    index: AHashMap<Box<[u8]>, u32>,
    countries: Vec<Box<[u8]>>,
    country_index: AHashMap<Box<[u8]>, u32>,
    pub ledger: LineLedger,
    /// The smallest id (bytes) of a customer whose revenue left the exact
    /// range, reported when the state is finished.
    overflow: Option<Box<[u8]>>,
}

impl PartialState {
    pub fn new() -> PartialState {
        PartialState::default()
    }

    pub fn customer_count(&self) -> usize {
        self.customers.len()
    }

    /// The id of a customer whose revenue left the exact range (the smallest
    /// such id, so every chunking names the same one).
    pub fn overflowed(&self) -> Option<&[u8]> {
        self.overflow.as_deref()
    }

    /// Records that `id`'s revenue left the exact range.
    fn note_overflow(overflow: &mut Option<Box<[u8]>>, id: &[u8]) {
        if overflow.as_deref().is_none_or(|o| id < o) {
            *overflow = Some(id.into());
        }
    }

    fn customer_slot(&mut self, id: &[u8]) -> usize {
        if let Some(&i) = self.index.get(id) {
            return i as usize;
        }
        let i = self.customers.len();
        self.customers.push(CustomerAcc::new(id));
        self.index.insert(id.into(), i as u32);
        i
    }

    fn country_slot(&mut self, name: &[u8]) -> u32 {
        if let Some(&i) = self.country_index.get(name) {
            return i;
        }
        let i = self.countries.len() as u32;
        self.countries.push(name.into());
        self.country_index.insert(name.into(), i);
        i
    }

    /// Folds a purchase batch (see [`crate::parse::purchase_schema`]) into the state.
    pub fn absorb(&mut self, batch: &RecordBatch) {
        let customer = batch.column(0).as_binary::<i32>();
        let invoice = batch.column(1).as_binary::<i32>();
        let ts = batch.column(2).as_primitive::<Int64Type>().values();
        let amount = batch.column(3).as_primitive::<Decimal128Type>().values();
        let country = batch.column(4).as_binary::<i32>();
        let mut last_customer: Option<(&[u8], usize)> = None;
        let mut last_country: Option<(&[u8], u32)> = None;
        for row in 0..batch.num_rows() {
            let id = customer.value(row);
            let slot = match last_customer {
                Some((prev, slot)) if prev == id => slot,
                _ => {
                    let slot = self.customer_slot(id);
                    last_customer = Some((id, slot));
                    slot
                }
            };
            let name = country.value(row);
            let country_slot = match last_country {
                Some((prev, slot)) if prev == name => slot,
                _ => {
                    let slot = self.country_slot(name);
                    last_country = Some((name, slot));
                    slot
                }
            };
            let acc = &mut self.customers[slot];
            let t = ts[row];
            acc.first_ts = acc.first_ts.min(t);
            acc.last_ts = acc.last_ts.max(t);
            match acc.monetary.checked_add(Money(amount[row])) {
                Some(m) => acc.monetary = m,
                None => Self::note_overflow(&mut self.overflow, &acc.id),
            }
            let inv = invoice.value(row);
            match pack_invoice(inv) {
                Some(key) => {
                    if key != acc.last_invoice {
                        acc.invoices.push(key);
                        acc.last_invoice = key;
                    }
                }
                None => acc.long_invoices.push(inv.into()),
            }
            acc.add_country(country_slot, 1);
        }
    }

    /// Sorts and deduplicates every invoice set; call before reading frequencies
    /// and after a series of [`absorb`](Self::absorb) calls to bound memory.
    pub fn seal(&mut self) {
        for c in &mut self.customers {
            c.normalise();
        }
    }

    /// Merges another state into this one.
    pub fn merge(&mut self, other: PartialState) {
        if let Some(id) = &other.overflow {
            Self::note_overflow(&mut self.overflow, id);
        }
        self.ledger.merge(other.ledger);
        if self.customers.is_empty() && self.countries.is_empty() {
            self.customers = other.customers;
            self.index = other.index;
            self.countries = other.countries;
            self.country_index = other.country_index;
            return;
        }
        let remap: Vec<u32> = other
            .countries
            .iter()
            .map(|name| self.country_slot(name))
            .collect();
        for mut theirs in other.customers {
            for c in theirs.countries.iter_mut() {
                c.0 = remap[c.0 as usize];
            }
            match self.index.get(&theirs.id) {
                None => {
                    self.index
                        .insert(theirs.id.clone(), self.customers.len() as u32);
                    self.customers.push(theirs);
                }
                Some(&slot) => {
                    let ours = &mut self.customers[slot as usize];
                    ours.first_ts = ours.first_ts.min(theirs.first_ts);
                    ours.last_ts = ours.last_ts.max(theirs.last_ts);
                    match ours.monetary.checked_add(theirs.monetary) {
                        Some(m) => ours.monetary = m,
                        None => Self::note_overflow(&mut self.overflow, &ours.id),
                    }
                    ours.invoices.append(&mut theirs.invoices);
                    ours.long_invoices.append(&mut theirs.long_invoices);
                    ours.normalise();
                    for (c, n) in theirs.countries {
                        ours.add_country(c, n);
                    }
                }
            }
        }
    }

    /// The customers (frequencies are exact after [`seal`](Self::seal)).
    pub fn customers(&self) -> &[CustomerAcc] {
        &self.customers
    }

    /// The customer's most frequent country (ties: the smallest bytes).
    pub fn country_of(&self, acc: &CustomerAcc) -> &[u8] {
        let mut best: Option<(&[u8], u64)> = None;
        for &(c, n) in &acc.countries {
            let name: &[u8] = &self.countries[c as usize];
            best = match best {
                Some((bn, bc)) if bc > n || (bc == n && bn <= name) => Some((bn, bc)),
                _ => Some((name, n)),
            };
        }
        best.map(|b| b.0).unwrap_or(b"")
    }

    /// Schema of a state as an Arrow batch.
    pub fn schema() -> Schema {
        let list = |name: &str, item: DataType| {
            Field::new(
                name,
                DataType::List(Arc::new(Field::new("item", item, false))),
                false,
            )
        };
        Schema::new(vec![
            Field::new("customer_id", DataType::Binary, false),
            Field::new("first_ts", DataType::Int64, false),
            Field::new("last_ts", DataType::Int64, false),
            Field::new(
                "monetary",
                DataType::Decimal128(38, money::SCALE as i8),
                false,
            ),
            list("invoices", DataType::Binary),
            list("countries", DataType::Binary),
            list("country_lines", DataType::UInt64),
        ])
    }

    /// Key of the schema metadata entry holding the ledger (JSON).
    pub const LEDGER_KEY: &'static str = "rfm.ledger";
    /// Key of the schema metadata entry naming the customer whose revenue
    /// overflowed (absent when none did).
    pub const OVERFLOW_KEY: &'static str = "rfm.overflow_customer";

    /// The state as one Arrow batch; the ledger travels in the schema metadata.
    pub fn to_record_batch(&self) -> RecordBatch {
        let n = self.customers.len();
        let mut ids = BinaryBuilder::with_capacity(n, n * 8);
        let mut invoices = ListBuilder::new(BinaryBuilder::new()).with_field(Arc::new(Field::new(
            "item",
            DataType::Binary,
            false,
        )));
        let mut countries = ListBuilder::new(BinaryBuilder::new())
            .with_field(Arc::new(Field::new("item", DataType::Binary, false)));
        let mut country_lines = ListBuilder::new(UInt64Builder::new())
            .with_field(Arc::new(Field::new("item", DataType::UInt64, false)));
        let mut first = Vec::with_capacity(n);
        let mut last = Vec::with_capacity(n);
        let mut monetary = Vec::with_capacity(n);
        for c in &self.customers {
            ids.append_value(&c.id);
            first.push(c.first_ts);
            last.push(c.last_ts);
            monetary.push(c.monetary.0);
            let mut buf = [0u8; 15];
            for &k in &c.invoices {
                invoices
                    .values()
                    .append_value(unpack_invoice_into(k, &mut buf));
            }
            for inv in &c.long_invoices {
                invoices.values().append_value(inv);
            }
            invoices.append(true);
            for &(country, lines) in &c.countries {
                countries
                    .values()
                    .append_value(&self.countries[country as usize]);
                country_lines.values().append_value(lines);
            }
            countries.append(true);
            country_lines.append(true);
        }
        let mut metadata = std::collections::HashMap::new();
        metadata.insert(
            Self::LEDGER_KEY.to_string(),
            serde_json::to_string(&self.ledger).expect("ledger serialises"),
        );
        if let Some(id) = &self.overflow {
            metadata.insert(
                Self::OVERFLOW_KEY.to_string(),
                String::from_utf8_lossy(id).into_owned(),
            );
        }
        let schema = Arc::new(Self::schema().with_metadata(metadata));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(ids.finish()),
            Arc::new(Int64Array::from(first)),
            Arc::new(Int64Array::from(last)),
            Arc::new(
                Decimal128Array::from(monetary)
                    .with_precision_and_scale(38, money::SCALE as i8)
                    .expect("valid decimal type"),
            ),
            Arc::new(invoices.finish()),
            Arc::new(countries.finish()),
            Arc::new(country_lines.finish()),
        ];
        RecordBatch::try_new(schema, columns).expect("state batch matches its schema")
    }

    /// Rebuilds a state from [`to_record_batch`](Self::to_record_batch)'s
    /// output: the stream's `schema` (it carries the ledger) and its batches,
    /// possibly split into several by the transport, or none at all for a state
    /// of no customer (a Flight stream of zero rows holds only its schema).
    pub fn from_record_batches(schema: &Schema, batches: &[RecordBatch]) -> Result<PartialState> {
        let mut state = PartialState::new();
        let expected = Self::schema();
        if schema.fields() != expected.fields() {
            return Err(Error::BadState(format!(
                "unexpected schema {:?}",
                schema.fields()
            )));
        }
        let meta = schema.metadata();
        let ledger = meta.get(Self::LEDGER_KEY).ok_or_else(|| {
            Error::BadState(format!("schema metadata has no {}", Self::LEDGER_KEY))
        })?;
        state.ledger = serde_json::from_str(ledger)
            .map_err(|e| Error::BadState(format!("ledger is not valid JSON: {e}")))?;
        state.overflow = meta.get(Self::OVERFLOW_KEY).map(|id| id.as_bytes().into());
        for batch in batches {
            let schema = batch.schema();
            if schema.fields() != expected.fields() {
                return Err(Error::BadState(format!(
                    "unexpected schema {:?}",
                    schema.fields()
                )));
            }
            let ids = batch.column(0).as_binary::<i32>();
            let first = batch.column(1).as_primitive::<Int64Type>();
            let last = batch.column(2).as_primitive::<Int64Type>();
            let monetary = batch.column(3).as_primitive::<Decimal128Type>();
            let invoices = batch.column(4).as_list::<i32>();
            let countries = batch.column(5).as_list::<i32>();
            let lines = batch.column(6).as_list::<i32>();
            for row in 0..batch.num_rows() {
                let id = ids.value(row);
                if state.index.contains_key(id) {
                    return Err(Error::BadState("duplicate customer id".into()));
                }
                if !is_customer_text(id) {
                    return Err(Error::BadState(format!(
                        "customer id {:?} is not normalised text (UTF-8, no control character)",
                        String::from_utf8_lossy(id)
                    )));
                }
                let mut acc = CustomerAcc::new(id);
                acc.first_ts = first.value(row);
                acc.last_ts = last.value(row);
                acc.monetary = Money(monetary.value(row));
                if !acc.monetary.in_range() {
                    return Err(Error::BadState(format!(
                        "customer {:?}: monetary is not {}",
                        String::from_utf8_lossy(id),
                        money::RANGE_TEXT
                    )));
                }
                let inv = invoices.value(row);
                let inv = inv.as_binary::<i32>();
                for i in 0..inv.len() {
                    let v = inv.value(i);
                    match pack_invoice(v) {
                        Some(k) => acc.invoices.push(k),
                        None => acc.long_invoices.push(v.into()),
                    }
                }
                let names = countries.value(row);
                let names = names.as_binary::<i32>();
                let counts = lines.value(row);
                let counts = counts.as_primitive::<UInt64Type>();
                if names.len() != counts.len() {
                    return Err(Error::BadState(
                        "countries and country_lines differ in length".into(),
                    ));
                }
                for i in 0..names.len() {
                    let slot = state.country_slot(names.value(i));
                    acc.add_country(slot, counts.value(i));
                }
                acc.normalise();
                state
                    .index
                    .insert(acc.id.clone(), state.customers.len() as u32);
                state.customers.push(acc);
            }
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Reason;
    use arrow::array::BinaryArray;

    /// A state of one purchase line per `(customer id, amount in units)`.
    fn state_of(lines: &[(&[u8], i128)]) -> PartialState {
        let ids: BinaryArray = lines.iter().map(|l| Some(l.0)).collect();
        let invoices: BinaryArray = lines.iter().map(|_| Some(&b"536365"[..])).collect();
        let countries: BinaryArray = lines.iter().map(|_| Some(&b"France"[..])).collect();
        let amounts = Decimal128Array::from(lines.iter().map(|l| l.1).collect::<Vec<_>>())
            .with_precision_and_scale(38, money::SCALE as i8)
            .unwrap();
        let batch = RecordBatch::try_new(
            crate::parse::purchase_schema(),
            vec![
                Arc::new(ids),
                Arc::new(invoices),
                Arc::new(Int64Array::from(vec![0; lines.len()])),
                Arc::new(amounts),
                Arc::new(countries),
            ],
        )
        .unwrap();
        let mut state = PartialState::new();
        state.absorb(&batch);
        state.ledger.lines_read = lines.len() as u64;
        state.ledger.purchase_lines = lines.len() as u64;
        state.seal();
        state
    }

    /// The state through Arrow and back, as Flight carries it: a batch of
    /// zero rows is not sent, only the schema.
    fn over_the_wire(state: &PartialState) -> Result<PartialState> {
        let batch = state.to_record_batch();
        let batches = if batch.num_rows() == 0 {
            Vec::new()
        } else {
            vec![batch.clone()]
        };
        PartialState::from_record_batches(&batch.schema(), &batches)
    }

    #[test]
    fn a_state_of_no_customer_travels_as_its_schema_and_merges() {
        let mut returns = PartialState::new();
        returns.ledger.lines_read = 1;
        returns.ledger.exclude(Reason::Cancellation);
        let back = over_the_wire(&returns).unwrap();
        assert_eq!(back.customer_count(), 0);
        assert_eq!(back.ledger, returns.ledger);
        let mut merged = over_the_wire(&state_of(&[(b"17850", money::ONE)])).unwrap();
        merged.merge(back);
        assert_eq!(merged.customer_count(), 1);
        assert_eq!(merged.ledger.lines_read, 2);
        assert_eq!(merged.ledger.excluded.cancellation, 1);
    }

    #[test]
    fn a_state_with_ids_that_are_not_normalised_text_is_refused() {
        for id in [&b"Ren\xe9"[..], b"12\x0046", b"\x1b"] {
            let err = over_the_wire(&state_of(&[(id, money::ONE)])).unwrap_err();
            assert!(err.to_string().contains("not normalised text"), "{err}");
        }
        // A monetary beyond the bound, which `Decimal128(38, 18)` cannot hold.
        let batch = state_of(&[(b"A1", money::ONE)]).to_record_batch();
        let mut columns = batch.columns().to_vec();
        columns[3] = Arc::new(
            Decimal128Array::from(vec![money::MAX_UNITS + 1])
                .with_precision_and_scale(38, money::SCALE as i8)
                .unwrap(),
        );
        let batch = RecordBatch::try_new(batch.schema(), columns).unwrap();
        let err = PartialState::from_record_batches(&batch.schema(), &[batch]).unwrap_err();
        assert!(
            err.to_string().contains("monetary is not below 10^20"),
            "{err}"
        );
    }

    #[test]
    fn overflow_names_the_smallest_customer_whatever_the_merge_order() {
        let near = money::MAX_UNITS / 2 + 1;
        let a = || state_of(&[(b"B2", near), (b"A1", near)]);
        let b = || state_of(&[(b"A1", near), (b"B2", near), (b"C3", 1)]);
        let mut ab = a();
        ab.merge(b());
        let mut ba = over_the_wire(&b()).unwrap();
        ba.merge(over_the_wire(&a()).unwrap());
        assert_eq!(ab.overflowed(), Some(&b"A1"[..]));
        assert_eq!(ba.overflowed(), Some(&b"A1"[..]));
        assert_eq!(over_the_wire(&ab).unwrap().overflowed(), Some(&b"A1"[..]));
        assert_eq!(state_of(&[(b"C3", near)]).overflowed(), None);
    }

    #[test]
    fn invoice_keys_round_trip_and_differ_by_length() {
        for inv in [
            &b"536365"[..],
            b"A563185",
            b"",
            b"0",
            b"00",
            b"123456789012345",
        ] {
            assert_eq!(unpack_invoice(pack_invoice(inv).unwrap()), inv);
        }
        assert_ne!(pack_invoice(b"0"), pack_invoice(b"00"));
        assert_eq!(pack_invoice(b"1234567890123456"), None);
    }
}
