//! An axum [`Listener`](axum::serve::Listener) serving TLS over a TCP
//! listener, for the HTTP ports (`/metrics`, `/healthz`, `/readyz`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

use super::HANDSHAKE_TIMEOUT;

/// TLS handshakes the HTTP port runs at once; more wait for their turn.
const MAX_HTTP_HANDSHAKES: usize = 256;

/// The connections of a TCP listener after their TLS handshake, for an axum
/// HTTP port. Handshakes run on tasks of their own (a slow one holds up no
/// other); a failed or timed-out handshake is logged at debug and skipped,
/// never stopping the listener.
pub struct TlsListener {
    ready: mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `listener` (needs a tokio runtime).
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (ready_tx, ready) = mpsc::channel(64);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let handshakes = Arc::new(Semaphore::new(MAX_HTTP_HANDSHAKES));
        let accepting = tokio::spawn(async move {
            loop {
                let Ok(turn) = handshakes.clone().acquire_owned().await else {
                    return;
                };
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::debug!("accepting a connection on {local_addr} failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if ready_tx.is_closed() {
                    return;
                }
                let acceptor = acceptor.clone();
                let ready_tx = ready_tx.clone();
                tokio::spawn(async move {
                    let _turn = turn;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = ready_tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!("TLS handshake with {peer} on {local_addr} failed: {e}")
                        }
                        Err(_) => tracing::debug!(
                            "TLS handshake with {peer} on {local_addr} took over {HANDSHAKE_TIMEOUT:?}"
                        ),
                    }
                });
            }
        });
        Ok(TlsListener {
            ready,
            local_addr,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task ended (the runtime shuts down): nothing more comes.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}
