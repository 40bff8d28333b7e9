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

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ahash::AHashMap;
use arrow::array::{
    ArrayRef, AsArray, BinaryBuilder, Decimal128Array, FixedSizeBinaryArray, Int64Array, ListArray,
    ListBuilder, RecordBatch, UInt64Builder,
};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Decimal128Type, Field, Int64Type, Schema, UInt64Type};
use hashbrown::hash_table::{self, HashTable};

use crate::error::{Error, Result};
use crate::ledger::LineLedger;
use crate::money::{self, Money};
use crate::parse::is_customer_text;
use crate::short_bytes::{big_endian_value, same_bytes};

mod entry;

/// An invoice number packed for fast equality: values of up to 15 bytes fit in
/// a `u128` together with their length; longer ones are kept as bytes.
type InvoiceKey = u128;

#[inline]
fn pack_invoice(inv: &[u8]) -> Option<InvoiceKey> {
    if inv.len() > 15 {
        return None;
    }
    // The length in the top byte, then the bytes from the next one down:
    // big-endian, zero-padded.
    Some((inv.len() as u128) << 120 | big_endian_value(inv) << (8 * (15 - inv.len())))
}

/// Bytes of a packed invoice as a state batch and a cache entry carry it.
const INVOICE_KEY_BYTES: i32 = 16;

/// Whether `key` is what [`pack_invoice`] makes of some invoice: a length of
/// at most 15, and zero past the invoice's bytes.
#[inline]
fn is_packed_invoice(key: InvoiceKey) -> bool {
    let len = (key >> 120) as u32;
    len <= 15 && key & ((1u128 << (8 * (15 - len))) - 1) == 0
}

/// An invoice as a state keeps it, packed once for the many lines that
/// share it (see [`PartialState::absorb_slots`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackedInvoice(Option<InvoiceKey>);

impl PackedInvoice {
    /// The packed form of `invoice`'s bytes.
    #[inline]
    pub fn of(invoice: &[u8]) -> PackedInvoice {
        PackedInvoice(pack_invoice(invoice))
    }
}

/// The bytes of a packed invoice.
#[cfg(test)]
fn unpack_invoice(key: InvoiceKey) -> Vec<u8> {
    let len = (key >> 120) as usize;
    (0..len).map(|i| (key >> (8 * (14 - i))) as u8).collect()
}

/// Input bytes per customer assumed when sizing a state before parsing: an
/// invoice of the Online Retail data set takes about 1.3 KB (18 lines of
/// about 70 bytes), so at one customer per invoice this is close, and with
/// fewer customers the room left over stays small.
const INPUT_BYTES_PER_CUSTOMER: usize = 1024;

/// The most customers [`PartialState::reserve_for_job`] makes room for
/// (about 1.3 GB of address space): beyond it the columns grow as needed.
const MAX_JOB_RESERVED_CUSTOMERS: usize = 16 << 20;

/// No spill / no country: the sentinel of a `u32` index.
const NONE: u32 = u32::MAX;

/// The country slot of a customer of no line (see
/// [`PartialState::seal_with_countries`]).
pub const NO_COUNTRY: u32 = NONE;

/// One customer's accumulated purchases. The common case (one invoice, one
/// country) lives inline; a customer with more has a `Spill` in its state.
/// The id is kept in the state's id arena ([`PartialState::id`]).
#[derive(Clone, Debug)]
pub struct CustomerAcc {
    pub first_ts: i64,
    pub last_ts: i64,
    pub monetary: Money,
    /// The first invoice seen, or [`NO_INVOICE`].
    invoice: InvoiceKey,
    /// Lines in `country`.
    country_lines: u64,
    /// Index into the state's spills, or [`NONE`].
    spill: u32,
    /// Index into the state's countries, or [`NONE`].
    country: u32,
}

// A customer is one 64-byte cache line (the frequency is counted when it is
// read, not kept): merging and looking up many customers is bound by memory.
const _: () = assert!(std::mem::size_of::<CustomerAcc>() == 64);

/// The inline invoice of a customer of none: no packed invoice (its length
/// byte would be 255, see [`is_packed_invoice`]).
const NO_INVOICE: InvoiceKey = u128::MAX;

/// A spill's invoices longer than 15 bytes, borrowed or sorted anew.
type LongInvoices<'a> = Cow<'a, [Box<[u8]>]>;

/// What does not fit inline: further invoices and countries of a customer.
#[derive(Clone, Debug, Default)]
struct Spill {
    /// Invoices besides the inline one, never it. Each is appended unless it
    /// repeats the last; the list stays sorted and distinct while they come
    /// in increasing order (lines and chunks in file order), and is sorted
    /// and deduplicated by [`Spill::normalise`] otherwise (`unsorted`).
    /// With a `base` row, only the invoices added to it: those of the row
    /// stay in the decoded entry, and [`normalise`] drops the added ones
    /// that the row holds.
    invoices: Vec<InvoiceKey>,
    /// The decoded entry's row ([`entry::Base`]) whose packed invoices are
    /// this customer's too, besides `invoices`: a merge that touches a
    /// decoded customer adds to its set without copying the set (a year's
    /// invoices of a customer the new day brings back). Its long invoices
    /// and countries, few, are copied into this spill.
    base: Option<u32>,
    /// Whether `invoices` may be out of order or hold repeats.
    unsorted: bool,
    /// The lists few customers have, boxed so that a spill without them
    /// (most: many invoices, one country) takes 48 bytes, not 88.
    rare: Option<Box<Rare>>,
}

/// A spill's lists that few customers have.
#[derive(Clone, Debug, Default)]
struct Rare {
    /// Invoices longer than 15 bytes.
    long_invoices: Vec<Box<[u8]>>,
    /// (index into the state's countries, purchase lines), besides the inline one.
    countries: Vec<(u32, u64)>,
}

const _: () = assert!(std::mem::size_of::<Spill>() == 48);

impl Spill {
    /// Invoices longer than 15 bytes.
    fn long_invoices(&self) -> &[Box<[u8]>] {
        self.rare.as_ref().map_or(&[], |r| &r.long_invoices)
    }

    /// (country, purchase lines) besides the inline one.
    fn countries(&self) -> &[(u32, u64)] {
        self.rare.as_ref().map_or(&[], |r| &r.countries)
    }

    /// The rare lists, made when the spill has none.
    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// A spill of these rare lists (none when both are empty).
    fn with_rare(mut self, long_invoices: Vec<Box<[u8]>>, countries: Vec<(u32, u64)>) -> Spill {
        if !long_invoices.is_empty() || !countries.is_empty() {
            self.rare = Some(Box::new(Rare {
                long_invoices,
                countries,
            }));
        }
        self
    }

    /// Appends invoice `key`, keeping track of whether the list is still
    /// sorted and distinct.
    #[inline]
    fn push_invoice(&mut self, key: InvoiceKey) {
        match self.invoices.last() {
            Some(&last) if last == key => {}
            Some(&last) if key < last => {
                self.invoices.push(key);
                self.unsorted = true;
            }
            _ => self.invoices.push(key),
        }
    }

    /// Sorts and deduplicates the invoice sets; drops `inline` from them.
    fn normalise(&mut self, inline: Option<InvoiceKey>) {
        if self.unsorted {
            self.invoices.sort_unstable();
            self.invoices.dedup();
            self.unsorted = false;
        }
        if let Some(k) = inline {
            if let Ok(at) = self.invoices.binary_search(&k) {
                self.invoices.remove(at);
            }
        }
        if !strictly_increasing(self.long_invoices()) {
            let long = &mut self.rare_mut().long_invoices;
            long.sort_unstable();
            long.dedup();
        }
    }

    /// [`normalise`](Self::normalise), then drops the added invoices that
    /// the base row holds, if any (`base`: the decoded entry); returns how
    /// many invoices the customer has besides the inline one.
    fn normalise_beside(&mut self, inline: Option<InvoiceKey>, base: Option<&entry::Base>) -> u64 {
        self.normalise(inline);
        let mut further = 0;
        if let Some(row) = self.base {
            let base = base.expect("a spill beside a base row belongs to a decoded state");
            let row = row as usize;
            // Sorted now: invoices added all after the row's last (a new
            // file's, the common case) are none of the row's, unsearched.
            let after_row = match (self.invoices.first(), base.last_short(row)) {
                (Some(&first), Some(last)) => first > last,
                _ => true,
            };
            if !after_row {
                self.invoices.retain(|&k| !base.holds_short(row, k));
            }
            // The row's first invoice is the inline one.
            further = base.short_count(row).saturating_sub(1);
        }
        (further + self.invoices.len() + self.long_invoices().len()) as u64
    }

    /// The invoice sets as [`normalise`](Self::normalise) leaves them: the
    /// lists themselves when they are so already, else sorted copies.
    fn normalised_invoices(&self) -> (Cow<'_, [InvoiceKey]>, LongInvoices<'_>) {
        let invoices = if self.unsorted {
            let mut v = self.invoices.clone();
            v.sort_unstable();
            v.dedup();
            Cow::Owned(v)
        } else {
            Cow::Borrowed(&self.invoices[..])
        };
        let long = if strictly_increasing(self.long_invoices()) {
            Cow::Borrowed(self.long_invoices())
        } else {
            let mut v = self.long_invoices().to_vec();
            v.sort_unstable();
            v.dedup();
            Cow::Owned(v)
        };
        (invoices, long)
    }
}

/// Marks a spill index that names a row of the state's decoded cache entry
/// ([`entry::Base`]) rather than an entry of [`Spills::list`]: a decoded
/// customer whose further invoices and countries are still where the entry
/// keeps them. They become a [`Spill`] of the list only when the customer
/// changes (a merge that touches it), so a run reading a large entry pays
/// for the customers its new files touch, not for all of them.
const BASE_ROW: u32 = 1 << 31;

/// The base row a spill index names, if it names one ([`NONE`] does not).
#[inline]
fn base_row(spill: u32) -> Option<usize> {
    (spill != NONE && spill >= BASE_ROW).then_some((spill & !BASE_ROW) as usize)
}

/// The customers' spills: those made in memory, and the decoded entry
/// whose rows hold the others (see [`BASE_ROW`]).
#[derive(Clone, Debug, Default)]
struct Spills {
    list: Vec<Spill>,
    base: Option<Arc<entry::Base>>,
}

impl std::ops::Deref for Spills {
    type Target = Vec<Spill>;
    fn deref(&self) -> &Vec<Spill> {
        &self.list
    }
}

impl std::ops::DerefMut for Spills {
    fn deref_mut(&mut self) -> &mut Vec<Spill> {
        &mut self.list
    }
}

impl Spills {
    /// The decoded entry that base rows refer to.
    fn base(&self) -> &entry::Base {
        self.base
            .as_deref()
            .expect("a customer of a base row belongs to a decoded state")
    }

    /// The spill that index `spill` names, if any: borrowed from the list,
    /// or made from the base row it names.
    fn view(&self, spill: u32) -> Option<Cow<'_, Spill>> {
        if spill == NONE {
            None
        } else if let Some(row) = base_row(spill) {
            Some(Cow::Owned(self.base().spill(row)))
        } else {
            let listed = &self.list[spill as usize];
            match listed.base {
                Some(row) => Some(Cow::Owned(self.whole(listed.clone(), row))),
                None => Some(Cow::Borrowed(listed)),
            }
        }
    }

    /// `spill`, whose packed invoices are those it lists besides those of
    /// base row `row`, with all of them listed (sorted and distinct).
    fn whole(&self, spill: Spill, row: u32) -> Spill {
        let added = spill.invoices;
        let mut invoices = Vec::with_capacity(self.base().short_count(row as usize) + added.len());
        invoices.extend(self.base().invoices(row as usize).skip(1));
        let from_row = invoices.len();
        invoices.extend_from_slice(&added);
        if !strictly_increasing(&invoices[from_row.saturating_sub(1)..]) {
            invoices.sort_unstable();
            invoices.dedup();
        }
        Spill {
            invoices,
            base: None,
            unsorted: false,
            ..spill
        }
    }

    /// Takes the spill that index `spill` names out of this state (its
    /// entry in the list left empty), if any.
    fn take(&mut self, spill: u32) -> Option<Spill> {
        if spill == NONE {
            None
        } else if let Some(row) = base_row(spill) {
            Some(self.base().spill(row))
        } else {
            let taken = std::mem::take(&mut self.list[spill as usize]);
            Some(match taken.base {
                Some(row) => self.whole(taken, row),
                None => taken,
            })
        }
    }
}

/// Whether `v` is sorted without repeats.
#[inline]
fn strictly_increasing<T: Ord>(v: &[T]) -> bool {
    v.windows(2).all(|w| w[0] < w[1])
}

/// How many customers ahead a merge fetches the ones it will fold into.
const PREFETCH_AHEAD: usize = 8;

/// Asks the CPU to bring `value`'s cache line in (a hint; no effect on
/// other targets).
#[inline(always)]
fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing; the address is a live reference's.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            value as *const T as *const i8,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

impl CustomerAcc {
    fn new() -> CustomerAcc {
        CustomerAcc {
            first_ts: i64::MAX,
            last_ts: i64::MIN,
            monetary: Money::ZERO,
            invoice: NO_INVOICE,
            country_lines: 0,
            spill: NONE,
            country: NONE,
        }
    }

    #[inline]
    fn has_invoice(&self) -> bool {
        self.invoice != NO_INVOICE
    }

    #[inline]
    fn inline_invoice(&self) -> Option<InvoiceKey> {
        self.has_invoice().then_some(self.invoice)
    }
}

/// The spill of `acc`, made when it has none.
#[inline]
fn spill_of<'a>(acc: &mut CustomerAcc, spills: &'a mut Spills) -> &'a mut Spill {
    if acc.spill == NONE {
        acc.spill = spills.list.len() as u32;
        spills.list.push(Spill::default());
    } else if let Some(row) = base_row(acc.spill) {
        // The row's invoices stay where the entry keeps them.
        let spill = spills.base().spill_beside(row);
        acc.spill = spills.list.len() as u32;
        spills.list.push(spill);
    }
    debug_assert!(acc.spill < BASE_ROW, "fewer than 2^31 spills");
    &mut spills.list[acc.spill as usize]
}

#[inline]
fn add_invoice(acc: &mut CustomerAcc, spills: &mut Spills, key: InvoiceKey) {
    if !acc.has_invoice() {
        acc.invoice = key;
    } else if key != acc.invoice {
        // Lines of one invoice come together: the repeats are skipped.
        spill_of(acc, spills).push_invoice(key);
    }
}

/// Adds invoices `keys` (sorted and distinct, as a sealed state's) to `acc`.
#[inline]
fn add_invoices(acc: &mut CustomerAcc, spills: &mut Spills, keys: &[InvoiceKey]) {
    let mut keys = keys.iter().copied();
    if !acc.has_invoice() {
        match keys.next() {
            Some(k) => {
                acc.invoice = k;
            }
            None => return,
        }
    }
    let inline = acc.invoice;
    let mut keys = keys.filter(|&k| k != inline).peekable();
    if keys.peek().is_none() {
        return;
    }
    let spill = spill_of(acc, spills);
    spill.invoices.reserve(keys.size_hint().0);
    for k in keys {
        spill.push_invoice(k);
    }
}

#[inline(always)]
fn add_country(acc: &mut CustomerAcc, spills: &mut Spills, country: u32, lines: u64) {
    if acc.country == country {
        acc.country_lines += lines;
    } else if acc.country == NONE {
        acc.country = country;
        acc.country_lines = lines;
    } else {
        let countries = &mut spill_of(acc, spills).rare_mut().countries;
        for c in countries.iter_mut() {
            if c.0 == country {
                c.1 += lines;
                return;
            }
        }
        countries.push((country, lines));
    }
}

/// Sorts and deduplicates a customer's invoices (a base row's lists are so
/// already, the inline invoice not among them).
#[inline]
fn normalise(acc: &CustomerAcc, spills: &mut Spills) {
    if acc.spill != NONE && base_row(acc.spill).is_none() {
        let spill = &mut spills.list[acc.spill as usize];
        spill.normalise_beside(acc.inline_invoice(), spills.base.as_deref());
    }
}

/// What [`PartialState::seal_with_countries`] finds, per customer slot.
#[derive(Debug)]
pub struct Sealed {
    /// The customer's most frequent country, or [`NO_COUNTRY`].
    pub countries: Vec<u32>,
    /// The customer's distinct invoices.
    pub frequencies: Vec<u64>,
}

/// Partial RFM state: mergeable, serialisable, deterministic.
#[derive(Clone, Debug, Default)]
pub struct PartialState {
    customers: Vec<CustomerAcc>,
    /// Customer ids, one after the other: customer `i`'s is
    /// `ids[id_ends[i - 1]..id_ends[i]]`.
    ids: Vec<u8>,
    id_ends: Vec<usize>,
    /// Customer slots by id.
    index: HashTable<u32>,
    hasher: ahash::RandomState,
    spills: Spills,
    countries: Vec<Box<[u8]>>,
    country_index: AHashMap<Box<[u8]>, u32>,
    pub ledger: LineLedger,
    /// The smallest id (bytes) of a customer whose revenue left the exact
    /// range, reported when the state is finished.
    overflow: Option<Box<[u8]>>,
    /// The customer and country slots of the last line absorbed (lines of
    /// one invoice come together); checked against the id and name before
    /// use, so any value is safe.
    last_customer: u32,
    /// How many first slots are in id order (a decoded entry's customers):
    /// [`slots_by_id`](Self::slots_by_id) sorts only the others.
    sorted_prefix: usize,
    /// Set by [`reserve_for_job`](Self::reserve_for_job): merges fold into
    /// this state's own columns, never swap them for the other state's.
    folds_in_place: bool,
    last_country: u32,
    /// The customer slot and packed invoice of the last line absorbed by
    /// [`absorb_line`](Self::absorb_line): that customer's invoices hold it
    /// (slots are never reused and invoice sets only grow, through merges
    /// too), so the next line of the same invoice adds none.
    last_invoice: Option<(u32, InvoiceKey)>,
    /// A mapped cache entry that a state merged into this one was read
    /// from, and that was cut short meanwhile (see [`crate::mapped`]).
    lost_entry: Option<PathBuf>,
}

/// The value indices of list row `row`.
#[inline]
fn range_of(offsets: &[i32], row: usize) -> std::ops::Range<usize> {
    offsets[row] as usize..offsets[row + 1] as usize
}

/// The first 8 bytes of an id, big endian, zero-padded: ordering these
/// orders ids (which hold no NUL byte), except between ids that share them.
#[inline]
fn id_prefix(id: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let k = id.len().min(8);
    b[..k].copy_from_slice(&id[..k]);
    u64::from_be_bytes(b)
}

/// Customer `i`'s id in an id arena.
#[inline]
fn id_in<'a>(ids: &'a [u8], id_ends: &[usize], i: usize) -> &'a [u8] {
    let start = if i == 0 { 0 } else { id_ends[i - 1] };
    &ids[start..id_ends[i]]
}

/// The slots `0..n` in id order ([`PartialState::slots_by_id`]); the first
/// `sorted_prefix` are in id order already.
fn order_by_id(ids: &[u8], id_ends: &[usize], n: usize, sorted_prefix: usize) -> Vec<u32> {
    let sorted = sorted_prefix.min(n);
    let prefixes: Vec<u64> = (sorted..n)
        .map(|i| id_prefix(id_in(ids, id_ends, i)))
        .collect();
    let mut added = crate::rank::radix_order(&prefixes);
    let base = sorted as u32;
    crate::rank::order_ties(&mut added, &prefixes, |a, b| {
        id_in(ids, id_ends, (base + a) as usize).cmp(id_in(ids, id_ends, (base + b) as usize))
    });
    if sorted == 0 {
        return added;
    }
    let mut order = Vec::with_capacity(n);
    let mut added = added.into_iter().map(|a| base + a).peekable();
    for slot in 0..base {
        while let Some(&a) = added.peek() {
            if id_in(ids, id_ends, a as usize) > id_in(ids, id_ends, slot as usize) {
                break;
            }
            order.push(a);
            added.next();
        }
        order.push(slot);
    }
    order.extend(added);
    order
}

/// [`PartialState::seal_with_countries`] on the state's parts.
fn seal_spills(customers: &[CustomerAcc], countries: &[Box<[u8]>], spills: &mut Spills) -> Sealed {
    use rayon::prelude::*;
    /// Customers or spills per task: enough to outweigh the task's cost.
    const PER_TASK: usize = 4096;
    let mut by_name: Vec<u32> = (0..countries.len() as u32).collect();
    by_name.sort_unstable_by(|&a, &b| countries[a as usize].cmp(&countries[b as usize]));
    let mut rank = vec![0u32; countries.len()];
    for (r, &c) in by_name.iter().enumerate() {
        rank[c as usize] = r as u32;
    }
    // The better of two (country, lines): more lines, then the smaller name.
    let better = |a: (u32, u64), b: (u32, u64)| -> (u32, u64) {
        if a.0 == NONE {
            return b;
        }
        if b.0 == NONE {
            return a;
        }
        match a.1.cmp(&b.1) {
            std::cmp::Ordering::Greater => a,
            std::cmp::Ordering::Less => b,
            std::cmp::Ordering::Equal if rank[a.0 as usize] <= rank[b.0 as usize] => a,
            std::cmp::Ordering::Equal => b,
        }
    };
    // Each spill's owner's inline invoice (a spill has one owner).
    let mut inline_of_spill: Vec<Option<InvoiceKey>> = vec![None; spills.len()];
    for c in customers {
        if c.spill < BASE_ROW {
            inline_of_spill[c.spill as usize] = c.inline_invoice();
        }
    }
    // Per spill: its invoices besides the inline one, and its best country.
    let Spills { list, base } = spills;
    let base = base.as_deref();
    let spilled: Vec<(u64, (u32, u64))> = list
        .par_iter_mut()
        .zip(inline_of_spill.par_iter())
        .with_min_len(PER_TASK)
        .map(|(spill, &inline)| {
            let invoices = spill.normalise_beside(inline, base);
            let best = spill
                .countries()
                .iter()
                .fold((NONE, 0), |best, &c| better(best, c));
            (invoices, best)
        })
        .collect();
    drop(inline_of_spill);
    let base = spills.base.as_deref();
    let (countries, frequencies) = customers
        .par_iter()
        .with_min_len(PER_TASK)
        .map(|c| {
            let mut frequency = c.has_invoice() as u64;
            let mut best = (c.country, c.country_lines);
            if let Some(row) = base_row(c.spill) {
                let base = base.expect("a customer of a base row belongs to a decoded state");
                frequency += base.further_invoices(row);
                best = base.further_countries(row).fold(best, better);
            } else if c.spill != NONE {
                let (invoices, spill_best) = spilled[c.spill as usize];
                frequency += invoices;
                best = better(best, spill_best);
            }
            (best.0, frequency)
        })
        .unzip();
    Sealed {
        countries,
        frequencies,
    }
}

impl PartialState {
    pub fn new() -> PartialState {
        PartialState::default()
    }

    /// A mapped cache entry that this state, or one merged into it, read
    /// from and that another program cut short meanwhile: what was read
    /// from it may be zeros in place of its bytes, so the state must not be
    /// used (see [`crate::mapped`]).
    pub fn cut_entry(&self) -> Option<&Path> {
        self.lost_entry
            .as_deref()
            .or_else(|| self.spills.base.as_ref().and_then(|b| b.cut_short()))
    }

    /// Keeps `lost` (a cut entry of a state merged in), unless one is kept.
    fn note_lost_entry(&mut self, lost: Option<&Path>) {
        if let (None, Some(path)) = (&self.lost_entry, lost) {
            self.lost_entry = Some(path.to_path_buf());
        }
    }

    pub fn customer_count(&self) -> usize {
        self.customers.len()
    }

    /// The id of customer `slot` (an index into [`customers`](Self::customers)).
    #[inline]
    pub fn id(&self, slot: usize) -> &[u8] {
        id_in(&self.ids, &self.id_ends, slot)
    }

    /// The customer slots in id order (by the ids' UTF-8 bytes): a radix
    /// sort of the ids' first 8 bytes, big endian and zero-padded (ids hold
    /// no NUL byte), the ids themselves compared only where those tie.
    ///
    /// The first slots of a decoded entry are in id order already: only the
    /// slots after them are sorted, then both runs are merged.
    pub fn slots_by_id(&self) -> Vec<u32> {
        order_by_id(
            &self.ids,
            &self.id_ends,
            self.customers.len(),
            self.sorted_prefix,
        )
    }

    /// [`seal_with_countries`](Self::seal_with_countries) and
    /// [`slots_by_id`](Self::slots_by_id) side by side: the ids are sorted
    /// while the spills are sealed (each has a part that runs on one core).
    pub fn seal_for_scoring(&mut self) -> (Sealed, Vec<u32>) {
        let PartialState {
            customers,
            ids,
            id_ends,
            spills,
            countries,
            sorted_prefix,
            ..
        } = self;
        let n = customers.len();
        rayon::join(
            || seal_spills(customers, countries, spills),
            || order_by_id(ids, id_ends, n, *sorted_prefix),
        )
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

    /// Room, before parsing `bytes` of CSV into an empty state, for as many
    /// customers as that holds when every invoice is a new customer (about one
    /// per `INPUT_BYTES_PER_CUSTOMER` bytes): the table and arena then grow
    /// rarely. A state that already holds customers is left as it is.
    pub fn reserve_for_input(&mut self, bytes: usize) {
        if self.customers.is_empty() {
            let n = bytes / INPUT_BYTES_PER_CUSTOMER;
            self.reserve(n, n * 8);
        }
    }

    /// Room, before merging into an empty state the chunk states of `bytes`
    /// of input, in the per-customer columns for as many customers as
    /// [`reserve_for_input`](Self::reserve_for_input) assumes (at most
    /// `MAX_JOB_RESERVED_CUSTOMERS`); the index grows as usual. The room is
    /// address space that pages in only as customers arrive, so a state of
    /// few customers costs no more memory, and a state of many never moves to
    /// grow: no copy of its columns, and no freed copies that the allocator
    /// would keep until the end of the run. Merges then fold into it.
    pub fn reserve_for_job(&mut self, bytes: u64) {
        if !self.customers.is_empty() {
            return;
        }
        let n = usize::try_from(bytes / INPUT_BYTES_PER_CUSTOMER as u64)
            .unwrap_or(usize::MAX)
            .min(MAX_JOB_RESERVED_CUSTOMERS);
        // A system that will not map that much (strict overcommit) leaves
        // the columns to grow as they would without the reservation.
        let reserved = self.customers.try_reserve_exact(n).is_ok()
            && self.id_ends.try_reserve_exact(n).is_ok()
            && self.ids.try_reserve_exact(n * 8).is_ok();
        self.folds_in_place = reserved;
    }

    /// Whether this state's reserved columns hold `other`'s customers too
    /// without growing.
    fn has_room_for(&self, other: &PartialState) -> bool {
        self.customers.len() + other.customers.len() <= self.customers.capacity()
    }

    /// Room for `n` more customers with ids of about `id_bytes` bytes in all.
    fn reserve(&mut self, n: usize, id_bytes: usize) {
        self.customers.reserve(n);
        self.id_ends.reserve(n);
        self.ids.reserve(id_bytes);
        let (ids, ends, hasher) = (&self.ids, &self.id_ends, &self.hasher);
        self.index
            .reserve(n, |&s| hasher.hash_one(id_in(ids, ends, s as usize)));
    }

    /// The slot of customer `id`, and whether it is new (then added with no purchase).
    #[inline]
    fn customer_slot(&mut self, id: &[u8]) -> (usize, bool) {
        let hash = self.hasher.hash_one(id);
        let (ids, ends, hasher) = (&self.ids, &self.id_ends, &self.hasher);
        match self.index.entry(
            hash,
            |&s| same_bytes(id_in(ids, ends, s as usize), id),
            |&s| hasher.hash_one(id_in(ids, ends, s as usize)),
        ) {
            hash_table::Entry::Occupied(e) => (*e.get() as usize, false),
            hash_table::Entry::Vacant(e) => {
                let slot = self.customers.len();
                e.insert(slot as u32);
                self.ids.extend_from_slice(id);
                self.id_ends.push(self.ids.len());
                self.customers.push(CustomerAcc::new());
                (slot, true)
            }
        }
    }

    /// The slot of customer `id`, added with no purchase when new; the last
    /// line's customer is checked first (lines of one invoice come together).
    #[inline(always)]
    pub fn slot_of_customer(&mut self, id: &[u8]) -> u32 {
        let last = self.last_customer as usize;
        if last < self.customers.len() && same_bytes(self.id(last), id) {
            return last as u32;
        }
        let slot = self.customer_slot(id).0 as u32;
        self.last_customer = slot;
        slot
    }

    /// The slot of country `name`, the last line's checked first.
    #[inline(always)]
    pub fn slot_of_country(&mut self, name: &[u8]) -> u32 {
        let last = self.last_country;
        match self.countries.get(last as usize) {
            Some(known) if same_bytes(known, name) => last,
            _ => {
                let c = self.country_slot(name);
                self.last_country = c;
                c
            }
        }
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
                    let slot = self.customer_slot(id).0;
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
            self.add_line(
                slot,
                country_slot,
                ts[row],
                Money(amount[row]),
                invoice.value(row),
            );
        }
    }

    /// Folds one purchase line into the state: what [`absorb`](Self::absorb)
    /// does for each row of a batch.
    #[inline]
    pub fn absorb_line(
        &mut self,
        id: &[u8],
        invoice: &[u8],
        ts: i64,
        amount: Money,
        country: &[u8],
    ) {
        let slot = self.slot_of_customer(id);
        let country_slot = self.slot_of_country(country);
        let packed = PackedInvoice::of(invoice);
        if let Some(key) = packed.0 {
            if self.last_invoice == Some((slot, key)) {
                // Another line of the invoice just added: its set holds it.
                self.add_amount(slot as usize, country_slot, ts, amount);
                return;
            }
            self.last_invoice = Some((slot, key));
        }
        self.add_packed_line(slot as usize, country_slot, ts, amount, invoice, packed);
    }

    /// Folds one purchase line of customer slot `slot` and country slot
    /// `country` (from [`slot_of_customer`](Self::slot_of_customer) and
    /// [`slot_of_country`](Self::slot_of_country) of this state) into the
    /// state, its invoice packed beforehand: for a reader that resolves
    /// each distinct value once, not each line.
    #[inline]
    pub fn absorb_slots(
        &mut self,
        slot: u32,
        country: u32,
        ts: i64,
        amount: Money,
        invoice: &[u8],
        packed: PackedInvoice,
    ) {
        self.add_packed_line(slot as usize, country, ts, amount, invoice, packed);
    }

    /// Adds a purchase line to customer `slot`.
    #[inline]
    fn add_line(&mut self, slot: usize, country: u32, ts: i64, amount: Money, invoice: &[u8]) {
        self.add_packed_line(
            slot,
            country,
            ts,
            amount,
            invoice,
            PackedInvoice::of(invoice),
        );
    }

    /// [`add_line`](Self::add_line) with the invoice packed beforehand.
    #[inline(always)]
    fn add_packed_line(
        &mut self,
        slot: usize,
        country: u32,
        ts: i64,
        amount: Money,
        invoice: &[u8],
        packed: PackedInvoice,
    ) {
        let acc = &mut self.customers[slot];
        match packed.0 {
            Some(key) => add_invoice(acc, &mut self.spills, key),
            None => spill_of(acc, &mut self.spills)
                .rare_mut()
                .long_invoices
                .push(invoice.into()),
        }
        self.add_amount(slot, country, ts, amount);
    }

    /// Adds a purchase line's time, amount and country to customer `slot`
    /// (its invoice is added apart).
    #[inline(always)]
    fn add_amount(&mut self, slot: usize, country: u32, ts: i64, amount: Money) {
        let acc = &mut self.customers[slot];
        acc.first_ts = acc.first_ts.min(ts);
        acc.last_ts = acc.last_ts.max(ts);
        match acc.monetary.checked_add(amount) {
            Some(m) => acc.monetary = m,
            None => Self::note_overflow(&mut self.overflow, id_in(&self.ids, &self.id_ends, slot)),
        }
        add_country(acc, &mut self.spills, country, 1);
    }

    /// Sorts and deduplicates every invoice set; call before reading
    /// frequencies and after a series of [`absorb`](Self::absorb) calls to
    /// bound memory.
    pub fn seal(&mut self) {
        for c in &self.customers {
            normalise(c, &mut self.spills);
        }
    }

    /// Distinct invoices of customer `slot` (exact once the state is
    /// [sealed](Self::seal)): the inline one, and those of its spill or
    /// base row.
    pub fn frequency(&self, slot: usize) -> u64 {
        let c = &self.customers[slot];
        let inline = c.has_invoice() as u64;
        if let Some(row) = base_row(c.spill) {
            return inline + self.spills.base().further_invoices(row);
        }
        if c.spill == NONE {
            return inline;
        }
        let spill = &self.spills.list[c.spill as usize];
        // A spill beside a base row holds only the invoices the row lacks.
        let beside = spill.base.map_or(0, |row| {
            self.spills
                .base()
                .short_count(row as usize)
                .saturating_sub(1)
        });
        inline + (beside + spill.invoices.len() + spill.long_invoices().len()) as u64
    }

    /// [`seal`](Self::seal) for scoring, on every core: seals the state and
    /// returns each customer's frequency and most frequent country (ties:
    /// the smallest name), as a country slot
    /// ([`country_name`](Self::country_name)) per customer slot,
    /// [`NO_COUNTRY`] for a customer of no line. The spills
    /// are visited in their own order, each once (its invoices and countries
    /// together), and names are compared by their rank among the state's
    /// countries rather than byte by byte: what
    /// [`country_of`](Self::country_of) finds, without its cache misses.
    pub fn seal_with_countries(&mut self) -> Sealed {
        seal_spills(&self.customers, &self.countries, &mut self.spills)
    }

    /// The name of country slot `slot` (from
    /// [`seal_with_countries`](Self::seal_with_countries)); empty for
    /// [`NO_COUNTRY`].
    pub fn country_name(&self, slot: u32) -> &[u8] {
        self.countries
            .get(slot as usize)
            .map_or(&[][..], |n| &n[..])
    }

    /// How many countries the state names (country slots are below it).
    pub fn country_count(&self) -> usize {
        self.countries.len()
    }

    /// Merges another state into this one. The smaller of the two is
    /// folded into the larger (merging is commutative), unless one was
    /// reserved for the job ([`reserve_for_job`](Self::reserve_for_job)):
    /// the other is folded into it. The invoice sets are
    /// appended to, not normalised: frequencies are exact again after
    /// [`seal`](Self::seal), which sorts only the sets that need it (so a
    /// customer's set is not sorted again at each of many merges).
    pub fn merge(&mut self, mut other: PartialState) {
        if !self.takes_in(&other) {
            std::mem::swap(self, &mut other);
        }
        if let Some(id) = &other.overflow {
            Self::note_overflow(&mut self.overflow, id);
        }
        self.ledger.merge(std::mem::take(&mut other.ledger));
        if self.customers.is_empty() && self.countries.is_empty() && !self.folds_in_place {
            let ledger = std::mem::take(&mut self.ledger);
            let overflow = self.overflow.take();
            let lost = self.lost_entry.take();
            *self = other;
            self.ledger = ledger;
            self.overflow = overflow;
            self.note_lost_entry(lost.as_deref());
            return;
        }
        // The other's spills are moved out of it, not copied.
        let mut other_spills = std::mem::take(&mut other.spills);
        self.fold(&other, |spill| other_spills.take(spill).map(Cow::Owned));
        // Its entry's rows were read: checked once they are.
        let lost = other_spills.base.as_ref().and_then(|b| b.cut_short());
        self.note_lost_entry(lost.or(other.lost_entry.as_deref()));
    }

    /// Whether [`merge`](Self::merge) folds `other` into this state (rather
    /// than this state into `other`): then
    /// [`merge_from`](Self::merge_from) gives the same state without
    /// consuming `other`.
    pub fn takes_in(&self, other: &PartialState) -> bool {
        // A state reserved for the job takes the other in while its room
        // holds both; else the smaller state is folded into the larger (a
        // state from the cache far larger than the room reserved for the
        // job's new files is not copied into it).
        // A decoded state at least as large as the other is never folded into
        // it: its base rows would all be made into spills.
        let keeps_base = |a: &PartialState, b: &PartialState| {
            a.spills.base.is_some() && a.customers.len() >= b.customers.len()
        };
        let self_takes_it =
            self.folds_in_place && self.has_room_for(other) && !keeps_base(other, self);
        let other_takes_it =
            other.folds_in_place && other.has_room_for(self) && !keeps_base(self, other);
        self_takes_it || !(other_takes_it || other.customers.len() > self.customers.len())
    }

    /// Folds `other` into this state, leaving `other` as it is (what it
    /// must keep is copied: the spills of customers new here, its ledger),
    /// so that it can be read meanwhile, e.g. encoded for the cache on
    /// another core. The same state as [`merge`](Self::merge) when
    /// [`takes_in`](Self::takes_in) says so.
    pub fn merge_from(&mut self, other: &PartialState) {
        if let Some(id) = &other.overflow {
            Self::note_overflow(&mut self.overflow, id);
        }
        self.ledger.merge(other.ledger.clone());
        self.fold(other, |spill| other.spills.view(spill));
        self.note_lost_entry(other.cut_entry());
    }

    /// Folds `other`'s customers into this state; `spill_of_other` gives
    /// the spill that one of `other`'s spill indexes names (moved out of
    /// it, or borrowed).
    fn fold<'o>(
        &mut self,
        other: &PartialState,
        mut spill_of_other: impl FnMut(u32) -> Option<Cow<'o, Spill>>,
    ) {
        let remap: Vec<u32> = other
            .countries
            .iter()
            .map(|name| self.country_slot(name))
            .collect();
        let remap_country = |c: u32| if c == NONE { NONE } else { remap[c as usize] };
        self.reserve(other.customers.len(), other.ids.len());
        if self.spills.base.is_some() {
            // Room for a spill per incoming customer: each may be a base
            // row made into one, or bring its own.
            self.spills.list.reserve(other.customers.len());
        }
        // First every incoming customer's slot here (new ones added): a
        // loop of lookups alone, whose cache misses overlap.
        let slots: Vec<(u32, bool)> = (0..other.customers.len())
            .map(|i| {
                let (slot, new) = self.customer_slot(id_in(&other.ids, &other.id_ends, i));
                (slot as u32, new)
            })
            .collect();
        // Then the folding, with the customers met a few steps ahead
        // fetched into the cache meanwhile.
        for (i, theirs) in other.customers.iter().enumerate() {
            if let Some(&(ahead, false)) = slots.get(i + PREFETCH_AHEAD) {
                prefetch(&self.customers[ahead as usize]);
            }
            if let Some(&(ahead, false)) = slots.get(i + PREFETCH_AHEAD / 2) {
                let spill = self.customers[ahead as usize].spill;
                if spill < BASE_ROW {
                    prefetch(&self.spills[spill as usize]);
                } else if let Some(row) = base_row(spill) {
                    self.spills.base().prefetch_ends(row);
                }
            }
            // A base row's lists, where the ends fetched above say.
            if let Some(&(ahead, false)) = slots.get(i + PREFETCH_AHEAD / 4) {
                if let Some(row) = base_row(self.customers[ahead as usize].spill) {
                    self.spills.base().prefetch_lists(row);
                }
            }
            let (slot, new) = slots[i];
            let slot = slot as usize;
            let mut theirs = theirs.clone();
            theirs.country = remap_country(theirs.country);
            let their_spill = spill_of_other(theirs.spill);
            if new {
                if let Some(sp) = their_spill {
                    let mut sp = sp.into_owned();
                    if let Some(rare) = sp.rare.as_mut() {
                        for c in rare.countries.iter_mut() {
                            c.0 = remap_country(c.0);
                        }
                    }
                    theirs.spill = self.spills.len() as u32;
                    self.spills.push(sp);
                }
                self.customers[slot] = theirs;
                continue;
            }
            let ours = &mut self.customers[slot];
            ours.first_ts = ours.first_ts.min(theirs.first_ts);
            ours.last_ts = ours.last_ts.max(theirs.last_ts);
            match ours.monetary.checked_add(theirs.monetary) {
                Some(m) => ours.monetary = m,
                None => {
                    Self::note_overflow(&mut self.overflow, id_in(&other.ids, &other.id_ends, i))
                }
            }
            if let Some(k) = theirs.inline_invoice() {
                add_invoice(ours, &mut self.spills, k);
            }
            if theirs.country != NONE {
                add_country(ours, &mut self.spills, theirs.country, theirs.country_lines);
            }
            if let Some(sp) = their_spill {
                if sp.unsorted {
                    for &k in &sp.invoices {
                        add_invoice(ours, &mut self.spills, k);
                    }
                } else {
                    add_invoices(ours, &mut self.spills, &sp.invoices);
                }
                for &(c, n) in sp.countries() {
                    add_country(ours, &mut self.spills, remap_country(c), n);
                }
                if !sp.long_invoices().is_empty() {
                    let long = &mut spill_of(ours, &mut self.spills).rare_mut().long_invoices;
                    match sp {
                        Cow::Owned(sp) => {
                            long.extend(sp.rare.map(|r| r.long_invoices).unwrap_or_default())
                        }
                        Cow::Borrowed(sp) => long.extend(sp.long_invoices().iter().cloned()),
                    }
                }
            }
        }
    }

    /// The customers (their frequencies: [`frequency`](Self::frequency));
    /// customer `i`'s id is [`id(i)`](Self::id).
    pub fn customers(&self) -> &[CustomerAcc] {
        &self.customers
    }

    /// The customer's most frequent country (ties: the smallest bytes).
    pub fn country_of(&self, acc: &CustomerAcc) -> &[u8] {
        let mut best: Option<(&[u8], u64)> = None;
        let inline = (acc.country != NONE).then_some((acc.country, acc.country_lines));
        let spill = self.spills.view(acc.spill);
        let spilled = spill.as_ref().map_or(&[][..], |s| s.countries());
        for (c, n) in inline.into_iter().chain(spilled.iter().copied()) {
            let name: &[u8] = &self.countries[c as usize];
            best = match best {
                Some((bn, bc)) if bc > n || (bc == n && bn <= name) => Some((bn, bc)),
                _ => Some((name, n)),
            };
        }
        best.map(|b| b.0).unwrap_or(b"")
    }

    /// Schema of a state as an Arrow batch: a row per customer with its id,
    /// first and last purchase, revenue, its invoices as packed keys (sorted;
    /// 16 bytes each, little-endian, as a cache entry keeps them), those over
    /// 15 bytes apart (sorted), and its countries with their line counts.
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
            list("invoices", DataType::FixedSizeBinary(INVOICE_KEY_BYTES)),
            list("long_invoices", DataType::Binary),
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
        self.to_record_batch_with(&self.ledger)
    }

    /// The state as one Arrow batch with `ledger` in place of its own (a
    /// cache entry's ledger is numbered apart from the run's).
    pub fn to_record_batch_with(&self, ledger: &LineLedger) -> RecordBatch {
        let n = self.customers.len();
        let mut ids = BinaryBuilder::with_capacity(n, self.ids.len());
        // Room for the inline invoices and the spills' (a base row's are
        // counted as they come).
        let invoice_count: usize = n + self
            .spills
            .list
            .iter()
            .map(|s| s.invoices.len())
            .sum::<usize>();
        // Each customer's packed invoices, sorted (the inline one among
        // them): the key's bytes, little-endian, as a cache entry keeps them.
        let mut keys: Vec<u8> = Vec::with_capacity(invoice_count * INVOICE_KEY_BYTES as usize);
        let mut key_ends: Vec<i32> = Vec::with_capacity(n + 1);
        key_ends.push(0);
        let mut long_invoices = ListBuilder::new(BinaryBuilder::new())
            .with_field(Arc::new(Field::new("item", DataType::Binary, false)));
        let mut countries = ListBuilder::with_capacity(BinaryBuilder::with_capacity(n, n * 8), n)
            .with_field(Arc::new(Field::new("item", DataType::Binary, false)));
        let mut country_lines = ListBuilder::with_capacity(UInt64Builder::with_capacity(n), n)
            .with_field(Arc::new(Field::new("item", DataType::UInt64, false)));
        let mut first = Vec::with_capacity(n);
        let mut last = Vec::with_capacity(n);
        let mut monetary = Vec::with_capacity(n);
        for (i, c) in self.customers.iter().enumerate() {
            ids.append_value(self.id(i));
            first.push(c.first_ts);
            last.push(c.last_ts);
            monetary.push(c.monetary.0);
            let inline = c.inline_invoice();
            if c.country != NONE {
                countries
                    .values()
                    .append_value(&self.countries[c.country as usize]);
                country_lines.values().append_value(c.country_lines);
            }
            if let Some(spill) = self.spills.view(c.spill) {
                // Canonical lists even from a state merged but not sealed.
                let (short, long) = spill.normalised_invoices();
                let mut pending = inline;
                for &k in short.iter() {
                    if Some(k) == inline {
                        continue;
                    }
                    if let Some(p) = pending.filter(|&p| p < k) {
                        keys.extend_from_slice(&p.to_le_bytes());
                        pending = None;
                    }
                    keys.extend_from_slice(&k.to_le_bytes());
                }
                if let Some(p) = pending {
                    keys.extend_from_slice(&p.to_le_bytes());
                }
                for inv in long.iter() {
                    long_invoices.values().append_value(inv);
                }
                for &(country, lines) in spill.countries() {
                    countries
                        .values()
                        .append_value(&self.countries[country as usize]);
                    country_lines.values().append_value(lines);
                }
            } else if let Some(k) = inline {
                keys.extend_from_slice(&k.to_le_bytes());
            }
            key_ends.push(
                i32::try_from(keys.len() / INVOICE_KEY_BYTES as usize)
                    .expect("a batch holds fewer than 2^31 invoices"),
            );
            long_invoices.append(true);
            countries.append(true);
            country_lines.append(true);
        }
        let keys = FixedSizeBinaryArray::try_new(INVOICE_KEY_BYTES, Buffer::from_vec(keys), None)
            .expect("whole invoice keys");
        let invoices = ListArray::try_new(
            Arc::new(Field::new(
                "item",
                DataType::FixedSizeBinary(INVOICE_KEY_BYTES),
                false,
            )),
            OffsetBuffer::new(ScalarBuffer::from(key_ends)),
            Arc::new(keys),
            None,
        )
        .expect("invoice lists match their keys");
        let mut metadata = std::collections::HashMap::new();
        metadata.insert(
            Self::LEDGER_KEY.to_string(),
            serde_json::to_string(ledger).expect("ledger serialises"),
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
            Arc::new(invoices),
            Arc::new(long_invoices.finish()),
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
        // Room for every batch's customers at once (the transport may split
        // a state into several batches): the index never grows mid-way.
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let id_bytes: usize = batches
            .iter()
            .filter_map(|b| b.columns().first()?.as_binary_opt::<i32>())
            .map(|ids| ids.value_data().len())
            .sum();
        state.reserve(rows, id_bytes);
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
            let long_invoices = batch.column(5).as_list::<i32>();
            let countries = batch.column(6).as_list::<i32>();
            let lines = batch.column(7).as_list::<i32>();
            let invoice_keys = invoices.values().as_fixed_size_binary();
            let long_values = long_invoices.values().as_binary::<i32>();
            let country_values = countries.values().as_binary::<i32>();
            let line_values = lines.values().as_primitive::<UInt64Type>();
            // Room for the spills at once: a customer of more than one
            // invoice or country has one.
            let spilled = (0..batch.num_rows())
                .filter(|&row| {
                    range_of(invoices.value_offsets(), row).len() > 1
                        || !range_of(long_invoices.value_offsets(), row).is_empty()
                        || range_of(countries.value_offsets(), row).len() > 1
                })
                .count();
            state.spills.reserve(spilled);
            for row in 0..batch.num_rows() {
                let id = ids.value(row);
                if !is_customer_text(id) {
                    return Err(Error::BadState(format!(
                        "customer id {:?} is not normalised text (UTF-8, no control character)",
                        String::from_utf8_lossy(id)
                    )));
                }
                let (slot, new) = state.customer_slot(id);
                if !new {
                    return Err(Error::BadState("duplicate customer id".into()));
                }
                let mut acc = CustomerAcc::new();
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
                // The packed invoices, sorted and distinct: the first
                // inline, the others in the spill as they come.
                let listed = range_of(invoices.value_offsets(), row);
                let mut previous: Option<InvoiceKey> = None;
                for i in listed.clone() {
                    let bytes: [u8; INVOICE_KEY_BYTES as usize] = invoice_keys
                        .value(i)
                        .try_into()
                        .expect("a key of the schema's width");
                    let k = InvoiceKey::from_le_bytes(bytes);
                    if !is_packed_invoice(k) {
                        return Err(Error::BadState(format!(
                            "customer {:?}: an invoice key that no invoice packs to",
                            String::from_utf8_lossy(id)
                        )));
                    }
                    if previous.is_some_and(|p| p >= k) {
                        return Err(Error::BadState(format!(
                            "customer {:?}: invoices not sorted and distinct",
                            String::from_utf8_lossy(id)
                        )));
                    }
                    if previous.is_none() {
                        acc.invoice = k;
                    } else {
                        let spill = spill_of(&mut acc, &mut state.spills);
                        if spill.invoices.is_empty() {
                            spill.invoices.reserve_exact(listed.len() - 1);
                        }
                        spill.invoices.push(k);
                    }
                    previous = Some(k);
                }
                let mut previous: Option<&[u8]> = None;
                for i in range_of(long_invoices.value_offsets(), row) {
                    let v = long_values.value(i);
                    if pack_invoice(v).is_some() || previous.is_some_and(|p| p >= v) {
                        return Err(Error::BadState(format!(
                            "customer {:?}: long invoices not sorted, distinct and over 15 bytes",
                            String::from_utf8_lossy(id)
                        )));
                    }
                    spill_of(&mut acc, &mut state.spills)
                        .rare_mut()
                        .long_invoices
                        .push(v.into());
                    previous = Some(v);
                }
                let names = range_of(countries.value_offsets(), row);
                let counts = range_of(lines.value_offsets(), row);
                if names.len() != counts.len() {
                    return Err(Error::BadState(
                        "countries and country_lines differ in length".into(),
                    ));
                }
                for (i, j) in names.zip(counts) {
                    let c = state.slot_of_country(country_values.value(i));
                    add_country(&mut acc, &mut state.spills, c, line_values.value(j));
                }
                normalise(&acc, &mut state.spills);
                state.customers[slot] = acc;
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

    /// A state batch with `column` (4: invoice keys, 5: long invoices) put
    /// in place of its own.
    fn with_column(batch: &RecordBatch, column: usize, lists: ArrayRef) -> RecordBatch {
        let mut columns = batch.columns().to_vec();
        columns[column] = lists;
        RecordBatch::try_new(batch.schema(), columns).unwrap()
    }

    /// An invoice list column of one row holding `keys`.
    fn key_lists(keys: &[u128]) -> ArrayRef {
        let bytes: Vec<u8> = keys.iter().flat_map(|k| k.to_le_bytes()).collect();
        let values =
            FixedSizeBinaryArray::try_new(INVOICE_KEY_BYTES, Buffer::from_vec(bytes), None)
                .unwrap();
        let field = Arc::new(Field::new(
            "item",
            DataType::FixedSizeBinary(INVOICE_KEY_BYTES),
            false,
        ));
        let ends = OffsetBuffer::new(ScalarBuffer::from(vec![0, keys.len() as i32]));
        Arc::new(ListArray::try_new(field, ends, Arc::new(values), None).unwrap())
    }

    #[test]
    fn invoices_travel_packed_and_forged_lists_are_refused() {
        let long = "INVOICE-NUMBER-LONGER-THAN-15";
        let state = state_of_lines(&[
            ("A", "20", "France"),
            ("A", long, "France"),
            ("A", "10", "Spain"),
        ]);
        let batch = state.to_record_batch();
        // The inline invoice among the others, in order; the long one apart.
        let keys = batch.column(4).as_list::<i32>().value(0);
        let keys: Vec<u128> = (0..keys.len())
            .map(|i| {
                let k = keys.as_fixed_size_binary().value(i);
                u128::from_le_bytes(k.try_into().unwrap())
            })
            .collect();
        let (ten, twenty) = (pack_invoice(b"10").unwrap(), pack_invoice(b"20").unwrap());
        assert_eq!(keys, [ten, twenty]);
        assert_eq!(batch.column(5).as_list::<i32>().value(0).len(), 1);
        let back = over_the_wire(&state).unwrap();
        assert_eq!(figures(&back), figures(&state));
        assert_eq!(back.to_record_batch(), batch);
        // Split by the transport: the same state.
        let many = batch.slice(0, 1);
        let back = PartialState::from_record_batches(&batch.schema(), &[many]).unwrap();
        assert_eq!(figures(&back), figures(&state));

        let refused = |forged: RecordBatch, why: &str| {
            let err = PartialState::from_record_batches(&forged.schema(), &[forged])
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{err}");
        };
        refused(
            with_column(&batch, 4, key_lists(&[twenty, ten])),
            "not sorted and distinct",
        );
        refused(
            with_column(&batch, 4, key_lists(&[ten, ten])),
            "not sorted and distinct",
        );
        // Bytes past the invoice's length, or a length over 15.
        refused(
            with_column(&batch, 4, key_lists(&[ten | 1])),
            "no invoice packs to",
        );
        refused(
            with_column(&batch, 4, key_lists(&[16u128 << 120])),
            "no invoice packs to",
        );
        // A short invoice among the long ones.
        let mut short = ListBuilder::new(BinaryBuilder::new()).with_field(Arc::new(Field::new(
            "item",
            DataType::Binary,
            false,
        )));
        short.values().append_value(b"30");
        short.append(true);
        refused(
            with_column(&batch, 5, Arc::new(short.finish())),
            "over 15 bytes",
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

    /// A state of purchase lines `(customer, invoice, country)`, one unit each.
    fn state_of_lines(lines: &[(&str, &str, &str)]) -> PartialState {
        let ids: BinaryArray = lines.iter().map(|l| Some(l.0.as_bytes())).collect();
        let invoices: BinaryArray = lines.iter().map(|l| Some(l.1.as_bytes())).collect();
        let countries: BinaryArray = lines.iter().map(|l| Some(l.2.as_bytes())).collect();
        let amounts = Decimal128Array::from(vec![money::ONE; lines.len()])
            .with_precision_and_scale(38, money::SCALE as i8)
            .unwrap();
        let ts: Vec<i64> = (0..lines.len() as i64).collect();
        let batch = RecordBatch::try_new(
            crate::parse::purchase_schema(),
            vec![
                Arc::new(ids),
                Arc::new(invoices),
                Arc::new(Int64Array::from(ts)),
                Arc::new(amounts),
                Arc::new(countries),
            ],
        )
        .unwrap();
        let mut state = PartialState::new();
        state.absorb(&batch);
        state.seal();
        state
    }

    /// (id, frequency, country, monetary units) of every customer, by id
    /// (frequencies read after sealing).
    fn figures(state: &PartialState) -> Vec<(String, u64, String, i128)> {
        // Sealed for scoring, with each customer's country: the same as
        // `seal` then `country_of`.
        let mut for_scoring = state.clone();
        let sealed = for_scoring.seal_with_countries();
        let mut state = state.clone();
        state.seal();
        for (i, &slot) in sealed.countries.iter().enumerate() {
            let c = &state.customers()[i];
            assert_eq!(for_scoring.country_name(slot), state.country_of(c));
            assert_eq!(sealed.frequencies[i], state.frequency(i));
            assert_eq!(for_scoring.frequency(i), state.frequency(i));
        }
        let state = &state;
        let mut out: Vec<_> = (0..state.customer_count())
            .map(|i| {
                let c = &state.customers()[i];
                (
                    String::from_utf8(state.id(i).to_vec()).unwrap(),
                    state.frequency(i),
                    String::from_utf8(state.country_of(c).to_vec()).unwrap(),
                    c.monetary.0 / money::ONE,
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn invoices_and_countries_beyond_the_first_merge_exactly_in_any_order() {
        let long = "INVOICE-NUMBER-LONGER-THAN-15";
        // Customer A: invoices 1, 2, 3 and the long one (1 and the long one in
        // both halves, 1, 2 and 3 repeated); lines: France 3, Spain 3, EIRE 2,
        // Belgium 2: the tie goes to the smaller name, France. Customer B: one invoice, one
        // country, in the second half only. Customer C: invoice 9 in both
        // halves, Japan 1 then Germany 2.
        let a = [
            ("A", "1", "Spain"),
            ("A", "1", "France"),
            ("C", "9", "Japan"),
            ("A", "2", "Spain"),
            ("A", "2", "EIRE"),
            ("A", "1", "France"),
            ("A", long, "Spain"),
        ];
        let b = [
            ("A", "3", "France"),
            ("B", "7", "Portugal"),
            ("C", "9", "Germany"),
            ("C", "9", "Germany"),
            ("A", "1", "EIRE"),
            ("A", long, "Belgium"),
            ("A", "3", "Belgium"),
        ];
        let want = vec![
            ("A".to_string(), 4, "France".to_string(), 10),
            ("B".to_string(), 1, "Portugal".to_string(), 1),
            ("C".to_string(), 1, "Germany".to_string(), 3),
        ];
        let all: Vec<_> = a.iter().chain(b.iter()).copied().collect();
        assert_eq!(figures(&state_of_lines(&all)), want);
        let mut ab = state_of_lines(&a);
        ab.merge(state_of_lines(&b));
        assert_eq!(figures(&ab), want);
        let mut ba = over_the_wire(&state_of_lines(&b)).unwrap();
        ba.merge(over_the_wire(&state_of_lines(&a)).unwrap());
        assert_eq!(figures(&ba), want);
        assert_eq!(figures(&over_the_wire(&ba).unwrap()), want);
        // Every line alone, merged one by one.
        let mut single = PartialState::new();
        for line in all.iter().rev() {
            single.merge(over_the_wire(&state_of_lines(&[*line])).unwrap());
        }
        assert_eq!(figures(&single), want);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 500, failure_persistence: None, .. Default::default() })]

        /// Lines folded one by one (the repeated-invoice shortcut), with a
        /// state merged in halfway (larger or smaller, so the slots may
        /// change hands), give the figures of the same lines in one batch.
        #[test]
        fn lines_folded_one_by_one_match_one_batch(
            lines in proptest::collection::vec(
                (0usize..4, 0usize..4, 0usize..2),
                0..40,
            ),
            merged in proptest::collection::vec((0usize..6, 0usize..4, 0usize..2), 0..12),
            cut in 0usize..40,
        ) {
            let ids = ["A", "B", "C", "D", "E", "F"];
            let invoices = ["1", "2", "C3", "INVOICE-NUMBER-LONGER-THAN-15"];
            let countries = ["X", "Y"];
            let text = |l: &[(usize, usize, usize)]| -> Vec<(&str, &str, &str)> {
                l.iter().map(|&(i, v, c)| (ids[i], invoices[v], countries[c])).collect()
            };
            let (lines, merged) = (text(&lines), text(&merged));
            let cut = cut.min(lines.len());
            let mut state = PartialState::new();
            let fold = |state: &mut PartialState, ls: &[(&str, &str, &str)]| {
                for (k, l) in ls.iter().enumerate() {
                    state.absorb_line(l.0.as_bytes(), l.1.as_bytes(), k as i64, Money(money::ONE), l.2.as_bytes());
                }
            };
            fold(&mut state, &lines[..cut]);
            // The same merge by reference, the state merged in left as it was.
            let merged_state = state_of_lines(&merged);
            let mut by_reference = state.clone();
            by_reference.merge_from(&merged_state);
            proptest::prop_assert_eq!(figures(&merged_state), figures(&state_of_lines(&merged)));
            state.merge(merged_state);
            fold(&mut state, &lines[cut..]);
            fold(&mut by_reference, &lines[cut..]);
            state.seal();
            let all: Vec<_> = lines.iter().chain(merged.iter()).copied().collect();
            let want = figures(&state_of_lines(&all));
            proptest::prop_assert_eq!(figures(&state), want.clone());
            proptest::prop_assert_eq!(figures(&by_reference), want);
        }
    }

    #[test]
    fn states_merged_out_of_order_seal_and_encode_as_those_merged_in_order() {
        // One customer buying invoices 10..40 (one line each), a chunk per
        // five invoices; and one more invoice repeated across two chunks.
        let lines: Vec<(String, String)> = (10..40)
            .map(|i| ("A".to_string(), i.to_string()))
            .chain([("A".to_string(), "25".to_string())])
            .collect();
        let chunks: Vec<PartialState> = lines
            .chunks(5)
            .map(|c| {
                let c: Vec<_> = c
                    .iter()
                    .map(|(id, inv)| (id.as_str(), inv.as_str(), "France"))
                    .collect();
                state_of_lines(&c)
            })
            .collect();
        let merge_all = |order: &mut dyn Iterator<Item = &PartialState>| {
            let mut acc = PartialState::new();
            for s in order {
                acc.merge(s.clone());
            }
            acc
        };
        let forward = merge_all(&mut chunks.iter());
        let backward = merge_all(&mut chunks.iter().rev());
        assert_eq!(figures(&backward), figures(&forward));
        assert_eq!(figures(&forward)[0].1, 30);
        // Encoded before sealing, a state is as after it.
        for state in [forward, backward] {
            let mut sealed = state.clone();
            sealed.seal();
            assert_eq!(sealed.frequency(0), 30);
            assert_eq!(state.to_record_batch(), sealed.to_record_batch());
            assert_eq!(figures(&over_the_wire(&state).unwrap()), figures(&sealed));
        }
    }

    #[test]
    fn a_state_reserved_for_the_job_folds_every_merge_into_its_own_columns() {
        let small = || state_of_lines(&[("A", "1", "France"), ("B", "2", "Spain")]);
        let large = || {
            state_of_lines(&[
                ("A", "3", "France"),
                ("C", "4", "EIRE"),
                ("D", "5", "EIRE"),
                ("E", "6", "Japan"),
            ])
        };
        let mut plain = small();
        plain.merge(large());
        let want = figures(&plain);
        for first_large in [false, true] {
            let mut job = PartialState::new();
            job.reserve_for_job(64 * INPUT_BYTES_PER_CUSTOMER as u64);
            let columns = job.customers.as_ptr();
            assert!(job.customers.capacity() >= 64);
            let (a, b) = if first_large {
                (large(), small())
            } else {
                (small(), large())
            };
            // The first merge into the empty state, then a larger one.
            job.merge(a);
            job.merge(b);
            assert_eq!(job.customers.as_ptr(), columns, "the columns never moved");
            // Merged into another state, it stays the one folded into.
            let mut other = small();
            other.merge(job);
            assert_eq!(other.customers.as_ptr(), columns);
            let mut twice = plain.clone();
            twice.merge(small());
            assert_eq!(figures(&other), figures(&twice));
        }
        assert_eq!(figures(&plain), want);
        // A state larger than the room is not copied into it: the reserved
        // state is folded into the larger one, whose columns stay.
        let mut job = PartialState::new();
        job.reserve_for_job(2 * INPUT_BYTES_PER_CUSTOMER as u64);
        let reserved = job.customers.as_ptr();
        job.merge(small());
        assert_eq!(job.customers.as_ptr(), reserved, "small enough to fold in");
        let mut bigger = large();
        bigger.merge(small());
        let columns = bigger.customers.as_ptr();
        let (capacity, len) = (job.customers.capacity(), bigger.customers.len());
        assert!(capacity < len + job.customers.len(), "{capacity} {len}");
        job.merge(bigger);
        assert_eq!(
            job.customers.as_ptr(),
            columns,
            "the larger state's columns"
        );
        let mut three = small();
        three.merge(large());
        three.merge(small());
        assert_eq!(figures(&job), figures(&three));
        // No room for an empty input; a state with customers is left as it is.
        let mut none = PartialState::new();
        none.reserve_for_job(0);
        none.merge(small());
        assert_eq!(none.customer_count(), 2);
        let mut full = small();
        full.reserve_for_job(1 << 30);
        assert!(!full.folds_in_place);
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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, failure_persistence: None, .. Default::default() })]

        /// The key is the length byte then the bytes, big-endian and
        /// zero-padded, for every length: the order (sorted invoice sets)
        /// and the encoded states stay the same.
        #[test]
        fn invoice_keys_are_length_then_bytes(
            inv in proptest::collection::vec(proptest::num::u8::ANY, 0..=15),
        ) {
            let mut bytes = [0u8; 16];
            bytes[0] = inv.len() as u8;
            bytes[1..1 + inv.len()].copy_from_slice(&inv);
            proptest::prop_assert_eq!(pack_invoice(&inv), Some(u128::from_be_bytes(bytes)));
            proptest::prop_assert!(is_packed_invoice(pack_invoice(&inv).unwrap()));
            proptest::prop_assert_eq!(unpack_invoice(pack_invoice(&inv).unwrap()), inv);
        }
    }
}
