//! The coordinator's Arrow Flight service: `DoGet` streams a finished job's
//! scored table (customers or segments) to its submitter, in batches of at
//! most [`rfm_core::tables::BATCH_ROWS`] rows. The ticket is a
//! `ResultTicket` (job id and table, never a path); only the job's owner or
//! the admin may fetch it, as for `GetJobResult`. Every other Flight method
//! is unimplemented.

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use rfm_core::tables::{self, BATCH_ROWS};
use rfm_proto::auth::Identity;
use rfm_proto::ident;
use rfm_proto::v1::{ResultTable, ResultTicket};
use tonic::{Request, Response, Status, Streaming};

use crate::retention::JobTable;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Serves finished jobs' scored tables.
pub struct ResultFlightService {
    jobs: Arc<JobTable>,
}

impl ResultFlightService {
    pub fn new(jobs: Arc<JobTable>) -> Self {
        ResultFlightService { jobs }
    }
}

fn unsupported<T>(what: &str) -> Result<T, Status> {
    Err(Status::unimplemented(format!(
        "{what} is not supported by the rfm coordinator; use DoGet with a ResultTicket"
    )))
}

#[tonic::async_trait]
impl FlightService for ResultFlightService {
    type HandshakeStream = BoxStream<HandshakeResponse>;
    type ListFlightsStream = BoxStream<FlightInfo>;
    type DoGetStream = BoxStream<FlightData>;
    type DoPutStream = BoxStream<PutResult>;
    type DoExchangeStream = BoxStream<FlightData>;
    type DoActionStream = BoxStream<arrow_flight::Result>;
    type ListActionsStream = BoxStream<ActionType>;

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
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
        let (schema, batches) = match ticket.table() {
            ResultTable::Customers => {
                let scored = result.clone();
                let batches = futures::stream::iter(rows(result.customers.len()))
                    .map(move |r| Ok(tables::customers_batch(&scored.customers[r])));
                // The customers come last: fetched, the submitter has the result.
                let fetched = futures::stream::once(async move { job.tables_fetched() })
                    .filter_map(|()| async { None::<Result<_, FlightError>> });
                (tables::customers_schema(), batches.chain(fetched).boxed())
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
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(Status::from);
        Ok(Response::new(stream.boxed()))
    }

    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        unsupported("Handshake")
    }

    async fn list_flights(
        &self,
        _request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        unsupported("ListFlights")
    }

    async fn get_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        unsupported("GetFlightInfo")
    }

    async fn poll_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        unsupported("PollFlightInfo")
    }

    async fn get_schema(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        unsupported("GetSchema")
    }

    async fn do_put(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        unsupported("DoPut")
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        unsupported("DoExchange")
    }

    async fn do_action(
        &self,
        _request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        unsupported("DoAction")
    }

    async fn list_actions(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        unsupported("ListActions")
    }
}
