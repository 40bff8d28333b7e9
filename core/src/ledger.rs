//! The line ledger: how many lines were read, how many were purchases, how many
//! were excluded for each reason, and the first malformed lines as samples.

use serde::{Deserialize, Serialize};

/// How many malformed lines a run keeps as samples.
pub const MAX_SAMPLES: usize = 5;

/// Why a line is not a purchase line, in the spec's order of precedence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Malformed,
    MissingCustomer,
    Cancellation,
    QuantityLe0,
    PriceLe0,
    /// A purchase line dated after `--until`.
    AfterUntil,
}

/// A malformed line kept for the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MalformedSample {
    /// Index of the file among the run's inputs.
    pub file_index: u32,
    /// Byte offset of the line in its file (orders samples deterministically).
    pub offset: u64,
    /// 1-based line number in the file (the header is line 1), filled in at the end of a run.
    #[serde(default)]
    pub line: Option<u64>,
    /// The line's text (lossy UTF-8, shortened).
    pub text: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Excluded lines per reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excluded {
    pub missing_customer: u64,
    pub cancellation: u64,
    pub quantity_le_0: u64,
    pub price_le_0: u64,
    /// Purchase lines dated after `--until` (absent from older reports).
    #[serde(default)]
    pub after_until: u64,
}

impl Excluded {
    pub fn total(&self) -> u64 {
        self.missing_customer
            + self.cancellation
            + self.quantity_le_0
            + self.price_le_0
            + self.after_until
    }
}

/// The date forms one input file used, counted over its lines whose date
/// has one of them (whatever else the line holds).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateForms {
    /// `YYYY-MM-DD HH:MM[:SS]`.
    #[serde(default)]
    pub iso: u64,
    /// Slash dates valid month first only (`12/13/2010`).
    #[serde(default)]
    pub month_first: u64,
    /// Slash dates valid both ways (`1/12/2010`), read month first.
    #[serde(default)]
    pub ambiguous: u64,
    /// Slash dates valid day first only (`13/12/2010`): malformed unless a
    /// `--date-format` reads them.
    #[serde(default)]
    pub day_first: u64,
    /// Dates read by `--date-format`.
    #[serde(default)]
    pub formatted: u64,
    /// The first day-first-only date in the file: (byte offset of its line, text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_first_example: Option<(u64, String)>,
}

impl DateForms {
    pub fn merge(&mut self, other: &DateForms) {
        self.iso += other.iso;
        self.month_first += other.month_first;
        self.ambiguous += other.ambiguous;
        self.day_first += other.day_first;
        self.formatted += other.formatted;
        if let Some(o) = &other.day_first_example {
            if self.day_first_example.as_ref().is_none_or(|s| o.0 < s.0) {
                self.day_first_example = Some(o.clone());
            }
        }
    }

    /// Whether the dates make the month-first reading impossible: some
    /// fit only day first and none only month first.
    pub fn only_day_first(&self) -> bool {
        self.day_first > 0 && self.month_first == 0
    }

    /// Whether every slash date fits both readings (and was read month first).
    pub fn ambiguous_only(&self) -> bool {
        self.ambiguous > 0 && self.month_first == 0 && self.day_first == 0
    }

    /// The forms in words (`month first (M/D/YYYY H:MM)`); `None` when no
    /// date had one of them. `format` is the run's `--date-format`.
    pub fn describe(&self, format: Option<&str>) -> Option<String> {
        let mut parts = Vec::new();
        if self.formatted > 0 {
            parts.push(format!("--date-format {}", format.unwrap_or("?")));
        }
        if self.iso > 0 {
            parts.push("ISO (YYYY-MM-DD HH:MM)".to_string());
        }
        if self.month_first > 0 {
            parts.push("month first (M/D/YYYY H:MM)".to_string());
        } else if self.ambiguous > 0 {
            parts.push("ambiguous day/month, read month first (M/D/YYYY H:MM)".to_string());
        }
        if self.day_first > 0 {
            parts.push("day first (D/M/YYYY H:MM), not read".to_string());
        }
        (!parts.is_empty()).then(|| parts.join(" + "))
    }
}

/// Counts of lines by outcome plus malformed samples. Merges associatively and
/// commutatively (samples keep the ones first in input order).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineLedger {
    pub lines_read: u64,
    pub purchase_lines: u64,
    pub excluded: Excluded,
    pub malformed: u64,
    pub malformed_samples: Vec<MalformedSample>,
    /// The date forms of each input file, by file index (absent from the
    /// ledgers of older versions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dates: Vec<DateForms>,
}

impl LineLedger {
    /// The date forms of file `file_index`, made when missing.
    #[inline]
    pub fn dates_of(&mut self, file_index: u32) -> &mut DateForms {
        let i = file_index as usize;
        if self.dates.len() <= i {
            self.dates.resize_with(i + 1, DateForms::default);
        }
        &mut self.dates[i]
    }

    /// Counts a line that is not a purchase line.
    #[inline]
    pub fn exclude(&mut self, reason: Reason) {
        match reason {
            Reason::Malformed => self.malformed += 1,
            Reason::MissingCustomer => self.excluded.missing_customer += 1,
            Reason::Cancellation => self.excluded.cancellation += 1,
            Reason::QuantityLe0 => self.excluded.quantity_le_0 += 1,
            Reason::PriceLe0 => self.excluded.price_le_0 += 1,
            Reason::AfterUntil => self.excluded.after_until += 1,
        }
    }

    /// Offers a malformed sample; it is kept if it is among the first in input order.
    pub fn offer_sample(&mut self, sample: MalformedSample) {
        if self.malformed_samples.len() >= MAX_SAMPLES {
            let last = self.malformed_samples.last().expect("non-empty");
            if (sample.file_index, sample.offset) >= (last.file_index, last.offset) {
                return;
            }
        }
        self.malformed_samples.push(sample);
        self.malformed_samples
            .sort_by_key(|s| (s.file_index, s.offset));
        self.malformed_samples
            .dedup_by_key(|s| (s.file_index, s.offset));
        self.malformed_samples.truncate(MAX_SAMPLES);
    }

    /// Whether a new sample at this position would be kept (saves formatting one).
    #[inline]
    pub fn wants_sample(&self, file_index: u32, offset: u64) -> bool {
        self.malformed_samples.len() < MAX_SAMPLES
            || self
                .malformed_samples
                .last()
                .is_some_and(|l| (file_index, offset) < (l.file_index, l.offset))
    }

    pub fn merge(&mut self, other: LineLedger) {
        self.lines_read += other.lines_read;
        self.purchase_lines += other.purchase_lines;
        self.excluded.missing_customer += other.excluded.missing_customer;
        self.excluded.cancellation += other.excluded.cancellation;
        self.excluded.quantity_le_0 += other.excluded.quantity_le_0;
        self.excluded.price_le_0 += other.excluded.price_le_0;
        self.excluded.after_until += other.excluded.after_until;
        self.malformed += other.malformed;
        for (i, d) in other.dates.iter().enumerate() {
            self.dates_of(i as u32).merge(d);
        }
        for s in other.malformed_samples {
            self.offer_sample(s);
        }
    }

    /// The counts in words, zero counts left out: `1 line read, 1 cancellation`.
    pub fn describe(&self) -> String {
        if self.lines_read == 0 {
            return "no data line after the header (blank lines are skipped)".into();
        }
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut parts = vec![plural(self.lines_read, "line read", "lines read")];
        let counts = [
            (self.purchase_lines, "purchase line", "purchase lines"),
            (self.malformed, "malformed", "malformed"),
            (
                self.excluded.missing_customer,
                "missing customer",
                "missing customer",
            ),
            (self.excluded.cancellation, "cancellation", "cancellations"),
            (self.excluded.quantity_le_0, "quantity ≤ 0", "quantity ≤ 0"),
            (self.excluded.price_le_0, "price ≤ 0", "price ≤ 0"),
            (self.excluded.after_until, "after --until", "after --until"),
        ];
        for (n, one, many) in counts {
            if n > 0 {
                parts.push(plural(n, one, many));
            }
        }
        parts.join(", ")
    }

    /// `malformed / lines_read` (0 for no lines).
    pub fn malformed_share(&self) -> f64 {
        if self.lines_read == 0 {
            0.0
        } else {
            self.malformed as f64 / self.lines_read as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_counts_in_words() {
        let mut l = LineLedger {
            lines_read: 1,
            ..LineLedger::default()
        };
        l.exclude(Reason::Cancellation);
        assert_eq!(l.describe(), "1 line read, 1 cancellation");
        l.lines_read = 4;
        l.exclude(Reason::Cancellation);
        l.exclude(Reason::MissingCustomer);
        l.exclude(Reason::Malformed);
        assert_eq!(
            l.describe(),
            "4 lines read, 1 malformed, 1 missing customer, 2 cancellations"
        );
        assert!(LineLedger::default().describe().contains("no data line"));
    }
}
