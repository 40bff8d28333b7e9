//! Runs published to PostgreSQL by `rfm run --database-url` (or a
//! coordinator), read through rfm-store: the history is every run that ended
//! (published, failed or abandoned; not those still running) with the report
//! it was recorded with, and a run loads as the same [`RunData`] the result
//! files give, so every view works alike on both. A failed or abandoned run
//! shows its status and error, as a failed run folder does.
//!
//! A lost connection comes back as [`DataError::Database`] with
//! [`DataError::is_connection_lost`] true; the store reconnects on the next
//! request, and the loader retries it.

use std::sync::Mutex;

use rfm_core::money;
use rfm_core::report::RunReport;
use rfm_core::Segment;
use rfm_store::{CustomerQuery, RunStatus, RunWithReport, Store};

use crate::data::{CustomerRecord, DataError, RunData, RunEntry, SegmentRecord};
use crate::source::{Listing, Source};

/// A PostgreSQL store of runs.
pub struct DatabaseSource {
    store: Mutex<Store>,
    /// Host, port, database and user (never the password).
    target: String,
}

impl DatabaseSource {
    /// Connects (applying any pending schema migration, as every rfm-store
    /// client does). The error names the host and port and what to check.
    pub fn connect(url: &str) -> Result<DatabaseSource, rfm_store::Error> {
        let store = Store::connect(url)?;
        let target = store.target().to_string();
        Ok(DatabaseSource {
            store: Mutex::new(store),
            target,
        })
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        // A panic while loading (caught by the loader) must not lock the
        // store for good: the connection itself is still usable.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The history entry of a run row; `None` while it is running.
    fn entry(&self, row: RunWithReport) -> Result<Option<RunEntry>, DataError> {
        if row.info.status == RunStatus::Running {
            return Ok(None);
        }
        let mut report: RunReport =
            serde_json::from_value(row.report).map_err(|e| DataError::DatabaseValue {
                target: self.target.clone(),
                run_id: row.info.run_id.clone(),
                column: "report",
                value: e.to_string(),
                expected: "a run report (run.json)",
            })?;
        // The run id is the key; trust the row over the document.
        report.run_id = row.info.run_id.clone();
        if row.info.status != RunStatus::Published {
            // `failed` or `abandoned`, with why, as the row has it.
            report.status = row.info.status.to_string();
            report.error = row.info.error.clone().or(report.error);
        }
        Ok(Some(RunEntry {
            key: row.info.run_id.clone(),
            label: row.info.run_id.clone(),
            report,
        }))
    }

    fn invalid(
        &self,
        run_id: &str,
        column: &'static str,
        value: impl ToString,
        expected: &'static str,
    ) -> DataError {
        DataError::DatabaseValue {
            target: self.target.clone(),
            run_id: run_id.to_string(),
            column,
            value: value.to_string(),
            expected,
        }
    }

    fn segment(&self, run_id: &str, name: &str) -> Result<Segment, DataError> {
        Segment::from_name(name)
            .ok_or_else(|| self.invalid(run_id, "segment", name, "one of the ten segment names"))
    }

    fn customer(
        &self,
        run_id: &str,
        c: rfm_store::CustomerRecord,
    ) -> Result<CustomerRecord, DataError> {
        // The 2-decimal text, as customers.csv has it: the views then sum
        // and rank exactly the same figures from either source.
        let monetary = money::parse_price(c.monetary.as_bytes(), b'.')
            .ok_or_else(|| self.invalid(run_id, "monetary", &c.monetary, "a decimal number"))?;
        let frequency = u64::try_from(c.frequency)
            .map_err(|_| self.invalid(run_id, "frequency", c.frequency, "a count"))?;
        let score = |column: &'static str, v: i16| -> Result<u8, DataError> {
            u8::try_from(v)
                .ok()
                .filter(|s| (1..=5).contains(s))
                .ok_or_else(|| self.invalid(run_id, column, v, "a score from 1 to 5"))
        };
        Ok(CustomerRecord {
            r: score("r", c.r)?,
            f: score("f", c.f)?,
            m: score("m", c.m)?,
            segment: self.segment(run_id, &c.segment)?,
            customer_id: c.customer_id,
            recency: i64::from(c.recency),
            frequency,
            monetary_text: c.monetary,
            monetary,
            first_purchase: c.first_purchase,
            last_purchase: c.last_purchase,
            country: c.country,
            segment_name: c.segment,
        })
    }
}

impl Source for DatabaseSource {
    fn describe(&self) -> String {
        format!("database {}", self.target)
    }

    fn list_runs(&self) -> Result<Listing, DataError> {
        let rows = self.store().runs_with_reports()?;
        let mut runs = Vec::new();
        let mut skipped = Vec::new();
        for row in rows {
            match self.entry(row) {
                Ok(Some(entry)) => runs.push(entry),
                Ok(None) => {}
                Err(e) => skipped.push(e.to_string()),
            }
        }
        if runs.is_empty() {
            return Err(match skipped.is_empty() {
                true => DataError::NoDatabaseRun {
                    target: self.target.clone(),
                },
                false => DataError::DatabaseValue {
                    target: self.target.clone(),
                    run_id: "(every published run)".into(),
                    column: "report",
                    value: skipped.remove(0),
                    expected: "a run report (run.json)",
                },
            });
        }
        // Newest first by start time, as for result folders.
        runs.sort_by(|a, b| {
            b.report
                .started_at
                .cmp(&a.report.started_at)
                .then_with(|| b.report.run_id.cmp(&a.report.run_id))
        });
        Ok(Listing { runs, skipped })
    }

    fn load_run(&self, entry: &RunEntry) -> Result<RunData, DataError> {
        let mut store = self.store();
        // Re-read the run: it may have changed since listing.
        let row = store.run_with_report(&entry.key)?;
        let id = row.info.id;
        let published = row.info.status == RunStatus::Published;
        let fresh = match self.entry(row)? {
            Some(fresh) if published => fresh,
            Some(ended) => return Ok(RunData::new(ended, Vec::new(), Vec::new())),
            None => return Ok(RunData::new(entry.clone(), Vec::new(), Vec::new())),
        };
        let customers = store.customers(&CustomerQuery {
            run: Some(id),
            ..Default::default()
        })?;
        let segments = store.segments(id)?;
        drop(store);
        let run_id = fresh.key.clone();
        let customers = customers
            .into_iter()
            .map(|c| self.customer(&run_id, c))
            .collect::<Result<Vec<_>, _>>()?;
        let segments = segments
            .into_iter()
            .map(|s| {
                Ok(SegmentRecord {
                    segment: self.segment(&run_id, &s.segment)?,
                    name: s.segment,
                    customers: u64::try_from(s.customers)
                        .map_err(|_| self.invalid(&run_id, "customers", s.customers, "a count"))?,
                    customers_share: s.customers_share,
                    revenue: s.revenue,
                    revenue_share: s.revenue_share,
                    avg_recency: s.avg_recency,
                    avg_frequency: s.avg_frequency,
                    avg_monetary: s.avg_monetary,
                })
            })
            .collect::<Result<Vec<_>, DataError>>()?;
        Ok(RunData::new(fresh, customers, segments))
    }
}
