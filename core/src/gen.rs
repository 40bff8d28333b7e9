//! Deterministic synthetic transactions in the UCI Online Retail layout, for
//! the README, tests and benchmarks (`rfm gen`).
//!
//! Lines come in invoices (same customer, timestamp and country); about a
//! quarter of the lines have no customer, 2 % are cancellations (`C` prefix,
//! negative quantity), a few have a zero price or a non-positive quantity.
//! Customers (one per ~120 lines, 5- and 6-digit ids) buy with a heavy-tailed
//! frequency; timestamps rise through the file over one year; descriptions
//! include quoted commas, `""` escapes and ISO-8859-1 bytes. The output is a
//! pure function of (rows, seed, options): blocks of lines are generated in
//! parallel, each from its own seed.
//!
//! [`GenOptions::customer_per_invoice`] makes every invoice a new customer (the
//! high-cardinality benchmark): each line that has a customer gets its
//! invoice number, without the `C` of a cancellation, as its customer id.

use std::io::Write;

use rayon::prelude::*;

use crate::date;

/// Lines per independently seeded block.
const BLOCK_LINES: u64 = 1 << 16;

pub const HEADER: &[u8] =
    b"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n";

const COUNTRIES: [(&str, u32); 12] = [
    ("United Kingdom", 900),
    ("Germany", 22),
    ("France", 20),
    ("Spain", 8),
    ("Belgium", 6),
    ("Switzerland", 5),
    ("Portugal", 5),
    ("Netherlands", 3),
    ("Australia", 2),
    ("EIRE", 2),
    ("Channel Islands", 2),
    ("Japan", 2),
];

const WORDS: [&str; 16] = [
    "WHITE",
    "RED",
    "VINTAGE",
    "HEART",
    "LANTERN",
    "BAG",
    "CANDLE",
    "GLASS",
    "METAL",
    "PAPER",
    "STAR",
    "CHRISTMAS",
    "PARTY",
    "FLORAL",
    "JUMBO",
    "TIN",
];

/// A small, fast, seedable generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    #[inline]
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    #[inline]
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }
    #[inline]
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One product of the catalogue.
struct Product {
    code: String,
    description: Vec<u8>,
    price: String,
}

fn catalogue(seed: u64) -> Vec<Product> {
    let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(7));
    (0..2000)
        .map(|i| {
            let w = |rng: &mut Rng| WORDS[rng.below(WORDS.len() as u64) as usize];
            let mut description =
                format!("{} {} {}", w(&mut rng), w(&mut rng), w(&mut rng)).into_bytes();
            let u = rng.unit();
            if u < 0.08 {
                description =
                    format!("\"SET OF {}, {}\"", 2 + rng.below(10), w(&mut rng)).into_bytes();
            } else if u < 0.09 {
                description = format!("\"{} 12\"\" RECORD\"", w(&mut rng)).into_bytes();
            } else if u < 0.10 {
                description = b"CR\xc8ME BR\xdbL\xc9E DISH".to_vec();
            }
            let cents = (rng.unit() * rng.unit() * 1500.0) as u64 + 1;
            let price = if i % 50 == 7 {
                format!("{}.{:03}", cents / 1000, cents % 1000)
            } else {
                let s = format!("{}.{:02}", cents / 100, cents % 100);
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            };
            let suffix = if rng.below(5) == 0 { "A" } else { "" };
            Product {
                code: format!("{}{suffix}", 10000 + rng.below(89999)),
                description,
                price,
            }
        })
        .collect()
}

/// Variants of the generated data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenOptions {
    /// Each line's customer id is its invoice number without the `C` (lines
    /// without a customer keep none): one customer per invoice.
    pub customer_per_invoice: bool,
}

struct Plan {
    rows: u64,
    options: GenOptions,
    customers: u64,
    seed: u64,
    products: Vec<Product>,
    country_table: Vec<u8>,
    days: Vec<String>,
}

fn customer_id(index: u64) -> u64 {
    // Mostly 5-digit ids from 12346 on; every seventh customer a 6-digit id.
    if index % 7 == 3 {
        900_000 + index
    } else {
        12_346 + index
    }
}

impl Plan {
    fn new(rows: u64, seed: u64, options: GenOptions) -> Plan {
        let mut country_table = Vec::new();
        for (i, (_, w)) in COUNTRIES.iter().enumerate() {
            country_table.extend(std::iter::repeat_n(i as u8, *w as usize));
        }
        // Business days from 2010-12-01 to 2011-12-09 (no Saturdays), as M/D/YYYY text.
        let first = date::days_from_civil(2010, 12, 1);
        let last = date::days_from_civil(2011, 12, 9);
        let days = (first..=last)
            .filter(|d| (d + 3).rem_euclid(7) != 5)
            .map(|d| {
                let (y, m, dd) = date::civil_from_days(d);
                format!("{m}/{dd}/{y}")
            })
            .collect();
        Plan {
            rows,
            options,
            customers: (rows / 120).max(1),
            seed,
            products: catalogue(seed),
            country_table,
            days,
        }
    }

    /// A customer index with a heavy tail: a few customers buy very often.
    fn pick_customer(&self, rng: &mut Rng) -> u64 {
        let u = rng.unit();
        ((u * u * u) * self.customers as f64) as u64 % self.customers
    }

    fn country_of(&self, customer: u64) -> usize {
        let mut r = Rng::new(customer ^ self.seed.rotate_left(17));
        self.country_table[r.below(self.country_table.len() as u64) as usize] as usize
    }

    fn block(&self, index: u64) -> Vec<u8> {
        let start = index * BLOCK_LINES;
        let lines = BLOCK_LINES.min(self.rows - start);
        let mut rng = Rng::new(self.seed.wrapping_mul(0x1000_0000_01B3) ^ index);
        let mut out = Vec::with_capacity(lines as usize * 90);
        let blocks = self.rows.div_ceil(BLOCK_LINES);
        let mut invoice = 536_365 + index * BLOCK_LINES;
        let mut done = 0;
        while done < lines {
            let size = (1 + rng.below(12) + rng.below(12) * rng.below(3)).min(lines - done);
            let kind = rng.below(100);
            let customer = self.pick_customer(&mut rng);
            let (cust_text, cancel) = if kind < 25 {
                (String::new(), false)
            } else if self.options.customer_per_invoice {
                (invoice.to_string(), kind < 27)
            } else {
                (customer_id(customer).to_string(), kind < 27)
            };
            let mut country = self.country_of(customer);
            if kind < 25 || rng.below(100) == 0 {
                country = rng.below(COUNTRIES.len() as u64) as usize;
            }
            // Time rises through the file: this invoice's place in the whole.
            let at = (start + done) as f64 / self.rows as f64;
            let day = ((at * self.days.len() as f64) as usize).min(self.days.len() - 1);
            let minute = 7 * 60 + ((index * 7919 + done) % (13 * 60)) as usize;
            let ts = format!("{} {}:{:02}", self.days[day], minute / 60, minute % 60);
            let _ = blocks;
            for _ in 0..size {
                let p =
                    &self.products[(rng.below(40) * rng.below(50)) as usize % self.products.len()];
                let mut qty = [1i64, 2, 3, 4, 6, 8, 10, 12, 24, 48][rng.below(10) as usize];
                // Cancellations, and a few damaged-goods lines, carry negative quantities.
                if cancel || rng.below(2000) == 0 {
                    qty = -qty;
                }
                let price: &str = if rng.below(1000) == 0 { "0" } else { &p.price };
                if cancel {
                    out.push(b'C');
                }
                let _ = write!(out, "{invoice},{},", p.code);
                out.extend_from_slice(&p.description);
                let _ = writeln!(
                    out,
                    ",{qty},{ts},{price},{cust_text},{}",
                    COUNTRIES[country].0
                );
            }
            invoice += 1;
            done += size;
        }
        out
    }
}

/// Writes `rows` data lines (plus the header) generated from `seed`.
pub fn generate(rows: u64, seed: u64, out: impl Write) -> std::io::Result<()> {
    generate_with(rows, seed, GenOptions::default(), out)
}

/// [`generate`] with variants of the data ([`GenOptions`]).
pub fn generate_with(
    rows: u64,
    seed: u64,
    options: GenOptions,
    mut out: impl Write,
) -> std::io::Result<()> {
    out.write_all(HEADER)?;
    if rows == 0 {
        return out.flush();
    }
    let plan = Plan::new(rows, seed, options);
    let blocks = rows.div_ceil(BLOCK_LINES);
    // Generate a window of blocks in parallel, write it in order, go on.
    let window = (rayon::current_num_threads() as u64 * 4).max(4);
    let mut next = 0;
    while next < blocks {
        let upto = (next + window).min(blocks);
        let parts: Vec<Vec<u8>> = (next..upto)
            .into_par_iter()
            .map(|b| plan.block(b))
            .collect();
        for p in parts {
            out.write_all(&p)?;
        }
        next = upto;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_and_exact_row_count() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        generate(70_000, 7, &mut a).unwrap();
        generate(70_000, 7, &mut b).unwrap();
        assert_eq!(a, b);
        let mut c = Vec::new();
        generate(70_000, 8, &mut c).unwrap();
        assert_ne!(a, c);
        // Rows = lines minus the header (descriptions hold no line breaks).
        assert_eq!(memchr::memchr_iter(b'\n', &a).count(), 70_001);
    }

    #[test]
    fn customer_per_invoice_gives_each_invoice_its_own_customer() {
        let options = GenOptions {
            customer_per_invoice: true,
        };
        let mut out = Vec::new();
        generate_with(20_000, 3, options, &mut out).unwrap();
        let mut plain = Vec::new();
        generate(20_000, 3, &mut plain).unwrap();
        let text = String::from_utf8_lossy(&out);
        let plain_text = String::from_utf8_lossy(&plain);
        let (mut with_customer, mut without) = (0, 0);
        for (line, plain_line) in text.lines().zip(plain_text.lines()).skip(1) {
            // The description may hold quoted commas: read the first field and the
            // last two, which never do.
            let fields: Vec<&str> = line.split(',').collect();
            let plain_fields: Vec<&str> = plain_line.split(',').collect();
            let invoice = fields[0];
            let customer = fields[fields.len() - 2];
            if customer.is_empty() {
                without += 1;
                assert!(plain_fields[plain_fields.len() - 2].is_empty(), "{line}");
            } else {
                with_customer += 1;
                assert_eq!(customer, invoice.trim_start_matches('C'), "{line}");
            }
            // Everything else is the plain generator's line.
            assert_eq!(
                fields[..fields.len() - 2],
                plain_fields[..plain_fields.len() - 2]
            );
            assert_eq!(
                fields[fields.len() - 1],
                plain_fields[plain_fields.len() - 1]
            );
        }
        assert!(
            with_customer > 10_000 && without > 2_000,
            "{with_customer} {without}"
        );
    }
}
