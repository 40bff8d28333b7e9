//! The coordinator's Arrow Flight service: `DoGet` streams a finished job's
//! scored table (customers or segments) to its submitter, in batches of at
//! most [`rfm_core::tables::BATCH_ROWS`] rows, or its `customers.csv` as
//! text, formatted on every core as it is sent (`customers_text`). The
//! ticket is a `ResultTicket` (job id and table, never a path); only the
//! job's owner or the admin may fetch it, as for `GetJobResult`. Every other
//! Flight method is unimplemented.

use std::io::Write;
use std::sync::Arc;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::{FlightData, Ticket};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use rfm_core::tables::{self, BATCH_ROWS};
use rfm_core::RfmResult;
use rfm_proto::auth::Identity;
use rfm_proto::flight::FlightStream;
use rfm_proto::ident;
use rfm_proto::v1::{ResultTable, ResultTicket};
use tonic::{Request, Response, Status};

use crate::job::Job;
use crate::retention::JobTable;

/// Serves finished jobs' scored tables.
pub struct ResultFlightService {
    jobs: Arc<JobTable>,
}

impl ResultFlightService {
    pub fn new(jobs: Arc<JobTable>) -> Self {
        ResultFlightService { jobs }
    }
}

rfm_proto::flight_do_get_only!(ResultFlightService, "the rfm coordinator");

impl ResultFlightService {
    /// `DoGet`: a table of a finished job, to its owner or the admin.
    async fn get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<FlightStream<FlightData>>, Status> {
        let caller = Identity::of(&request);
        caller.require_client()?;
        let ticket = ResultTicket::decode(request.into_inner().ticket).map_err(|e| {
            Status::invalid_argument(format!("the ticket is not an rfm ResultTicket: {e}"))
        })?;
        ident::check_job_id(&ticket.job_id)?;
        let job = self.jobs.get_for(&ticket.job_id, &caller)?;
        let result = job.tables().ok_or_else(|| {
            Status::failed_precondition(format!(
                "job {} has no scored result (it has not finished, or it failed)",
                job.id
            ))
        })?;
        let rows = |n: usize| {
            (0..n)
                .step_by(BATCH_ROWS)
                .map(move |s| s..(s + BATCH_ROWS).min(n))
        };
        tracing::debug!(
            "rfm-coordinator: job {}: serving the {:?} table",
            job.id,
            ticket.table()
        );
        let table = ticket.table();
        if table == ResultTable::CustomersCsv {
            return Ok(Response::new(customers_text(job, result)));
        }
        let (schema, batches) = match table {
            ResultTable::Customers => {
                let scored = result.clone();
                let batches = futures::stream::iter(rows(result.customers.len()))
                    .map(move |r| Ok(tables::customers_batch(&scored.customers[r])));
                (tables::customers_schema(), batches.boxed())
            }
            ResultTable::Segments => {
                let scored = result.clone();
                let batches = futures::stream::iter(rows(result.segments.len()))
                    .map(move |r| Ok(tables::segments_batch(&scored.segments[r])));
                (tables::segments_schema(), batches.boxed())
            }
            ResultTable::CustomersCsv | ResultTable::Unspecified => {
                return Err(Status::invalid_argument(
                    "the ticket names no table (customers or segments)",
                ))
            }
        };
        // Sent in full: once both tables are, the submitter has the result.
        let sent = futures::stream::once(async move {
            tracing::debug!("rfm-coordinator: job {}: {table:?} table sent", job.id);
            job.table_sent(table)
        })
        .filter_map(|()| async { None::<Result<_, FlightError>> });
        let batches = batches.chain(sent);
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(Status::from);
        Ok(Response::new(stream.boxed()))
    }
}

/// Pieces of a `customers.csv` stream held at once, beside the blocks of
/// rows being formatted (about 200 KB each): a slow reader holds the
/// formatting back, not the coordinator's memory.
const TEXT_PIECES_AHEAD: usize = 8;

/// The largest piece of text one message carries.
const TEXT_PIECE_BYTES: usize = 2 << 20;

/// A finished job's `customers.csv`, byte for byte what `rfm run` writes
/// ([`rfm_core::output::write_customers`]): blocks of rows formatted on every
/// core from a blocking thread and sent in order as each is done, each a
/// `FlightData` whose `data_body` is the next piece of the file.
fn customers_text(job: Arc<Job>, result: Arc<RfmResult>) -> FlightStream<FlightData> {
    let (tx, rx) = tokio::sync::mpsc::channel(TEXT_PIECES_AHEAD);
    let failed = tx.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = rfm_core::output::write_customers(&result, PieceSender(tx)) {
            // Nobody to tell when the reader has gone.
            let _ = failed.blocking_send(Err(Status::internal(format!(
                "formatting customers.csv failed: {e}"
            ))));
        }
    });
    let sent = futures::stream::once(async move {
        tracing::debug!("rfm-coordinator: job {}: customers.csv sent", job.id);
        job.table_sent(ResultTable::CustomersCsv)
    })
    .filter_map(|()| async { None });
    tokio_stream::wrappers::ReceiverStream::new(rx)
        .chain(sent)
        .boxed()
}

/// Sends what is written to it as pieces of a text stream (blocking: from
/// a thread of the blocking pool).
struct PieceSender(tokio::sync::mpsc::Sender<Result<FlightData, Status>>);

impl Write for PieceSender {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(TEXT_PIECE_BYTES);
        let piece = FlightData {
            data_body: Bytes::copy_from_slice(&buf[..n]),
            ..FlightData::default()
        };
        self.0.blocking_send(Ok(piece)).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the client stopped reading customers.csv",
            )
        })?;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
