//! The coordinator's Arrow Flight service: `DoGet` streams a finished job's
//! scored table (customers or segments) to its submitter, in batches of at
//! most [`rfm_core::tables::BATCH_ROWS`] rows. The ticket is a
//! `ResultTicket` (job id and table, never a path); only the job's owner or
//! the admin may fetch it, as for `GetJobResult`. Every other Flight method
//! is unimplemented.

use std::sync::Arc;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::{FlightData, Ticket};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use rfm_core::tables::{self, BATCH_ROWS};
use rfm_proto::auth::Identity;
use rfm_proto::flight::FlightStream;
use rfm_proto::ident;
use rfm_proto::v1::{ResultTable, ResultTicket};
use tonic::{Request, Response, Status};

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
            ResultTable::Unspecified => {
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
