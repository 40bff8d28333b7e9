//! criterion bench of the Arrow Flight transfer of a partial state, as the
//! coordinator fetches a finished task's state from a worker: `DoGet` on the
//! worker's own Flight service over a real loopback TCP socket (tonic server
//! and client in this process), then decoding the streamed batches into a
//! [`PartialState`]. Reports customer states/s and bytes of Flight data/s,
//! for the state of a 200,000-line generated file (per-call latency
//! dominates) and of a 2,000,000-line one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::flight_service_server::FlightServiceServer;
use arrow_flight::{FlightClient, Ticket};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures::TryStreamExt;
use prost::Message;
use rfm_benches::Fixture;
use rfm_core::engine;
use rfm_core::PartialState;
use rfm_proto::v1::FlightTicket;
use rfm_proto::MAX_MESSAGE_BYTES;
use rfm_worker::flight::StateFlightService;
use rfm_worker::{TaskKey, TaskStore};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tonic::transport::{Channel, Endpoint};

/// The finished task the bench fetches.
const JOB: &str = "bench";
const TASK: u32 = 0;
const ATTEMPT: u32 = 1;

/// Starts the worker's Flight service, holding `batch` as the finished state
/// of [`JOB`]/[`TASK`]/[`ATTEMPT`], on a free loopback port; it runs until
/// the runtime drops.
async fn serve(batch: RecordBatch) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("bound address");
    let store = Arc::new(TaskStore::default());
    store.keep(TaskKey::new(JOB, TASK, ATTEMPT), batch);
    let service = FlightServiceServer::new(StateFlightService::new(store))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(rfm_proto::serve::incoming_nodelay(listener)),
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
    let mut stream = client
        .do_get(Ticket::new(
            FlightTicket {
                job_id: JOB.into(),
                task_id: TASK,
                attempt: ATTEMPT,
            }
            .encode_to_vec(),
        ))
        .await
        .expect("DoGet");
    let mut batches: Vec<RecordBatch> = Vec::new();
    while let Some(batch) = stream.try_next().await.expect("Flight stream") {
        batches.push(batch);
    }
    let schema = stream.schema().expect("the stream's schema").clone();
    PartialState::from_record_batches(&schema, &batches).expect("decode the state")
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
