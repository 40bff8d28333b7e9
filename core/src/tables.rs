//! A scored result's tables as Arrow record batches: how a finished job's
//! customers and segments travel from the coordinator, which alone scores, to
//! the client that writes the files (over Arrow Flight, in batches of at most
//! [`BATCH_ROWS`] rows), and back into an [`RfmResult`]. Decoding checks what
//! the files promise: known segments, scores 1–5, monetary in the exact range,
//! normalised customer ids in strictly increasing byte order.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Int64Array, RecordBatch, StringArray, UInt64Array,
    UInt8Array,
};
use arrow::datatypes::{
    DataType, Decimal128Type, Field, Int64Type, Schema, SchemaRef, UInt64Type, UInt8Type,
};

use crate::date::Date;
use crate::error::{Error, Result};
use crate::money::{self, Money};
use crate::parse::is_customer_text;
use crate::score::{CustomerRow, RfmResult, SegmentRow};
use crate::segment::Segment;

/// Most rows of one batch: a table is sent as a stream of such batches
/// (Flight splits them further into messages of about 2 MiB). Batches of
/// about 0.8 MB: the receiver reads one while the next is made and sent.
pub const BATCH_ROWS: usize = 8 * 1024;

fn money_type() -> DataType {
    DataType::Decimal128(38, money::SCALE as i8)
}

fn money_array(values: Vec<i128>) -> ArrayRef {
    Arc::new(
        Decimal128Array::from(values)
            .with_precision_and_scale(38, money::SCALE as i8)
            .expect("valid decimal type"),
    )
}

/// The schema of the customers table (the columns of `customers.csv`, typed).
pub fn customers_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("recency", DataType::Int64, false),
        Field::new("frequency", DataType::UInt64, false),
        Field::new("monetary", money_type(), false),
        Field::new("first_purchase", DataType::Int64, false),
        Field::new("last_purchase", DataType::Int64, false),
        Field::new("country", DataType::Utf8, false),
        Field::new("r", DataType::UInt8, false),
        Field::new("f", DataType::UInt8, false),
        Field::new("m", DataType::UInt8, false),
        Field::new("segment", DataType::Utf8, false),
    ]))
}

/// The schema of the segments table (the columns of `segments.csv`, with the
/// exact sums behind the rounded figures).
pub fn segments_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("segment", DataType::Utf8, false),
        Field::new("customers", DataType::UInt64, false),
        Field::new("revenue", money_type(), false),
        Field::new("recency_sum", DataType::Int64, false),
        Field::new("frequency_sum", DataType::UInt64, false),
        Field::new("customers_share", DataType::Utf8, false),
        Field::new("revenue_text", DataType::Utf8, false),
        Field::new("revenue_share", DataType::Utf8, false),
        Field::new("avg_recency", DataType::Utf8, false),
        Field::new("avg_frequency", DataType::Utf8, false),
        Field::new("avg_monetary", DataType::Utf8, false),
    ]))
}

/// One batch of customer rows.
pub fn customers_batch(rows: &[CustomerRow]) -> RecordBatch {
    let strings = |f: fn(&CustomerRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        strings(|c| &c.customer_id),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|c| c.recency))),
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|c| c.frequency),
        )),
        money_array(rows.iter().map(|c| c.monetary.0).collect()),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|c| c.first_purchase),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|c| c.last_purchase),
        )),
        strings(|c| &c.country),
        Arc::new(UInt8Array::from_iter_values(rows.iter().map(|c| c.r))),
        Arc::new(UInt8Array::from_iter_values(rows.iter().map(|c| c.f))),
        Arc::new(UInt8Array::from_iter_values(rows.iter().map(|c| c.m))),
        strings(|c| c.segment.name()),
    ];
    RecordBatch::try_new(customers_schema(), columns).expect("customers batch matches its schema")
}

/// One batch of segment rows.
pub fn segments_batch(rows: &[SegmentRow]) -> RecordBatch {
    let strings = |f: fn(&SegmentRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        strings(|s| s.segment.name()),
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|s| s.customers),
        )),
        money_array(rows.iter().map(|s| s.revenue.0).collect()),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|s| s.recency_sum),
        )),
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|s| s.frequency_sum),
        )),
        strings(|s| &s.customers_share),
        strings(|s| &s.revenue_text),
        strings(|s| &s.revenue_share),
        strings(|s| &s.avg_recency),
        strings(|s| &s.avg_frequency),
        strings(|s| &s.avg_monetary),
    ];
    RecordBatch::try_new(segments_schema(), columns).expect("segments batch matches its schema")
}

/// The customers of `result` in batches of at most [`BATCH_ROWS`] rows, made
/// as they are taken (a table of no row gives no batch).
pub fn customer_batches(result: &RfmResult) -> impl Iterator<Item = RecordBatch> + '_ {
    result.customers.chunks(BATCH_ROWS).map(customers_batch)
}

fn bad(what: String) -> Error {
    Error::BadState(what)
}

fn check_schema(batch: &RecordBatch, expected: &Schema, table: &str) -> Result<()> {
    if batch.schema().fields() == expected.fields() {
        return Ok(());
    }
    Err(bad(format!(
        "the {table} table has columns {:?}, not rfm's",
        batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
    )))
}

/// The segment a table names, as rfm writes it (exact name).
fn segment_of(name: &str) -> Result<Segment> {
    Segment::ALL
        .into_iter()
        .find(|s| s.name() == name)
        .ok_or_else(|| bad(format!("{name:?} is not an rfm segment")))
}

fn score_of(value: u8, what: &str, id: &str) -> Result<u8> {
    if (1..=5).contains(&value) {
        return Ok(value);
    }
    Err(bad(format!(
        "customer {id:?}: {what} score {value} is not 1 to 5"
    )))
}

/// `value` as money, when in the exact range; `what` names the row (made
/// only for the error: a table's rows cost no text each).
fn money_of(value: i128, what: impl FnOnce() -> String) -> Result<Money> {
    let m = Money(value);
    if m.in_range() {
        return Ok(m);
    }
    Err(bad(format!(
        "{}: monetary is not {}",
        what(),
        money::RANGE_TEXT
    )))
}

/// Appends a customers batch's rows to `out`, checking each row and that ids
/// keep increasing (from the last row of `out`).
pub fn read_customers(batch: &RecordBatch, out: &mut Vec<CustomerRow>) -> Result<()> {
    check_schema(batch, &customers_schema(), "customers")?;
    let text = |i: usize| batch.column(i).as_string::<i32>();
    let (ids, countries, segments) = (text(0), text(6), text(10));
    let recency = batch.column(1).as_primitive::<Int64Type>();
    let frequency = batch.column(2).as_primitive::<UInt64Type>();
    let monetary = batch.column(3).as_primitive::<Decimal128Type>();
    let first = batch.column(4).as_primitive::<Int64Type>();
    let last = batch.column(5).as_primitive::<Int64Type>();
    let score = |i: usize| batch.column(i).as_primitive::<UInt8Type>();
    let (r, f, m) = (score(7), score(8), score(9));
    if batch.columns().iter().any(|c| c.null_count() > 0) {
        return Err(bad("the customers table has empty values".into()));
    }
    out.reserve(batch.num_rows());
    // Each country's name once, shared by its rows.
    let mut country_names: ahash::AHashMap<&str, std::sync::Arc<str>> = ahash::AHashMap::new();
    for row in 0..batch.num_rows() {
        let id = ids.value(row);
        if !is_customer_text(id.as_bytes()) {
            return Err(bad(format!(
                "customer id {id:?} is not normalised text (no control character)"
            )));
        }
        if out.last().is_some_and(|p| p.id_bytes() >= id.as_bytes()) {
            return Err(bad(format!(
                "customer {id:?} is out of order or repeated in the customers table"
            )));
        }
        out.push(CustomerRow {
            customer_id: id.to_string(),
            recency: recency.value(row),
            frequency: frequency.value(row),
            monetary: money_of(monetary.value(row), || format!("customer {id:?}"))?,
            first_purchase: first.value(row),
            last_purchase: last.value(row),
            country: country_names
                .entry(countries.value(row))
                .or_insert_with_key(|&name| name.into())
                .clone(),
            r: score_of(r.value(row), "R", id)?,
            f: score_of(f.value(row), "F", id)?,
            m: score_of(m.value(row), "M", id)?,
            segment: segment_of(segments.value(row))?,
        });
    }
    Ok(())
}

/// Appends a segments batch's rows to `out`.
pub fn read_segments(batch: &RecordBatch, out: &mut Vec<SegmentRow>) -> Result<()> {
    check_schema(batch, &segments_schema(), "segments")?;
    if batch.columns().iter().any(|c| c.null_count() > 0) {
        return Err(bad("the segments table has empty values".into()));
    }
    let text = |i: usize| batch.column(i).as_string::<i32>();
    let customers = batch.column(1).as_primitive::<UInt64Type>();
    let revenue = batch.column(2).as_primitive::<Decimal128Type>();
    let recency_sum = batch.column(3).as_primitive::<Int64Type>();
    let frequency_sum = batch.column(4).as_primitive::<UInt64Type>();
    for row in 0..batch.num_rows() {
        let segment = segment_of(text(0).value(row))?;
        out.push(SegmentRow {
            segment,
            customers: customers.value(row),
            revenue: money_of(revenue.value(row), || segment.name().to_string())?,
            recency_sum: recency_sum.value(row),
            frequency_sum: frequency_sum.value(row),
            customers_share: text(5).value(row).to_string(),
            revenue_text: text(6).value(row).to_string(),
            revenue_share: text(7).value(row).to_string(),
            avg_recency: text(8).value(row).to_string(),
            avg_frequency: text(9).value(row).to_string(),
            avg_monetary: text(10).value(row).to_string(),
        });
    }
    Ok(())
}

/// The result the tables make, with its dates. The revenue is the exact sum
/// of the customers' monetary; the ledger and cut points are not in the
/// tables (the run report carries the ledger) and stay empty.
pub fn result_of(
    as_of: Date,
    latest_purchase: Date,
    customers: Vec<CustomerRow>,
    segments: Vec<SegmentRow>,
) -> Result<RfmResult> {
    let revenue = total_revenue(customers.iter().map(|c| c.monetary))?;
    check_segment_counts(&segments, customers.len() as u64)?;
    Ok(tables_result(
        as_of,
        latest_purchase,
        customers,
        segments,
        revenue,
    ))
}

/// The result of a run whose `customers.csv` came as text
/// ([`crate::customers_csv::Text`]): its segments, with no customer rows
/// (`customers`, announced, is checked against the segments' counts); the
/// total revenue is the segments' (exact sums: the same as the customers').
pub fn result_of_segments(
    as_of: Date,
    latest_purchase: Date,
    customers: u64,
    segments: Vec<SegmentRow>,
) -> Result<RfmResult> {
    let revenue = total_revenue(segments.iter().map(|s| s.revenue))?;
    check_segment_counts(&segments, customers)?;
    Ok(tables_result(
        as_of,
        latest_purchase,
        Vec::new(),
        segments,
        revenue,
    ))
}

/// The exact sum of `amounts`, when every partial sum is in range.
fn total_revenue(amounts: impl IntoIterator<Item = Money>) -> Result<Money> {
    Money::checked_sum(amounts)
        .ok_or_else(|| bad(format!("the total revenue is not {}", money::RANGE_TEXT)))
}

/// Checks that the segments count `customers` customers in all.
fn check_segment_counts(segments: &[SegmentRow], customers: u64) -> Result<()> {
    let listed: u64 = segments.iter().map(|s| s.customers).sum();
    if listed != customers {
        return Err(bad(format!(
            "the segments count {listed} customers, the customers table {customers}"
        )));
    }
    Ok(())
}

/// A result made of tables: no ledger, no cut points.
fn tables_result(
    as_of: Date,
    latest_purchase: Date,
    customers: Vec<CustomerRow>,
    segments: Vec<SegmentRow>,
    revenue: Money,
) -> RfmResult {
    RfmResult {
        as_of,
        latest_purchase,
        customers,
        segments,
        revenue,
        ledger: Default::default(),
        cut_points: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(id: &str, monetary: i128, r: u8) -> CustomerRow {
        CustomerRow {
            customer_id: id.into(),
            recency: 3,
            frequency: 2,
            monetary: Money(monetary),
            first_purchase: 1_000,
            last_purchase: 2_000,
            country: "France".into(),
            r,
            f: 2,
            m: 3,
            segment: Segment::Champions,
        }
    }

    #[test]
    fn tables_round_trip_and_bad_rows_are_refused() {
        let customers = vec![customer("12346", 10, 5), customer("12347", 1, 1)];
        let mut back = Vec::new();
        read_customers(&customers_batch(&customers), &mut back).unwrap();
        assert_eq!(back, customers);

        // Out of order (also across batches), a score of 0, an unknown segment.
        let err = read_customers(&customers_batch(&customers[..1]), &mut back).unwrap_err();
        assert!(err.to_string().contains("out of order"), "{err}");
        let err =
            read_customers(&customers_batch(&[customer("1", 1, 0)]), &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("not 1 to 5"), "{err}");
        let mut wrong = customers_batch(&customers[..1]);
        let mut cols = wrong.columns().to_vec();
        cols[10] = Arc::new(StringArray::from(vec!["Whales"]));
        wrong = RecordBatch::try_new(customers_schema(), cols).unwrap();
        let err = read_customers(&wrong, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("Whales"), "{err}");
        // Segments go by their exact names: the table is rfm's own.
        let mut cols = customers_batch(&customers[..1]).columns().to_vec();
        cols[10] = Arc::new(StringArray::from(vec![" champions"]));
        let wrong = RecordBatch::try_new(customers_schema(), cols).unwrap();
        let err = read_customers(&wrong, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("champions"), "{err}");
        // A segments batch is not a customers batch.
        let err = read_customers(&segments_batch(&[]), &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("columns"), "{err}");

        let segments = vec![SegmentRow {
            segment: Segment::Champions,
            customers: 2,
            revenue: Money(11),
            recency_sum: 6,
            frequency_sum: 4,
            customers_share: "1.000000".into(),
            revenue_text: "0.00".into(),
            revenue_share: "1.000000".into(),
            avg_recency: "3.00".into(),
            avg_frequency: "2.00".into(),
            avg_monetary: "0.00".into(),
        }];
        let mut seg_back = Vec::new();
        read_segments(&segments_batch(&segments), &mut seg_back).unwrap();
        assert_eq!(seg_back, segments);
        let result = result_of(10, 9, customers, seg_back.clone()).unwrap();
        assert_eq!(result.revenue, Money(11));
        assert!(result_of(10, 9, Vec::new(), segments.clone()).is_err());
        // With the customers' text apart: the same revenue, no rows, and the
        // announced count checked against the segments'.
        let apart = result_of_segments(10, 9, 2, seg_back).unwrap();
        assert_eq!((apart.revenue, apart.customers.len()), (result.revenue, 0));
        assert_eq!(apart.segments, result.segments);
        let err = result_of_segments(10, 9, 3, segments).unwrap_err();
        assert!(err.to_string().contains("count 2 customers"), "{err}");
    }

    #[test]
    fn a_large_table_goes_in_bounded_batches() {
        let result = RfmResult {
            as_of: 1,
            latest_purchase: 0,
            customers: (0..BATCH_ROWS + 3)
                .map(|i| customer(&format!("{i:08}"), 1, 1))
                .collect(),
            segments: Vec::new(),
            revenue: Money::ZERO,
            ledger: Default::default(),
            cut_points: Default::default(),
        };
        let sizes: Vec<usize> = customer_batches(&result).map(|b| b.num_rows()).collect();
        assert_eq!(sizes, [BATCH_ROWS, 3]);
    }
}
