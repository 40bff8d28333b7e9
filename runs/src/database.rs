//! Runs published to PostgreSQL (by `rfm run --database-url` or a
//! coordinator), read through rfm-store's queries into the same types the
//! result folders give. Customers' monetary is the published 2-decimal
//! value, as `customers.csv` has it, so every figure derived from it is the
//! same from either source.

use std::sync::{Mutex, MutexGuard};

use rfm_core::money::{self, Money};
use rfm_core::report::RunReport;
use rfm_core::score::CutPoints;
use rfm_core::Segment;
use rfm_store::{CustomerQuery, RunWithReport, Store};

use crate::cut_points::cut_points;
use crate::error::{Error, Result};
use crate::latest;
use crate::model::{Customer, Listing, Run, RunEntry, SegmentSummary};
use crate::RunSource;

/// A PostgreSQL store of runs.
pub struct DatabaseSource {
    store: Mutex<Store>,
    /// Host, port, database and user (never the password).
    target: String,
}

impl DatabaseSource {
    /// Connects (applying any pending schema migration, as every rfm-store
    /// client does). The error names the host and port and what to check.
    pub fn connect(url: &str) -> Result<DatabaseSource> {
        let store = Store::connect(url)?;
        let target = store.target().to_string();
        Ok(DatabaseSource {
            store: Mutex::new(store),
            target,
        })
    }

    /// Host, port, database and user.
    pub fn target(&self) -> &str {
        &self.target
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while reading must not lock the store for good: the
        // connection itself is still usable.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn invalid(
        &self,
        run_id: &str,
        column: &'static str,
        value: impl ToString,
        expected: &'static str,
    ) -> Error {
        Error::DatabaseValue {
            target: self.target.clone(),
            run_id: run_id.to_string(),
            column,
            value: value.to_string(),
            expected,
        }
    }

    /// The entry of a run row: its report, with the row's identity, status,
    /// times and error.
    fn entry(&self, row: RunWithReport) -> Result<RunEntry> {
        let info = row.info;
        let mut report: RunReport = serde_json::from_value(row.report)
            .map_err(|e| self.invalid(&info.run_id, "report", e, "a run report (run.json)"))?;
        let status = info.status;
        report.run_id = info.run_id.clone();
        report.started_at = info.started_at;
        report.finished_at = info.finished_at.unwrap_or_default();
        if !status.has_results() {
            report.status = status;
            report.error = info.error.or(report.error);
        }
        Ok(RunEntry {
            key: info.run_id.clone(),
            label: info.run_id,
            status,
            report,
            latest: false,
        })
    }

    fn segment(&self, run_id: &str, name: &str) -> Result<Segment> {
        Segment::from_name(name)
            .ok_or_else(|| self.invalid(run_id, "segment", name, "one of the ten segment names"))
    }

    fn money(&self, run_id: &str, column: &'static str, text: &str) -> Result<Money> {
        money::parse_price(text.as_bytes(), b'.')
            .ok_or_else(|| self.invalid(run_id, column, text, "a decimal number"))
    }

    fn customer(&self, run_id: &str, c: rfm_store::CustomerRecord) -> Result<Customer> {
        let score = |column: &'static str, v: i16| -> Result<u8> {
            u8::try_from(v)
                .ok()
                .filter(|s| (1..=5).contains(s))
                .ok_or_else(|| self.invalid(run_id, column, v, "a score from 1 to 5"))
        };
        let time = |column: &'static str, text: &str| {
            rfm_core::date::parse_auto(text.as_bytes())
                .ok_or_else(|| self.invalid(run_id, column, text, "a time"))
        };
        Ok(Customer {
            recency: i64::from(c.recency),
            frequency: u64::try_from(c.frequency)
                .map_err(|_| self.invalid(run_id, "frequency", c.frequency, "a count"))?,
            monetary: self.money(run_id, "monetary", &c.monetary)?,
            first_purchase: time("first_purchase", &c.first_purchase)?,
            last_purchase: time("last_purchase", &c.last_purchase)?,
            r: score("r", c.r)?,
            f: score("f", c.f)?,
            m: score("m", c.m)?,
            segment: self.segment(run_id, &c.segment)?,
            customer_id: c.customer_id,
            country: c.country,
        })
    }

    fn summary(&self, run_id: &str, s: rfm_store::SegmentFigures) -> Result<SegmentSummary> {
        Ok(SegmentSummary {
            segment: self.segment(run_id, &s.segment)?,
            customers: u64::try_from(s.customers)
                .map_err(|_| self.invalid(run_id, "customers", s.customers, "a count"))?,
            revenue: self.money(run_id, "revenue", &s.revenue)?,
            customers_share: s.customers_share,
            revenue_share: s.revenue_share,
            avg_recency: s.avg_recency,
            avg_frequency: s.avg_frequency,
            avg_monetary: s.avg_monetary,
        })
    }
}

impl RunSource for DatabaseSource {
    fn describe(&self) -> String {
        format!("the database at {}", self.target)
    }

    fn list(&self) -> Result<Listing> {
        let rows = self.store().runs_with_reports()?;
        let mut runs = Vec::new();
        let mut skipped = Vec::new();
        for row in rows {
            match self.entry(row) {
                Ok(entry) => runs.push(entry),
                Err(e) => skipped.push(e.to_string()),
            }
        }
        latest::order(&mut runs);
        Ok(Listing { runs, skipped })
    }

    fn load(&self, entry: &RunEntry) -> Result<Run> {
        let mut store = self.store();
        // Re-read the run: it may have changed since listing.
        let row = store.run_with_report(&entry.key)?;
        let id = row.info.id;
        let fresh = RunEntry {
            latest: entry.latest,
            ..self.entry(row)?
        };
        let place = self.describe();
        if !fresh.status.has_results() {
            return Ok(Run::empty(fresh, place));
        }
        let customers = store.customers(&CustomerQuery {
            run: Some(id),
            ..Default::default()
        })?;
        let segments = store.segments(id)?;
        let saved = store.cut_points(id)?;
        drop(store);
        let run_id = fresh.run_id().to_string();
        let saved: Option<CutPoints> = saved
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| self.invalid(&run_id, "cut_points", e, "the cut points of a run"))?;
        let customers = customers
            .into_iter()
            .map(|c| self.customer(&run_id, c))
            .collect::<Result<Vec<_>>>()?;
        let segments = segments
            .into_iter()
            .map(|s| self.summary(&run_id, s))
            .collect::<Result<Vec<_>>>()?;
        let cut_points = cut_points(saved, &customers);
        Ok(Run {
            entry: fresh,
            place,
            customers,
            segments,
            cut_points,
        })
    }
}
