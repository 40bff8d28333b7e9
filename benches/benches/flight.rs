//! criterion bench of the Arrow Flight transfer of a partial state, as the
//! coordinator fetches a finished task's state from a worker: `DoGet` over a
//! real loopback TCP socket (tonic server and client in this process), then
//! decoding the streamed batches into a [`PartialState`]. Reports customer
//! states/s and bytes of Flight data/s, for the state of a 200,000-line
//! generated file (per-call latency dominates) and of a 2,000,000-line one.
//!
//! The server is a minimal Flight service shaped like the worker's: it holds
//! the state already converted with [`PartialState::to_record_batch`] (as the
//! worker keeps a finished task) and encodes it per `DoGet` with
//! `FlightDataEncoderBuilder`.

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightClient, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures::{Stream, StreamExt, TryStreamExt};
use rfm_benches::Fixture;
use rfm_core::engine;
use rfm_core::PartialState;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status, Streaming};

/// Message size limit on both ends (the default 4 MiB is too small for big states).
const MAX_MESSAGE_BYTES: usize = 256 << 20;
const TICKET: &[u8] = b"bench-state";

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Serves one finished state for the ticket [`TICKET`].
struct StateService {
    batch: RecordBatch,
}

fn unsupported<T>(what: &str) -> Result<T, Status> {
    Err(Status::unimplemented(format!(
        "{what} is not supported by the bench service; use DoGet"
    )))
}

#[tonic::async_trait]
impl FlightService for StateService {
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
        if request.into_inner().ticket.as_ref() != TICKET {
            return Err(Status::not_found("unknown ticket"));
        }
        let batch = self.batch.clone();
        let stream = FlightDataEncoderBuilder::new()
            .build(futures::stream::once(async move { Ok(batch) }))
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

/// Starts the service on a free loopback port; it runs until the runtime drops.
/// Accepted sockets get `TCP_NODELAY` (tonic sets it only on listeners it binds
/// itself): without it Nagle's algorithm holds back the last segments of each
/// `DoGet` and a 250 kB state takes 15 ms instead of 2 ms.
async fn serve(batch: RecordBatch) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("bound address");
    let service = FlightServiceServer::new(StateService { batch })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener).map_ok(|s| {
                let _ = s.set_nodelay(true);
                s
            })),
    );
    addr
}

async fn connect(addr: SocketAddr) -> FlightClient {
    let channel: Channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint URL")
        .connect()
        .await
        .expect("connect to the bench Flight service");
    FlightClient::new_from_inner(
        FlightServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    )
}

/// `DoGet` of the state and its decoding, as the coordinator does it.
async fn fetch(client: &mut FlightClient) -> PartialState {
    let batches: Vec<RecordBatch> = client
        .do_get(Ticket::new(TICKET))
        .await
        .expect("DoGet")
        .try_collect()
        .await
        .expect("Flight stream");
    PartialState::from_record_batches(&batches).expect("decode the state")
}

/// Bytes of Flight messages (IPC header + body) one `DoGet` streams.
async fn flight_bytes(batch: RecordBatch) -> u64 {
    FlightDataEncoderBuilder::new()
        .build(futures::stream::once(async move { Ok(batch) }))
        .map_ok(|d| (d.data_header.len() + d.data_body.len()) as u64)
        .try_fold(0, |sum, n| async move { Ok(sum + n) })
        .await
        .expect("encode the state")
}

/// Benches the transfer of the state of a generated file of `rows` lines.
fn transfer(c: &mut Criterion, rt: &Runtime, rows: u64, name: &str) {
    // A whole file's state, as one worker task over the file produces it.
    let f = Fixture::generated(rows);
    let state = engine::run_local(&f.files, &f.opts).expect("compute the state");
    let customers = state.customer_count();
    let batch = state.to_record_batch();

    let bytes = rt.block_on(flight_bytes(batch.clone()));
    let addr = rt.block_on(serve(batch));
    let mut client = rt.block_on(connect(addr));
    // Checks the transfer is lossless before timing it.
    let fetched = rt.block_on(fetch(&mut client));
    assert_eq!(fetched.customer_count(), customers);
    assert_eq!(fetched.to_record_batch(), state.to_record_batch());
    println!(
        "flight/{name}: a state of {customers} customers ({rows} lines), \
         {bytes} bytes of Flight data per DoGet"
    );

    let mut g = c.benchmark_group("flight");
    g.throughput(Throughput::ElementsAndBytes {
        elements: customers as u64,
        bytes,
    });
    g.bench_function(name, |b| {
        b.iter(|| rt.block_on(fetch(&mut client)).customer_count())
    });
    g.finish();
}

fn flight(c: &mut Criterion) {
    let rt = Runtime::new().expect("tokio runtime");
    transfer(c, &rt, 200_000, "do_get_to_state");
    // A bigger state: transfer time rather than per-call latency.
    transfer(c, &rt, 2_000_000, "do_get_to_state_2m_lines");
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(3));
    targets = flight
}
criterion_main!(benches);
