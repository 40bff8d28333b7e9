//! The state in the form a cache entry keeps it: the state's own columns as
//! little-endian arrays, customers sorted by id. A run decodes an entry into
//! a [`PartialState`] that keeps the entry's bytes ([`Base`]): each
//! customer's figures, first invoice and first country go into its row,
//! while its further invoices and countries stay in the bytes (a base row)
//! until a merge touches the customer. A run that adds a day to a year
//! reads the year's lists only for the customers the day brings back.
//!
//! Layout (every integer little-endian; `ends` are cumulative ends, one per
//! row, of the values that follow):
//!
//! ```text
//! ledger      u64 length, JSON
//! overflow    u8 (0 none, 1 some), then u64 length and the id's bytes
//! countries   u64 count c, c x u64 name ends, the names' bytes
//! customers   u64 count n, n x u64 id ends, the ids' bytes (sorted, distinct)
//!             n x i64 first, n x i64 last, n x i128 monetary
//! invoices    n x u64 ends, u128 packed keys (per customer sorted, distinct)
//! long        n x u64 ends, u64 byte ends per long invoice, the bytes
//!             (per customer sorted, distinct)
//! countries   n x u64 ends, u32 country index per value, u64 lines per value
//! ```
//!
//! The decoder trusts nothing: every length and offset is bound-checked
//! against the payload, ids must be normalised text in increasing order,
//! invoice sets sorted and distinct, country indexes in range and distinct
//! per customer, monetary values in range, and the payload must end where
//! the layout does. A payload that breaks any of it is an error (never a
//! panic), which the cache reports as an entry that cannot be decoded.

use std::ops::Range;
use std::sync::Arc;

use ahash::AHashMap;
use hashbrown::hash_table::HashTable;

use super::{
    id_in, prefetch, strictly_increasing, CustomerAcc, InvoiceKey, PartialState, Spill, BASE_ROW,
    NONE,
};
use crate::error::{Error, Result};
use crate::ledger::LineLedger;
use crate::mapped::FileBytes;
use crate::money::{self, Money};
use crate::parse::is_customer_text;

/// Spare room a decoded state keeps for the customers a run merges into it
/// (a quarter more), so that its first merge does not grow its columns.
fn headroom(n: usize) -> usize {
    n + n / 4 + 16
}

/// Spare room in a decoded customer's invoice list for the invoices a
/// merge adds to it (the next file's few invoices of a returning customer).
const INVOICE_SLACK: usize = 2;

impl PartialState {
    /// Appends the state's entry payload with `ledger` in place of its own
    /// (a file's entry keeps its ledger numbered apart from the run's).
    pub fn encode_entry(&self, ledger: &LineLedger, out: &mut Vec<u8>) {
        let ledger = serde_json::to_vec(ledger).expect("a ledger serialises");
        put_bytes(out, &ledger);
        match &self.overflow {
            Some(id) => {
                out.push(1);
                put_bytes(out, id);
            }
            None => out.push(0),
        }
        put_u64(out, self.countries.len() as u64);
        let mut end = 0u64;
        for name in &self.countries {
            end += name.len() as u64;
            put_u64(out, end);
        }
        for name in &self.countries {
            out.extend_from_slice(name);
        }

        let order = self.slots_by_id();
        let customers = || {
            order
                .iter()
                .map(|&s| (s as usize, &self.customers[s as usize]))
        };
        put_u64(out, order.len() as u64);
        let mut end = 0u64;
        for &s in &order {
            end += self.id(s as usize).len() as u64;
            put_u64(out, end);
        }
        for &s in &order {
            out.extend_from_slice(self.id(s as usize));
        }
        for (_, c) in customers() {
            out.extend_from_slice(&c.first_ts.to_le_bytes());
        }
        for (_, c) in customers() {
            out.extend_from_slice(&c.last_ts.to_le_bytes());
        }
        for (_, c) in customers() {
            out.extend_from_slice(&c.monetary.0.to_le_bytes());
        }

        // Each customer's lists in one pass, column by column: the invoice
        // sets sorted and distinct (the inline invoice among the others), as
        // `seal` leaves them, and the countries (the inline one first). The
        // invoice keys, the bulk of an entry, go straight into `out` after
        // room for their ends, filled in as they come.
        let n = order.len();
        let ends_at = out.len();
        out.resize(ends_at + n * 8, 0);
        crate::huge_pages::reserve(out, self.invoice_bound() * 16 + n * 8 * 3);
        let mut long_ends = Vec::with_capacity(n);
        let (mut long_byte_ends, mut long_bytes) = (Vec::new(), Vec::new());
        let mut country_ends = Vec::with_capacity(n);
        let mut country_indexes: Vec<u8> = Vec::with_capacity(n * 4);
        let mut country_lines: Vec<u8> = Vec::with_capacity(n * 8);
        let (mut shorts, mut longs, mut lists) = (0u64, 0u64, 0u64);
        let mut scratch: Vec<InvoiceKey> = Vec::new();
        let mut countries: Vec<(u32, u64)> = Vec::new();
        let base = self.spills.base.as_deref();
        for (i, (_, c)) in customers().enumerate() {
            scratch.clear();
            countries.clear();
            // Borrows this customer's lists (no allocation for most, which
            // have no long invoice).
            let mut long_scratch: Vec<&[u8]> = Vec::new();
            scratch.extend(c.inline_invoice());
            countries.extend((c.country != NONE).then_some((c.country, c.country_lines)));
            if let Some(row) = super::base_row(c.spill) {
                // Read where the entry it came from keeps them.
                let base = base.expect("a customer of a base row belongs to a decoded state");
                scratch.extend(base.invoices(row).skip(1));
                long_scratch.extend(base.long_invoices(row));
                countries.extend(base.further_countries(row));
            } else if c.spill != NONE {
                let spill = &self.spills[c.spill as usize];
                if let Some(row) = spill.base {
                    let base = base.expect("a spill beside a base row belongs to a decoded state");
                    scratch.extend(base.invoices(row as usize).skip(1));
                }
                scratch.extend_from_slice(&spill.invoices);
                long_scratch.extend(spill.long_invoices().iter().map(|b| &b[..]));
                countries.extend_from_slice(spill.countries());
            }
            if !strictly_increasing(&long_scratch) {
                long_scratch.sort_unstable();
                long_scratch.dedup();
            }
            if !strictly_increasing(&scratch) {
                scratch.sort_unstable();
                scratch.dedup();
            }
            shorts += scratch.len() as u64;
            out[ends_at + i * 8..ends_at + (i + 1) * 8].copy_from_slice(&shorts.to_le_bytes());
            for k in &scratch {
                out.extend_from_slice(&k.to_le_bytes());
            }
            longs += long_scratch.len() as u64;
            long_ends.push(longs);
            for inv in &long_scratch {
                long_bytes.extend_from_slice(inv);
                long_byte_ends.push(long_bytes.len() as u64);
            }
            for &(country, lines) in &countries {
                lists += 1;
                country_indexes.extend_from_slice(&country.to_le_bytes());
                country_lines.extend_from_slice(&lines.to_le_bytes());
            }
            country_ends.push(lists);
        }
        let put_all = |out: &mut Vec<u8>, values: &[u64]| {
            for &v in values {
                put_u64(out, v);
            }
        };
        put_all(out, &long_ends);
        put_all(out, &long_byte_ends);
        out.extend_from_slice(&long_bytes);
        put_all(out, &country_ends);
        out.extend_from_slice(&country_indexes);
        out.extend_from_slice(&country_lines);
    }

    /// At least as many invoices as the state's customers hold in all (the
    /// inline ones, those of the spills and of the base rows): room for an
    /// entry's invoice column.
    fn invoice_bound(&self) -> usize {
        let base = self.spills.base.as_deref();
        self.customers
            .iter()
            .map(|c| {
                let further = if let Some(row) = super::base_row(c.spill) {
                    base.map_or(0, |b| b.further_invoices(row) as usize)
                } else if c.spill != NONE {
                    let spill = &self.spills[c.spill as usize];
                    let beside = spill
                        .base
                        .map_or(0, |row| base.map_or(0, |b| b.short_count(row as usize)));
                    beside + spill.invoices.len() + spill.long_invoices().len()
                } else {
                    0
                };
                c.has_invoice() as usize + further
            })
            .sum()
    }

    /// The state of an entry payload made by
    /// [`encode_entry`](Self::encode_entry), with room for a quarter more
    /// customers; any inconsistency is an error naming it.
    pub fn decode_entry(payload: &[u8]) -> Result<PartialState> {
        Self::decode_entry_at(payload.to_vec().into(), 0)
    }

    /// [`decode_entry`](Self::decode_entry) of the payload at `at` in an
    /// entry's `bytes`, which the state keeps: every list is checked, but
    /// the customers' further invoices and countries stay in `bytes` (base
    /// rows) until a merge touches them.
    pub fn decode_entry_at(bytes: FileBytes, at: usize) -> Result<PartialState> {
        let payload = bytes
            .get(at..)
            .ok_or_else(|| bad(format!("payload at {at} beyond the entry")))?;
        let (mut state, layout) = Self::decode_payload(payload, at)?;
        state.spills.base = Some(Arc::new(Base { bytes, layout }));
        Ok(state)
    }

    /// The state of `payload` (at `at` in its entry), its base rows not yet
    /// attached, and where they are in the entry.
    fn decode_payload(payload: &[u8], at: usize) -> Result<(PartialState, Layout)> {
        let mut input = Input { bytes: payload };
        let mut state = PartialState::new();
        let ledger = input.bytes_with_len("ledger")?;
        state.ledger = serde_json::from_slice(ledger)
            .map_err(|e| bad(format!("ledger is not valid JSON: {e}")))?;
        state.overflow = match input.take(1, "overflow flag")?[0] {
            0 => None,
            1 => Some(input.bytes_with_len("overflow id")?.into()),
            other => return Err(bad(format!("overflow flag {other}"))),
        };

        let c = input.count(8, "countries")?;
        let name_ends = input.ends(c, "country name ends")?;
        let names = input.take(last(&name_ends), "country names")?;
        state.countries.reserve(c);
        state.country_index = AHashMap::with_capacity(c);
        let mut start = 0;
        for (i, &end) in name_ends.iter().enumerate() {
            let name: Box<[u8]> = names[start..end].into();
            start = end;
            if state.country_index.insert(name.clone(), i as u32).is_some() {
                return Err(bad("a country is listed twice".into()));
            }
            state.countries.push(name);
        }

        let n = input.count(8, "customers")?;
        if n >= (BASE_ROW - 1) as usize {
            return Err(bad(format!("{n} customers: more than a state holds")));
        }
        let id_ends = input.ends(n, "id ends")?;
        let ids = input.take(last(&id_ends), "ids")?;
        let first = input.take(n * 8, "first purchases")?;
        let last_ts = input.take(n * 8, "last purchases")?;
        let monetary = input.take(n * 16, "monetary")?;
        let invoice_ends = input.ends(n, "invoice ends")?;
        let invoices = input.take(last(&invoice_ends) * 16, "invoices")?;
        let long_ends = input.ends(n, "long invoice ends")?;
        let long_byte_ends = input.ends(last(&long_ends), "long invoice byte ends")?;
        let long_bytes = input.take(last(&long_byte_ends), "long invoices")?;
        let country_ends = input.ends(n, "country ends")?;
        let lists = last(&country_ends);
        let country_values = input.take(lists * 4, "customer countries")?;
        let country_lines = input.take(lists * 8, "country lines")?;
        if !input.bytes.is_empty() {
            return Err(bad(format!(
                "{} bytes after the last column",
                input.bytes.len()
            )));
        }

        let columns = Columns {
            country_count: c,
            id_ends: &id_ends,
            ids,
            first,
            last_ts,
            monetary,
            invoice_ends: &invoice_ends,
            invoices,
            long_ends: &long_ends,
            long_byte_ends: &long_byte_ends,
            long_bytes,
            country_ends: &country_ends,
            country_values,
            country_lines,
        };
        // The index over the ids and the customers' rows are made side by
        // side when there are many (a set entry read while a run computes
        // its new files); an error of the ids is reported first either way.
        let hasher = &state.hasher;
        let (index, rows) = if n >= PARALLEL_DECODE_MIN {
            rayon::join(|| columns.index(hasher), || columns.rows())
        } else {
            (columns.index(hasher), columns.rows())
        };
        (state.ids, state.id_ends, state.index) = index?;
        state.customers = rows?;
        state.sorted_prefix = n;
        // Where the lists are in the entry (`payload` starts at `at`).
        let in_entry = |column: &[u8]| {
            let start = at + (column.as_ptr() as usize - payload.as_ptr() as usize);
            start..start + column.len()
        };
        let layout = Layout {
            invoices: in_entry(invoices),
            long_bytes: in_entry(long_bytes),
            country_values: in_entry(country_values),
            country_lines: in_entry(country_lines),
            invoice_ends,
            long_ends,
            long_byte_ends,
            country_ends,
        };
        Ok((state, layout))
    }
}

/// Where a decoded entry's per-customer lists are in its bytes: the ends
/// (one per customer, cumulative) and the byte ranges of the values.
#[derive(Debug)]
struct Layout {
    invoice_ends: Vec<usize>,
    invoices: Range<usize>,
    long_ends: Vec<usize>,
    long_byte_ends: Vec<usize>,
    long_bytes: Range<usize>,
    country_ends: Vec<usize>,
    country_values: Range<usize>,
    country_lines: Range<usize>,
}

/// A decoded cache entry's bytes, checked, which hold the further invoices
/// and countries of the customers still marked as its rows (see
/// [`BASE_ROW`]): row `i` is the entry's customer `i`, whose first invoice
/// and first country are inline in its [`CustomerAcc`].
pub(super) struct Base {
    bytes: FileBytes,
    layout: Layout,
}

impl std::fmt::Debug for Base {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Base")
            .field("bytes", &self.bytes.len())
            .field("rows", &self.layout.invoice_ends.len())
            .finish()
    }
}

/// The values of row `row` of a column of cumulative `ends`.
#[inline]
fn span(ends: &[usize], row: usize) -> Range<usize> {
    let start = if row == 0 { 0 } else { ends[row - 1] };
    start..ends[row]
}

impl Base {
    /// The mapped entry, when it was cut short since it was mapped.
    pub(super) fn cut_short(&self) -> Option<&std::path::Path> {
        self.bytes.cut_short()
    }

    /// Row `row`'s invoices beyond its first (the inline one): the packed
    /// ones after the first, then the long ones.
    pub(super) fn further_invoices(&self, row: usize) -> u64 {
        let l = &self.layout;
        (span(&l.invoice_ends, row).len().saturating_sub(1) + span(&l.long_ends, row).len()) as u64
    }

    /// Row `row`'s packed invoices, its first (the inline one) among them.
    pub(super) fn invoices(&self, row: usize) -> impl Iterator<Item = InvoiceKey> + '_ {
        let invoices = &self.bytes[self.layout.invoices.clone()];
        span(&self.layout.invoice_ends, row).map(move |k| u128::from_le_bytes(array(invoices, k)))
    }

    /// Row `row`'s invoices longer than 15 bytes.
    pub(super) fn long_invoices(&self, row: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let l = &self.layout;
        let long_bytes = &self.bytes[l.long_bytes.clone()];
        span(&l.long_ends, row).map(move |k| &long_bytes[span(&l.long_byte_ends, k)])
    }

    /// Row `row`'s countries after the first (the inline one), with their
    /// lines.
    pub(super) fn further_countries(&self, row: usize) -> impl Iterator<Item = (u32, u64)> + '_ {
        let l = &self.layout;
        let (values, lines) = (
            &self.bytes[l.country_values.clone()],
            &self.bytes[l.country_lines.clone()],
        );
        span(&l.country_ends, row).skip(1).map(move |k| {
            (
                u32::from_le_bytes(array(values, k)),
                u64::from_le_bytes(array(lines, k)),
            )
        })
    }

    /// Asks the CPU for row `row`'s list ends (a hint, see [`prefetch`]).
    #[inline]
    pub(super) fn prefetch_ends(&self, row: usize) {
        let l = &self.layout;
        for ends in [&l.invoice_ends, &l.country_ends, &l.long_ends] {
            if let Some(end) = ends.get(row) {
                prefetch(end);
            }
        }
    }

    /// Asks the CPU for the start of row `row`'s invoices and countries
    /// (after [`prefetch_ends`](Self::prefetch_ends)).
    #[inline]
    pub(super) fn prefetch_lists(&self, row: usize) {
        let l = &self.layout;
        let start = |ends: &[usize]| {
            if row == 0 {
                Some(0)
            } else {
                ends.get(row - 1).copied()
            }
        };
        let at = |column: &Range<usize>, k: usize| self.bytes.get(column.start + k);
        if let Some(byte) = start(&l.invoice_ends).and_then(|k| at(&l.invoices, k * 16)) {
            prefetch(byte);
        }
        if let Some(k) = start(&l.country_ends) {
            for byte in [at(&l.country_values, k * 4), at(&l.country_lines, k * 8)]
                .into_iter()
                .flatten()
            {
                prefetch(byte);
            }
        }
    }

    /// How many packed invoices row `row` has (its first, the inline one,
    /// among them).
    pub(super) fn short_count(&self, row: usize) -> usize {
        span(&self.layout.invoice_ends, row).len()
    }

    /// The greatest of row `row`'s packed invoices (the last: they are sorted).
    pub(super) fn last_short(&self, row: usize) -> Option<InvoiceKey> {
        let span = span(&self.layout.invoice_ends, row);
        let last = span.end.checked_sub(1).filter(|&k| k >= span.start)?;
        let invoices = &self.bytes[self.layout.invoices.clone()];
        Some(u128::from_le_bytes(array(invoices, last)))
    }

    /// Whether row `row`'s packed invoices (sorted) hold `key`.
    pub(super) fn holds_short(&self, row: usize, key: InvoiceKey) -> bool {
        let invoices = &self.bytes[self.layout.invoices.clone()];
        let span = span(&self.layout.invoice_ends, row);
        let at = |k: usize| u128::from_le_bytes(array(invoices, k));
        let (mut lo, mut hi) = (span.start, span.end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match at(mid).cmp(&key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }

    /// Row `row`'s spill for a merge that adds to it: its packed invoices
    /// left in the entry (the spill's `base`), its long invoices and
    /// countries beyond the inline one copied.
    pub(super) fn spill_beside(&self, row: usize) -> Spill {
        Spill {
            base: Some(row as u32),
            ..Spill::default()
        }
        .with_rare(
            self.long_invoices(row).map(Into::into).collect(),
            self.further_countries(row).collect(),
        )
    }

    /// Row `row`'s spill as a decoded customer's: its invoices beyond the
    /// inline one, sorted, with room for a few more; its long invoices; its
    /// countries beyond the inline one.
    pub(super) fn spill(&self, row: usize) -> Spill {
        let short = span(&self.layout.invoice_ends, row).len();
        let mut spill = Spill::default();
        if short > 1 {
            spill.invoices = Vec::with_capacity(short - 1 + INVOICE_SLACK);
            spill.invoices.extend(self.invoices(row).skip(1));
        }
        spill.with_rare(
            self.long_invoices(row).map(Into::into).collect(),
            self.further_countries(row).collect(),
        )
    }
}

/// Customers from which an entry's index and rows are made side by side
/// (`rayon::join`).
const PARALLEL_DECODE_MIN: usize = 16_384;

/// An entry's per-customer columns, bound-checked against each other's
/// lengths (values still to check).
#[derive(Clone, Copy)]
struct Columns<'a> {
    /// Countries the entry names (customers' country indexes are below it).
    country_count: usize,
    id_ends: &'a [usize],
    ids: &'a [u8],
    first: &'a [u8],
    last_ts: &'a [u8],
    monetary: &'a [u8],
    invoice_ends: &'a [usize],
    invoices: &'a [u8],
    long_ends: &'a [usize],
    long_byte_ends: &'a [usize],
    long_bytes: &'a [u8],
    country_ends: &'a [usize],
    country_values: &'a [u8],
    country_lines: &'a [u8],
}

/// A decoded state's ids, their ends and the index over them.
type IdColumns = (Vec<u8>, Vec<usize>, HashTable<u32>);

impl Columns<'_> {
    /// The ids, checked (normalised text, increasing), and the index over
    /// them, with room for a quarter more customers.
    fn index(&self, hasher: &ahash::RandomState) -> Result<IdColumns> {
        let n = self.id_ends.len();
        let mut start = 0;
        let mut previous: Option<&[u8]> = None;
        for &end in self.id_ends {
            let id = &self.ids[start..end];
            start = end;
            if !is_customer_text(id) {
                return Err(bad(format!(
                    "customer id {:?} is not normalised text (UTF-8, no control character)",
                    String::from_utf8_lossy(id)
                )));
            }
            if previous.is_some_and(|p| p >= id) {
                return Err(bad("customer ids are not sorted and distinct".into()));
            }
            previous = Some(id);
        }
        let room = headroom(n);
        let mut ids = Vec::with_capacity(headroom(self.ids.len()));
        ids.extend_from_slice(self.ids);
        let mut id_ends = Vec::with_capacity(room);
        id_ends.extend_from_slice(self.id_ends);
        let mut index = HashTable::with_capacity(room);
        for slot in 0..n {
            let hash = hasher.hash_one(id_in(&ids, &id_ends, slot));
            index.insert_unique(hash, slot as u32, |&s| {
                hasher.hash_one(id_in(&ids, &id_ends, s as usize))
            });
        }
        Ok((ids, id_ends, index))
    }

    /// The customers' rows, each list checked; a customer of more than one
    /// invoice or country keeps the others in the entry (a base row, see
    /// [`BASE_ROW`]).
    fn rows(&self) -> Result<Vec<CustomerAcc>> {
        let n = self.id_ends.len();
        let c = self.country_count;
        let (first, last_ts, monetary) = (self.first, self.last_ts, self.monetary);
        let (invoice_ends, invoices) = (self.invoice_ends, self.invoices);
        let (long_ends, long_byte_ends, long_bytes) =
            (self.long_ends, self.long_byte_ends, self.long_bytes);
        let (country_ends, country_values, country_lines) =
            (self.country_ends, self.country_values, self.country_lines);
        let mut customers = crate::huge_pages::with_capacity(headroom(n));
        let mut spans = Spans::default();
        for i in 0..n {
            let mut acc = CustomerAcc::new();
            acc.first_ts = i64::from_le_bytes(array(first, i));
            acc.last_ts = i64::from_le_bytes(array(last_ts, i));
            acc.monetary = Money(i128::from_le_bytes(array(monetary, i)));
            if !acc.monetary.in_range() {
                return Err(bad(format!(
                    "customer {:?}: monetary is not {}",
                    String::from_utf8_lossy(id_in(self.ids, self.id_ends, i)),
                    money::RANGE_TEXT
                )));
            }
            let short = spans.next_short(invoice_ends, i);
            let long = spans.next_long(long_ends, i);
            let listed = spans.next_country(country_ends, i);
            let keys = |k: usize| u128::from_le_bytes(array(invoices, k));
            if short.clone().skip(1).any(|k| keys(k - 1) >= keys(k)) {
                return Err(bad("an invoice set is not sorted and distinct".into()));
            }
            if let Some(k) = short.clone().next() {
                if !super::is_packed_invoice(keys(k)) {
                    return Err(bad("an invoice key is not a packed invoice".into()));
                }
                acc.invoice = keys(k);
            }
            let index = |k: usize| u32::from_le_bytes(array(country_values, k));
            for k in listed.clone() {
                if index(k) as usize >= c {
                    return Err(bad(format!("country index {} out of range", index(k))));
                }
                if listed
                    .clone()
                    .take_while(|&j| j < k)
                    .any(|j| index(j) == index(k))
                {
                    return Err(bad("a customer lists a country twice".into()));
                }
            }
            if let Some(k) = listed.clone().next() {
                acc.country = index(k);
                acc.country_lines = u64::from_le_bytes(array(country_lines, k));
            }
            let long_invoice = |k: usize| &long_bytes[span(long_byte_ends, k)];
            if long
                .clone()
                .skip(1)
                .any(|k| long_invoice(k - 1) >= long_invoice(k))
            {
                return Err(bad("a long invoice set is not sorted and distinct".into()));
            }
            if short.len() > 1 || !long.is_empty() || listed.len() > 1 {
                acc.spill = BASE_ROW | i as u32;
            }
            customers.push(acc);
        }
        Ok(customers)
    }
}

/// Where each customer's lists start in the flat columns (the previous
/// customer's ends).
#[derive(Default)]
struct Spans {
    short: usize,
    long: usize,
    country: usize,
}

impl Spans {
    fn next_short(&mut self, ends: &[usize], i: usize) -> std::ops::Range<usize> {
        let r = self.short..ends[i];
        self.short = ends[i];
        r
    }
    fn next_long(&mut self, ends: &[usize], i: usize) -> std::ops::Range<usize> {
        let r = self.long..ends[i];
        self.long = ends[i];
        r
    }
    fn next_country(&mut self, ends: &[usize], i: usize) -> std::ops::Range<usize> {
        let r = self.country..ends[i];
        self.country = ends[i];
        r
    }
}

fn bad(why: String) -> Error {
    Error::BadState(why)
}

/// The last of `ends` (0 when there is none): the values' count or length.
fn last(ends: &[usize]) -> usize {
    ends.last().copied().unwrap_or(0)
}

/// Item `i` of N bytes of a column (bound-checked by the column's length).
#[inline]
fn array<const N: usize>(column: &[u8], i: usize) -> [u8; N] {
    column[i * N..(i + 1) * N]
        .try_into()
        .expect("a column holds N bytes per item")
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The payload not read yet; every read is bound-checked.
struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    /// The next `n` bytes (`what` names them in the error).
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.bytes.len() {
            return Err(bad(format!(
                "{what}: {n} bytes needed, {} left",
                self.bytes.len()
            )));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(array(self.take(8, what)?, 0)))
    }

    /// A count of items of at least `item` bytes each, no more than the
    /// bytes left can hold.
    fn count(&mut self, item: usize, what: &str) -> Result<usize> {
        let n = self.u64(what)?;
        if n > (self.bytes.len() / item) as u64 {
            return Err(bad(format!("{what}: a count of {n} is beyond the payload")));
        }
        Ok(n as usize)
    }

    /// A length, then as many bytes.
    fn bytes_with_len(&mut self, what: &str) -> Result<&'a [u8]> {
        let n = self.count(1, what)?;
        self.take(n, what)
    }

    /// `n` cumulative ends, each at least the one before and none beyond
    /// the bytes left.
    fn ends(&mut self, n: usize, what: &str) -> Result<Vec<usize>> {
        let column = self.take(n.checked_mul(8).ok_or_else(|| bad(what.into()))?, what)?;
        let mut ends = Vec::with_capacity(n);
        let mut previous = 0u64;
        for i in 0..n {
            let end = u64::from_le_bytes(array(column, i));
            if end < previous || end > self.bytes.len() as u64 {
                return Err(bad(format!("{what}: offset {end} out of range")));
            }
            previous = end;
            ends.push(end as usize);
        }
        Ok(ends)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A purchase line: customer, invoice, country, amount in units.
    type Line<'a> = (&'a [u8], &'a [u8], &'a [u8], i128);

    /// A customer's figures: id, first, last, monetary, frequency, country.
    type Row = (Vec<u8>, i64, i64, i128, u64, Vec<u8>);

    /// A state of lines with a long invoice, a customer of several
    /// countries and an overflow.
    fn sample() -> PartialState {
        let long = b"INVOICE-NUMBER-LONGER-THAN-15";
        let lines: &[Line] = &[
            (b"B2", b"3", b"France", 1),
            (b"A1", b"9", b"Spain", 2),
            (b"A1", b"1", b"France", 3),
            (b"A1", long, b"Spain", 4),
            (b"C3", b"7", b"EIRE", money::MAX_UNITS / money::ONE),
            (b"C3", b"8", b"EIRE", money::MAX_UNITS / money::ONE),
            (b"B2", b"2", b"Japan", 5),
        ];
        let mut state = PartialState::new();
        for (k, l) in lines.iter().enumerate() {
            state.absorb_line(l.0, l.1, k as i64, Money(l.3 * money::ONE), l.2);
        }
        state.ledger.lines_read = lines.len() as u64;
        state
    }

    fn payload(state: &PartialState) -> Vec<u8> {
        let mut out = Vec::new();
        state.encode_entry(&state.ledger, &mut out);
        out
    }

    /// (id, first, last, monetary, frequency, country) of every customer, by id.
    fn rows(state: &PartialState) -> Vec<Row> {
        let mut state = state.clone();
        state.seal();
        let mut rows: Vec<_> = (0..state.customer_count())
            .map(|i| {
                let c = &state.customers()[i];
                let country = state.country_of(c).to_vec();
                let id = state.id(i).to_vec();
                (
                    id,
                    c.first_ts,
                    c.last_ts,
                    c.monetary.0,
                    state.frequency(i),
                    country,
                )
            })
            .collect();
        rows.sort();
        rows
    }

    #[test]
    fn a_state_round_trips_and_encodes_canonically() {
        let state = sample();
        let bytes = payload(&state);
        let back = PartialState::decode_entry(&bytes).unwrap();
        assert_eq!(rows(&back), rows(&state));
        assert_eq!(back.ledger, state.ledger);
        assert_eq!(back.overflowed(), Some(&b"C3"[..]));
        // Sealed or not, merged in any order: the same bytes.
        assert_eq!(payload(&back), bytes);
        let mut sealed = state.clone();
        sealed.seal();
        assert_eq!(payload(&sealed), bytes);
        // A decoded state merges like the original.
        let mut merged = back;
        merged.merge(sample());
        let mut want = sample();
        want.merge(sample());
        assert_eq!(rows(&merged), rows(&want));
        // The empty state too.
        let empty = PartialState::new();
        let back = PartialState::decode_entry(&payload(&empty)).unwrap();
        assert_eq!(back.customer_count(), 0);
    }

    #[test]
    fn an_invoice_key_that_no_invoice_packs_to_is_refused() {
        // One customer of one invoice: the entry's only 16-byte key.
        let mut state = PartialState::new();
        state.absorb_line(b"A1", b"536365", 0, Money(money::ONE), b"France");
        let bytes = payload(&state);
        let key = super::super::pack_invoice(b"536365").unwrap().to_le_bytes();
        let at = bytes
            .windows(16)
            .position(|w| w == key)
            .expect("the key in the entry");
        assert!(PartialState::decode_entry(&bytes).is_ok());
        // The key no invoice packs to, which marks a customer of none.
        let mut forged = bytes.clone();
        forged[at..at + 16].copy_from_slice(&u128::MAX.to_le_bytes());
        let err = PartialState::decode_entry(&forged).unwrap_err().to_string();
        assert!(err.contains("not a packed invoice"), "{err}");
    }

    #[test]
    fn a_damaged_payload_is_an_error_never_a_panic() {
        let bytes = payload(&sample());
        for n in 0..bytes.len() {
            assert!(
                PartialState::decode_entry(&bytes[..n]).is_err(),
                "cut at {n}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(PartialState::decode_entry(&longer).is_err());
        for i in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[i] ^= flip;
                // Decoded or refused, but never a panic nor a wrong length;
                // a decoded one seals, scores, merges and encodes (its base
                // rows read from the damaged bytes) without a panic.
                if let Ok(state) = PartialState::decode_entry(&damaged) {
                    assert!(state.customer_count() <= 3);
                    let _ = scored(&state);
                    let _ = rows(&state);
                    let mut merged = state.clone();
                    merged.merge(sample());
                    let _ = payload(&merged);
                    let mut taken = sample();
                    taken.merge(state);
                    let _ = scored(&taken);
                }
            }
        }
    }

    #[test]
    fn a_large_state_decodes_on_two_threads_as_on_one() {
        // Ids of 6 bytes: customer k's id is at a fixed offset.
        let n = PARALLEL_DECODE_MIN + 1000;
        let mut state = PartialState::new();
        for k in 0..n {
            let id = format!("C{k:05}");
            let country: &[u8] = if k % 3 == 0 { b"France" } else { b"EIRE" };
            for invoice in [k, k + 7] {
                let invoice = invoice.to_string();
                state.absorb_line(
                    id.as_bytes(),
                    invoice.as_bytes(),
                    k as i64,
                    Money(money::ONE),
                    country,
                );
            }
        }
        let bytes = payload(&state);
        let back = PartialState::decode_entry(&bytes).unwrap();
        assert_eq!(back.customer_count(), n);
        assert_eq!(rows(&back), rows(&state));
        assert_eq!(payload(&back), bytes);
        let mut merged = back;
        merged.merge(sample());
        let mut want = state.clone();
        want.merge(sample());
        assert_eq!(rows(&merged), rows(&want));

        // A repeated id (checked beside the rows), a monetary out of range
        // (checked on this thread), and both: the id's error comes first.
        // The ledger, no overflow, the countries, the count and the id ends.
        let u = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        let countries_at = 8 + u(0) + 1;
        let c = u(countries_at);
        let ids_at = countries_at + 8 + 8 * c + u(countries_at + 8 * c) + 8 + 8 * n;
        let monetary_at = ids_at + 6 * n + 16 * n;
        let repeat_id = |b: &mut Vec<u8>| {
            let previous = b[ids_at + 6 * 99..ids_at + 6 * 100].to_vec();
            b[ids_at + 6 * 100..ids_at + 6 * 101].copy_from_slice(&previous);
        };
        let bad_money = |b: &mut Vec<u8>| {
            b[monetary_at + 16 * 5..monetary_at + 16 * 6].copy_from_slice(&i128::MAX.to_le_bytes());
        };
        let error = |b: &[u8]| PartialState::decode_entry(b).unwrap_err().to_string();
        let mut damaged = bytes.clone();
        repeat_id(&mut damaged);
        assert!(
            error(&damaged).contains("not sorted and distinct"),
            "{}",
            error(&damaged)
        );
        let mut damaged = bytes.clone();
        bad_money(&mut damaged);
        assert!(
            error(&damaged).contains("\"C00005\": monetary"),
            "{}",
            error(&damaged)
        );
        repeat_id(&mut damaged);
        assert!(
            error(&damaged).contains("not sorted and distinct"),
            "{}",
            error(&damaged)
        );
    }

    /// A state of `customers` customers over `lines` lines, from `seed`:
    /// several invoices and countries per customer, some invoices too long
    /// to pack, lines out of invoice order.
    fn state_of_lines(seed: u64, customers: u64, lines: u64) -> PartialState {
        let mut state = PartialState::new();
        let mut x = seed;
        let mut next = |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        for k in 0..lines {
            let id = format!("C{:04}", next(customers));
            let invoice = match next(10) {
                0 => format!("LONG-INVOICE-NUMBER-{:03}", next(50)),
                _ => format!("{}", 500 + next(300)),
            };
            let country: &[u8] = [&b"France"[..], b"EIRE", b"Spain"][next(3) as usize];
            let amount = Money((next(1000) as i128 - 100) * money::ONE / 100);
            state.absorb_line(id.as_bytes(), invoice.as_bytes(), k as i64, amount, country);
        }
        state.ledger.lines_read = lines;
        state
    }

    /// The state as scoring sees it: each customer's id, frequency and
    /// country slot's name, from `seal_with_countries`, in id order.
    fn scored(state: &PartialState) -> Vec<(Vec<u8>, u64, Vec<u8>)> {
        let mut state = state.clone();
        let sealed = state.seal_with_countries();
        let mut rows: Vec<_> = (0..state.customer_count())
            .map(|i| {
                let country = state.country_name(sealed.countries[i]).to_vec();
                assert_eq!(sealed.frequencies[i], state.frequency(i));
                (state.id(i).to_vec(), sealed.frequencies[i], country)
            })
            .collect();
        rows.sort();
        rows
    }

    /// The state sent as an Arrow batch and read back.
    fn via_batch(state: &PartialState) -> PartialState {
        let batch = state.to_record_batch();
        PartialState::from_record_batches(&batch.schema(), &[batch]).unwrap()
    }

    #[test]
    fn a_decoded_state_keeps_its_lists_in_the_entry_and_merges_like_the_original() {
        let cached = state_of_lines(1, 300, 3000);
        let bytes = payload(&cached);
        let decoded = || PartialState::decode_entry(&bytes).unwrap();
        // Untouched: its customers are read from the entry's rows.
        let back = decoded();
        assert!(back
            .customers
            .iter()
            .any(|c| super::super::base_row(c.spill).is_some()));
        assert!(back.spills.is_empty(), "no spill made while decoding");
        assert_eq!(rows(&back), rows(&cached));
        assert_eq!(scored(&back), scored(&cached));
        assert_eq!(rows(&via_batch(&back)), rows(&cached));
        assert_eq!(payload(&back), bytes);

        // New files of fewer, as many and more customers, some new, merged
        // into it and it into them: as the original merges.
        let mut by_reference = 0;
        for (seed, customers, lines) in [(2, 400, 500), (3, 320, 3000), (4, 500, 9000)] {
            let new = state_of_lines(seed, customers, lines);
            let mut want = cached.clone();
            want.merge(new.clone());
            let mut into_decoded = decoded();
            into_decoded.merge(new.clone());
            let mut into_new = new.clone();
            into_new.merge(decoded());
            let mut into_job = PartialState::new();
            into_job.reserve_for_job(1 << 30);
            into_job.merge(new.clone());
            into_job.merge(decoded());
            // Folded without consuming the state folded in (read meanwhile
            // to encode it), which stays as it was.
            let mut from_new = decoded();
            if from_new.takes_in(&new) {
                by_reference += 1;
                from_new.merge_from(&new);
            } else {
                from_new.merge(new.clone());
            }
            let mut job_from = PartialState::new();
            job_from.reserve_for_job(1 << 30);
            assert!(job_from.takes_in(&new));
            job_from.merge_from(&new);
            job_from.merge(decoded());
            let mut new_from_decoded = new.clone();
            new_from_decoded.merge_from(&decoded());
            assert_eq!(rows(&new), rows(&state_of_lines(seed, customers, lines)));
            // The other way round (not what `takes_in` picks): the same
            // customers; the entry's country table follows the merge order.
            assert_eq!(rows(&new_from_decoded), rows(&want), "{seed}");
            assert_eq!(scored(&new_from_decoded), scored(&want), "{seed}");
            for (how, got) in [
                ("into the decoded state", &into_decoded),
                ("into the new state", &into_new),
                ("into a job's reserved state", &into_job),
                ("into the decoded state, by reference", &from_new),
                ("into a job's reserved state, by reference", &job_from),
            ] {
                assert_eq!(rows(got), rows(&want), "{seed}: {how}");
                let order = got.slots_by_id();
                assert_eq!(order.len(), got.customer_count());
                assert!(
                    order
                        .windows(2)
                        .all(|w| got.id(w[0] as usize) < got.id(w[1] as usize)),
                    "{seed}: {how}: slots in id order"
                );
                assert_eq!(scored(got), scored(&want), "{seed}: {how}");
                assert_eq!(payload(got), payload(&want), "{seed}: {how}");
                assert_eq!(rows(&via_batch(got)), rows(&want), "{seed}: {how}");
            }
            // The decoded state, added to (spills beside its rows), folded
            // into a third state, by value and by reference: the rows'
            // invoices and the added ones read together.
            let third = state_of_lines(seed + 10, customers / 2, lines / 2);
            let mut want_third = want.clone();
            want_third.merge(third.clone());
            let mut by_value = third.clone();
            by_value.merge(into_decoded.clone());
            let mut by_ref = third.clone();
            by_ref.merge_from(&into_decoded);
            let mut into_added = into_decoded.clone();
            into_added.merge(third.clone());
            for (how, got) in [
                ("by value", &by_value),
                ("by reference", &by_ref),
                ("into it", &into_added),
            ] {
                assert_eq!(rows(got), rows(&want_third), "{seed}: third {how}");
                assert_eq!(scored(got), scored(&want_third), "{seed}: third {how}");
            }
            assert_eq!(payload(&into_added), payload(&want_third), "{seed}");
            // Two decoded states merged: each one's rows from its own entry.
            let other_bytes = payload(&new);
            let mut both = decoded();
            both.merge(PartialState::decode_entry(&other_bytes).unwrap());
            assert_eq!(payload(&both), payload(&want), "{seed}: two decoded");
        }
        assert!(
            by_reference > 0,
            "a decoded state took a new one in by reference"
        );

        // Lines absorbed into it, by customers of base rows and new ones.
        let mut absorbed = decoded();
        let mut want = cached.clone();
        for (k, id) in [&b"C0001"[..], b"C0002", b"C0299", b"N0001"]
            .iter()
            .enumerate()
        {
            for (invoice, country) in [(&b"100"[..], &b"Japan"[..]), (b"999", b"EIRE")] {
                for s in [&mut absorbed, &mut want] {
                    s.absorb_line(id, invoice, 10_000 + k as i64, Money(money::ONE), country);
                }
            }
        }
        assert_eq!(rows(&absorbed), rows(&want));
        assert_eq!(payload(&absorbed), payload(&want));
    }

    /// The offset of the customers' count in `bytes` (after the ledger,
    /// the overflow and the countries).
    fn customers_at(bytes: &[u8]) -> usize {
        let u = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        let mut at = 8 + u(0);
        at += 1 + 8 + u(at + 1);
        let c = u(at);
        let names = if c == 0 { 0 } else { u(at + 8 * c) };
        at + 8 + 8 * c + names
    }

    #[test]
    fn offsets_out_of_range_or_out_of_order_are_refused() {
        let bytes = payload(&sample());
        let at = customers_at(&bytes);
        assert_eq!(u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()), 3);
        let set = |at: usize, v: u64| {
            let mut b = bytes.clone();
            b[at..at + 8].copy_from_slice(&v.to_le_bytes());
            PartialState::decode_entry(&b).unwrap_err().to_string()
        };
        assert!(set(at, u64::MAX).contains("beyond the payload"));
        assert!(set(at + 8, u64::MAX).contains("out of range"));
        assert!(set(at + 16, 0).contains("out of range"), "ends decrease");
        // Ids out of order: "A1" and "B2" swapped.
        let mut b = bytes.clone();
        let ids = at + 8 + 3 * 8;
        b[ids..ids + 4].copy_from_slice(b"B2A1");
        let err = PartialState::decode_entry(&b).unwrap_err().to_string();
        assert!(err.contains("not sorted and distinct"), "{err}");
    }
}
