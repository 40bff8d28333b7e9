//! A TCP proxy for the fault tests, on a thread of its own (listening and
//! dialling in network namespaces of the test's choice): forwards each
//! connection to an upstream address, holding every byte for a fixed delay
//! in each direction (a slow link), counts the bytes it forwarded, and can
//! cut every open connection at once (both sides see it closed) while it
//! keeps accepting new ones.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::netns::{self, Netns};

/// A running proxy; stopped (with its connections) on drop.
pub struct Proxy {
    /// Where it listens.
    pub addr: SocketAddr,
    bytes: Arc<AtomicU64>,
    cut: watch::Sender<u64>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Listens on `listen` (port 0: any) inside `listen_in` (else here) and
    /// forwards to `upstream`, dialled from inside `dial_from` (else here),
    /// each byte `delay` late.
    pub fn start(
        listen: SocketAddr,
        upstream: SocketAddr,
        delay: Duration,
        listen_in: Option<&Netns>,
        dial_from: Option<&Netns>,
    ) -> Proxy {
        let bytes = Arc::new(AtomicU64::new(0));
        let (cut, cut_rx) = watch::channel(0u64);
        let (stop, stop_rx) = oneshot::channel();
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let home = netns::of_this_thread();
        let listen_ns = listen_in.map_or_else(netns::of_this_thread, Netns::file);
        let dial_ns = dial_from.map_or(home, Netns::file);
        let counter = bytes.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the proxy");
            // A socket stays in the namespace it was opened in.
            netns::enter_on_this_thread(&listen_ns);
            let listener = std::net::TcpListener::bind(listen)
                .unwrap_or_else(|e| panic!("proxy cannot listen on {listen}: {e}"));
            listener
                .set_nonblocking(true)
                .expect("a non-blocking listener");
            netns::enter_on_this_thread(&dial_ns);
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("a tokio listener");
                bound_tx
                    .send(listener.local_addr().expect("proxy address"))
                    .expect("proxy start reported");
                let accept = async {
                    loop {
                        let Ok((client, _)) = listener.accept().await else {
                            continue;
                        };
                        tokio::spawn(forward(
                            client,
                            upstream,
                            delay,
                            counter.clone(),
                            cut_rx.clone(),
                        ));
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stop_rx => {}
                }
            });
        });
        let addr = bound_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the proxy started");
        Proxy {
            addr,
            bytes,
            cut,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Bytes forwarded so far, both directions.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Closes every connection open now; later ones are forwarded again.
    pub fn cut(&self) {
        self.cut.send_modify(|generation| *generation += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn forward(
    client: TcpStream,
    upstream: SocketAddr,
    delay: Duration,
    bytes: Arc<AtomicU64>,
    mut cut: watch::Receiver<u64>,
) {
    cut.borrow_and_update();
    let server =
        match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(upstream)).await {
            Ok(Ok(s)) => s,
            _ => return, // dropping the client closes it, as a refused dial would
        };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let both = futures::future::join(
        pump(client_read, server_write, delay, bytes.clone()),
        pump(server_read, client_write, delay, bytes),
    );
    tokio::select! {
        _ = both => {}
        _ = cut.changed() => {} // dropping both halves closes both sockets
    }
}

/// Copies `from` to `to`, each read written `delay` after it arrived
/// (pipelined: the delay adds latency, not a limit on throughput).
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    delay: Duration,
    bytes: Arc<AtomicU64>,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(256);
    let read = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0
                || tx
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .await
                    .is_err()
            {
                break;
            }
        }
    };
    let write = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
            bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        let _ = to.shutdown().await;
    };
    futures::future::join(read, write).await;
}
