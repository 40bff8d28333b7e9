//! Reading runs back: the run list, a run's segments, customers and cut
//! points, and the latest published run (the read side, `rfm-runs`, builds
//! on these). Decimals come back as
//! text exactly as published (customers' monetary and revenue rounded to 2).

use postgres::Row;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::{RunId, RunStatus, Store};

/// One row of `rfm_runs`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunInfo {
    pub id: RunId,
    pub run_id: String,
    pub status: RunStatus,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub started_at: String,
    pub finished_at: Option<String>,
    pub input: Vec<String>,
    pub as_of: Option<String>,
    pub lines_read: i64,
    pub purchase_lines: i64,
    pub malformed: i64,
    pub customers: i64,
    /// Total revenue rounded to 2 decimals.
    pub revenue: Option<String>,
    pub error: Option<String>,
    /// True for the run the `rfm_latest_*` views show.
    pub latest: bool,
}

/// One segment of a run, as in `segments.csv`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SegmentFigures {
    pub segment: String,
    pub customers: i64,
    pub customers_share: String,
    /// Rounded to 2 decimals.
    pub revenue: String,
    /// Empty when the run's total revenue is zero.
    pub revenue_share: String,
    pub avg_recency: String,
    pub avg_frequency: String,
    pub avg_monetary: String,
}

/// One customer of a run, as in `customers.csv`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CustomerRecord {
    pub customer_id: String,
    pub recency: i32,
    pub frequency: i64,
    /// Rounded to 2 decimals.
    pub monetary: String,
    /// The exact value.
    pub monetary_exact: String,
    /// `YYYY-MM-DD HH:MM:SS`.
    pub first_purchase: String,
    pub last_purchase: String,
    pub country: String,
    pub r: i16,
    pub f: i16,
    pub m: i16,
    pub rfm_score: String,
    pub segment: String,
}

/// Which customers to read. The default is every customer of the latest published run.
#[derive(Clone, Debug, Default)]
pub struct CustomerQuery {
    /// The run (default: the latest published).
    pub run: Option<RunId>,
    pub segment: Option<String>,
    pub customer_id: Option<String>,
    pub limit: Option<i64>,
    pub offset: i64,
}

const RUN_COLUMNS: &str = "r.id, r.run_id, r.status,
    to_char(r.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
    to_char(r.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
    r.input, r.as_of::text, r.lines_read, r.purchase_lines, r.malformed, r.customers,
    round(r.revenue, 2)::text, r.error,
    r.id IS NOT DISTINCT FROM (SELECT id FROM rfm_latest_run)";

fn run_info(row: &Row) -> Result<RunInfo, postgres::Error> {
    let input: serde_json::Value = row.get(5);
    Ok(RunInfo {
        id: RunId(row.get(0)),
        run_id: row.get(1),
        status: row.try_get(2)?,
        started_at: row.get(3),
        finished_at: row.get(4),
        input: serde_json::from_value(input).unwrap_or_default(),
        as_of: row.get(6),
        lines_read: row.get(7),
        purchase_lines: row.get(8),
        malformed: row.get(9),
        customers: row.get(10),
        revenue: row.get(11),
        error: row.get(12),
        latest: row.get(13),
    })
}

const SEGMENT_COLUMNS: &str = "segment, customers, customers_share::text, round(revenue, 2)::text,
    coalesce(revenue_share::text, ''), avg_recency::text, avg_frequency::text, avg_monetary::text";

fn segment_figures(row: &Row) -> SegmentFigures {
    SegmentFigures {
        segment: row.get(0),
        customers: row.get(1),
        customers_share: row.get(2),
        revenue: row.get(3),
        revenue_share: row.get(4),
        avg_recency: row.get(5),
        avg_frequency: row.get(6),
        avg_monetary: row.get(7),
    }
}

impl Store {
    /// Every run, newest first.
    pub fn runs(&mut self) -> Result<Vec<RunInfo>> {
        let rows = self.run_rows("", None)?;
        rows.iter()
            .map(run_info)
            .collect::<Result<_, _>>()
            .map_err(self.query_err("reading the runs' status"))
    }

    /// The run with this run id (the `run_id` of `run.json`).
    pub fn run(&mut self, run_id: &str) -> Result<RunInfo> {
        let rows = self.run_rows("", Some(run_id))?;
        run_info(&rows[0]).map_err(self.query_err("reading the run's status"))
    }

    /// The latest published run, if any.
    pub fn latest_run(&mut self) -> Result<Option<RunInfo>> {
        self.ensure_connected()?;
        let sql = format!("SELECT {RUN_COLUMNS} FROM rfm_latest_run r");
        let row = self
            .client
            .query_opt(&sql, &[])
            .map_err(self.query_err("reading the latest run"))?;
        row.map(|r| run_info(&r))
            .transpose()
            .map_err(self.query_err("reading the run's status"))
    }

    /// Segments of the latest published run, by name (as in `segments.csv`).
    pub fn latest_segments(&mut self) -> Result<Vec<SegmentFigures>> {
        self.segment_rows("(SELECT id FROM rfm_latest_run)", &[])
    }

    /// Segments of one run, by name.
    pub fn segments(&mut self, run: RunId) -> Result<Vec<SegmentFigures>> {
        self.segment_rows("$1", &[&run.0])
    }

    /// `rfm_runs` rows with `extra` columns after the run's: every run,
    /// newest first, or the one with `run_id` (an unknown id is an error).
    fn run_rows(&mut self, extra: &str, run_id: Option<&str>) -> Result<Vec<Row>> {
        self.ensure_connected()?;
        let select = format!("SELECT {RUN_COLUMNS}{extra} FROM rfm_runs r");
        let Some(run_id) = run_id else {
            return self
                .client
                .query(&format!("{select} ORDER BY r.id DESC"), &[])
                .map_err(self.query_err("listing runs"));
        };
        let row = self
            .client
            .query_opt(&format!("{select} WHERE r.run_id = $1"), &[&run_id])
            .map_err(self.query_err("reading a run"))?;
        let row = row.ok_or_else(|| Error::UnknownRun {
            target: self.target.to_string(),
            run_id: run_id.to_string(),
        })?;
        Ok(vec![row])
    }

    /// The segments of the run that `run` (an SQL expression) selects, by name.
    fn segment_rows(
        &mut self,
        run: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<SegmentFigures>> {
        self.ensure_connected()?;
        let sql = format!(
            "SELECT {SEGMENT_COLUMNS} FROM rfm_segments WHERE run = {run} ORDER BY segment COLLATE \"C\""
        );
        let rows = self
            .client
            .query(&sql, params)
            .map_err(self.query_err("reading segments"))?;
        Ok(rows.iter().map(segment_figures).collect())
    }

    /// Customers of a run, by customer id (byte order, as in `customers.csv`).
    pub fn customers(&mut self, q: &CustomerQuery) -> Result<Vec<CustomerRecord>> {
        self.ensure_connected()?;
        let run = q.run.map(|r| r.0);
        let rows = self
            .client
            .query(
                "SELECT customer_id, recency, frequency, round(monetary, 2)::text, monetary::text,
                        to_char(first_purchase, 'YYYY-MM-DD HH24:MI:SS'),
                        to_char(last_purchase, 'YYYY-MM-DD HH24:MI:SS'),
                        country, r, f, m, rfm_score, segment
                 FROM rfm_customers
                 WHERE run = coalesce($1::bigint, (SELECT id FROM rfm_latest_run))
                   AND ($2::text IS NULL OR segment = $2::text)
                   AND ($3::text IS NULL OR customer_id = $3::text)
                 ORDER BY customer_id COLLATE \"C\"
                 LIMIT $4::bigint OFFSET $5::bigint",
                &[&run, &q.segment, &q.customer_id, &q.limit, &q.offset],
            )
            .map_err(self.query_err("reading customers"))?;
        Ok(rows
            .iter()
            .map(|row| CustomerRecord {
                customer_id: row.get(0),
                recency: row.get(1),
                frequency: row.get(2),
                monetary: row.get(3),
                monetary_exact: row.get(4),
                first_purchase: row.get(5),
                last_purchase: row.get(6),
                country: row.get(7),
                r: row.get(8),
                f: row.get(9),
                m: row.get(10),
                rfm_score: row.get(11),
                segment: row.get(12),
            })
            .collect())
    }
}

/// A run with the whole report it was recorded with (`run.json`, as jsonb).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunWithReport {
    pub info: RunInfo,
    /// `{}` for a run recorded without one.
    pub report: serde_json::Value,
}

fn run_with_report(row: &Row) -> Result<RunWithReport, postgres::Error> {
    Ok(RunWithReport {
        info: run_info(row)?,
        report: row.get(14),
    })
}

impl Store {
    /// Every run with its report, newest first (the dashboard's history).
    pub fn runs_with_reports(&mut self) -> Result<Vec<RunWithReport>> {
        let rows = self.run_rows(", r.report", None)?;
        rows.iter()
            .map(run_with_report)
            .collect::<Result<_, _>>()
            .map_err(self.query_err("reading the runs' status"))
    }

    /// The run with this run id (the `run_id` of `run.json`) and its report.
    pub fn run_with_report(&mut self, run_id: &str) -> Result<RunWithReport> {
        let rows = self.run_rows(", r.report", Some(run_id))?;
        run_with_report(&rows[0]).map_err(self.query_err("reading the run's status"))
    }
}

impl Store {
    /// The cut points saved with a run (`rfm_runs.cut_points`, as scoring
    /// computed them); `None` for a run published before they were saved,
    /// or one without results.
    pub fn cut_points(&mut self, run: RunId) -> Result<Option<serde_json::Value>> {
        self.ensure_connected()?;
        let row = self
            .client
            .query_opt("SELECT cut_points FROM rfm_runs WHERE id = $1", &[&run.0])
            .map_err(self.query_err("reading the run's cut points"))?;
        Ok(row.and_then(|r| r.get(0)))
    }
}
