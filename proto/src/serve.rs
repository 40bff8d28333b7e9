//! Serving the gRPC and Flight ports: accepted connections with
//! `TCP_NODELAY`, and the HTTP/2 limits of every connection, shared by the
//! coordinator, the workers and the benches.

use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::Server;

/// Largest HTTP/2 header list a port accepts (the metadata of a call).
pub const MAX_HEADER_LIST_BYTES: u32 = 16 << 10;

/// Calls open at once on one connection. A worker's connection from the
/// coordinator carries one `RunTask` per slot (at most
/// [`crate::MAX_WORKER_SLOTS`]) plus their Flight fetches; more calls wait
/// on the caller's side for a stream to free up.
pub const MAX_CONCURRENT_STREAMS: u32 = 2048;

/// A gRPC server with the HTTP/2 limits of the cluster's ports.
pub fn bounded_server() -> Server {
    Server::builder()
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
}

/// The connections `listener` accepts, each with `TCP_NODELAY` set. tonic
/// sets it only on listeners it binds itself; without it Nagle's algorithm
/// holds back the last small frames of every reply, and a Flight fetch of a
/// 250 kB state waits 15 ms instead of 2 ms.
pub fn incoming_nodelay(
    listener: TcpListener,
) -> impl Stream<Item = std::io::Result<TcpStream>> + Send + 'static {
    TcpListenerStream::new(listener).map(|accepted| {
        accepted.inspect(|socket| {
            let _ = socket.set_nodelay(true);
        })
    })
}
