//! Serving the gRPC and Flight ports: accepted connections with
//! `TCP_NODELAY`, shared by the coordinator, the workers and the benches.

use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::{Stream, StreamExt};

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
