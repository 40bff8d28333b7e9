//! Writing runs: the `running` row (with its owner and lease), the binary COPY
//! of customers and segments in one transaction that publishes the run at
//! commit, and failed runs.

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::GenericClient;
use rfm_core::report::RunReport;
use rfm_core::RfmResult;

use crate::error::{Error, Result};
use crate::lease::Lease;
use crate::pgtypes::{DecimalText, NaiveTimestamp};
use crate::{RunId, RunStatus, Store};

const COPY_CUSTOMERS: &str = "COPY rfm_customers (run, customer_id, recency, frequency, monetary, \
     first_purchase, last_purchase, country, r, f, m, rfm_score, segment) FROM STDIN (FORMAT binary)";

const CUSTOMER_TYPES: [Type; 13] = [
    Type::INT8,
    Type::TEXT,
    Type::INT4,
    Type::INT8,
    Type::NUMERIC,
    Type::TIMESTAMP,
    Type::TIMESTAMP,
    Type::TEXT,
    Type::INT2,
    Type::INT2,
    Type::INT2,
    Type::TEXT,
    Type::TEXT,
];

const COPY_SEGMENTS: &str =
    "COPY rfm_segments (run, segment, customers, customers_share, revenue, \
     revenue_share, avg_recency, avg_frequency, avg_monetary) FROM STDIN (FORMAT binary)";

const SEGMENT_TYPES: [Type; 9] = [
    Type::INT8,
    Type::TEXT,
    Type::INT8,
    Type::NUMERIC,
    Type::NUMERIC,
    Type::NUMERIC,
    Type::NUMERIC,
    Type::NUMERIC,
    Type::NUMERIC,
];

/// Sets a run's status and the report's figures; `published` also takes the
/// next publication number. Only a `running` run changes.
const FINISH_RUN: &str = "UPDATE rfm_runs SET
    status = $2::text,
    published_seq = CASE WHEN $2::text = 'published' THEN nextval('rfm_publish_seq') END,
    finished_at = coalesce(NULLIF($3::text, '')::timestamptz, now()),
    as_of = $4::text::date,
    latest_purchase = $5::text::date,
    lines_read = $6, purchase_lines = $7,
    excluded_missing_customer = $8, excluded_cancellation = $9,
    excluded_quantity_le_0 = $10, excluded_price_le_0 = $11,
    malformed = $12, malformed_samples = $13,
    customers = $14, revenue = $15::text::numeric, seconds = $16, error = $17,
    report = $18, cut_points = $19
  WHERE id = $1 AND status = 'running'";

fn count(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Runs [`FINISH_RUN`]; returns the number of rows changed (0 or 1).
fn finish_run(
    client: &mut impl GenericClient,
    run: RunId,
    status: RunStatus,
    report: &RunReport,
) -> Result<u64, postgres::Error> {
    let ex = &report.excluded;
    let counts = [
        count(report.lines_read),
        count(report.purchase_lines),
        count(ex.missing_customer),
        count(ex.cancellation),
        count(ex.quantity_le_0),
        count(ex.price_le_0),
        count(report.malformed),
        count(report.customers),
    ];
    let samples = json(&report.malformed_samples);
    let whole = json(report);
    let cut_points = report.cut_points.as_ref().map(json);
    client.execute(
        FINISH_RUN,
        &[
            &run.0,
            &status.as_str(),
            &report.finished_at,
            &report.as_of,
            &report.latest_purchase,
            &counts[0],
            &counts[1],
            &counts[2],
            &counts[3],
            &counts[4],
            &counts[5],
            &counts[6],
            &samples,
            &counts[7],
            &report.revenue,
            &report.seconds,
            &report.error,
            &whole,
            &cut_points,
        ],
    )
}

impl Store {
    /// Records a new run as `running` (visible at once in `rfm runs`), owned
    /// by `lease.owner` until its lease expires; keep it alive with a
    /// [`crate::Heartbeat`].
    pub fn begin_run(&mut self, report: &RunReport, lease: &Lease) -> Result<RunId> {
        self.ensure_connected()?;
        let input = json(&report.input);
        let options = json(&report.options);
        let whole = json(report);
        let owner = &lease.owner;
        let pid = i32::try_from(owner.pid).unwrap_or(i32::MAX);
        let row = self
            .client
            .query_one(
                "INSERT INTO rfm_runs (run_id, status, started_at, input, options, report,
                     owner_host, owner_pid, owner_kind, owner_instance, lease_expires_at)
                 VALUES ($1, 'running', coalesce(NULLIF($2::text, '')::timestamptz, now()), $3, $4, $5,
                     $6, $7, $8, $9, now() + $10::bigint * interval '1 millisecond')
                 RETURNING id",
                &[
                    &report.run_id,
                    &report.started_at,
                    &input,
                    &options,
                    &whole,
                    &owner.host,
                    &pid,
                    &owner.kind,
                    &owner.instance,
                    &lease.millis(),
                ],
            )
            .map_err(self.query_err("recording the run"))?;
        Ok(RunId(row.get(0)))
    }

    /// Loads the result with binary COPY and marks the run `published`, all in
    /// one transaction: readers see the previous latest run until the commit.
    /// On error nothing is published (the transaction rolls back); record the
    /// failure with [`Store::fail`].
    pub fn publish(&mut self, run: RunId, report: &RunReport, result: &RfmResult) -> Result<()> {
        self.ensure_connected()?;
        let target = self.target.to_string();
        let err = |action: &str| {
            let target = target.clone();
            let action = action.to_string();
            move |e: postgres::Error| Error::query(&target, &action, e)
        };
        let mut tx = self
            .client
            .transaction()
            .map_err(err("starting the load"))?;
        copy_customers(&mut tx, run, result).map_err(err("loading customers (COPY)"))?;
        copy_segments(&mut tx, run, result).map_err(err("loading segments (COPY)"))?;
        let changed = finish_run(&mut tx, run, RunStatus::Published, report)
            .map_err(err("publishing the run"))?;
        if changed != 1 {
            let status: Option<String> = tx
                .query_opt("SELECT status FROM rfm_runs WHERE id = $1", &[&run.0])
                .map_err(err("reading the run's status"))?
                .map(|r| r.get(0));
            return Err(Error::NotRunning {
                run_id: report.run_id.clone(),
                status: status.unwrap_or_else(|| "missing".into()),
                action: "published".into(),
            });
        }
        tx.commit().map_err(err("committing the load"))
    }

    /// Marks a `running` run `failed` with its report (error, ledger, samples).
    /// Reconnects first when the connection was lost. A published or
    /// abandoned run stays as it is.
    pub fn fail(&mut self, run: RunId, report: &RunReport) -> Result<()> {
        self.ensure_connected()?;
        let target = self.target.to_string();
        finish_run(&mut self.client, run, RunStatus::Failed, report)
            .map_err(|e| Error::query(&target, "recording the failed run", e))?;
        Ok(())
    }
}

impl Store {
    /// Records a scheduled run that did not run (`skipped`, its reason in
    /// `error`): a finished row of its own, owned by no one.
    pub fn record_skipped(&mut self, report: &RunReport, lease: &Lease) -> Result<()> {
        let run = self.begin_run(report, lease)?;
        let target = self.target.to_string();
        finish_run(&mut self.client, run, RunStatus::Skipped, report)
            .map_err(|e| Error::query(&target, "recording the skipped run", e))?;
        Ok(())
    }
}

fn copy_customers(
    tx: &mut postgres::Transaction<'_>,
    run: RunId,
    result: &RfmResult,
) -> Result<(), postgres::Error> {
    let sink = tx.copy_in(COPY_CUSTOMERS)?;
    let mut writer = BinaryCopyInWriter::new(sink, &CUSTOMER_TYPES);
    for c in &result.customers {
        let recency = i32::try_from(c.recency).unwrap_or(i32::MAX);
        let frequency = count(c.frequency);
        let monetary = c.monetary.to_exact_string();
        let score = [b'0' + c.r, b'0' + c.f, b'0' + c.m];
        let score = std::str::from_utf8(&score).unwrap_or("000");
        let (r, f, m) = (c.r as i16, c.f as i16, c.m as i16);
        let country: &str = &c.country;
        let row: [&(dyn ToSql + Sync); 13] = [
            &run.0,
            &c.customer_id,
            &recency,
            &frequency,
            &DecimalText(&monetary),
            &NaiveTimestamp(c.first_purchase),
            &NaiveTimestamp(c.last_purchase),
            &country,
            &r,
            &f,
            &m,
            &score,
            &c.segment.name(),
        ];
        writer.write(&row)?;
    }
    writer.finish()?;
    Ok(())
}

fn copy_segments(
    tx: &mut postgres::Transaction<'_>,
    run: RunId,
    result: &RfmResult,
) -> Result<(), postgres::Error> {
    let sink = tx.copy_in(COPY_SEGMENTS)?;
    let mut writer = BinaryCopyInWriter::new(sink, &SEGMENT_TYPES);
    for s in &result.segments {
        let customers = count(s.customers);
        let revenue = s.revenue.to_exact_string();
        let revenue_share = (!s.revenue_share.is_empty()).then(|| DecimalText(&s.revenue_share));
        let row: [&(dyn ToSql + Sync); 9] = [
            &run.0,
            &s.segment.name(),
            &customers,
            &DecimalText(&s.customers_share),
            &DecimalText(&revenue),
            &revenue_share,
            &DecimalText(&s.avg_recency),
            &DecimalText(&s.avg_frequency),
            &DecimalText(&s.avg_monetary),
        ];
        writer.write(&row)?;
    }
    writer.finish()?;
    Ok(())
}
