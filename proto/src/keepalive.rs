//! HTTP/2 keepalive on every gRPC connection of the cluster: each side pings
//! its peer every `interval` and drops the connection when a ping is not
//! answered within `timeout`. A peer that stopped (SIGSTOP, a frozen VM, a
//! cut network) keeps its TCP connection open: without pings, a call or a
//! stream waiting on it would wait forever.

use std::time::Duration;

use tonic::transport::{Endpoint, Server};

/// Default time between pings.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// Default wait for a ping's answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The keepalive of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Time between pings.
    pub interval: Duration,
    /// Wait for a ping's answer before the connection is dropped.
    pub timeout: Duration,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl Keepalive {
    /// The longest a stopped peer goes unnoticed: a ping interval and its timeout.
    pub fn silence(&self) -> Duration {
        self.interval + self.timeout
    }

    /// `endpoint` pinging its server, also while no call is open.
    pub fn client(&self, endpoint: Endpoint) -> Endpoint {
        endpoint
            .http2_keep_alive_interval(self.interval)
            .keep_alive_timeout(self.timeout)
            .keep_alive_while_idle(true)
    }

    /// `server` pinging the clients of the connections it accepts.
    pub fn server<L>(&self, server: Server<L>) -> Server<L> {
        server
            .http2_keepalive_interval(Some(self.interval))
            .http2_keepalive_timeout(Some(self.timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::coordinator_client::CoordinatorClient;
    use crate::v1::ListWorkersRequest;
    use std::time::Instant;

    /// A peer that accepts connections and never answers: what a stopped
    /// (SIGSTOP) process looks like from the network.
    #[tokio::test]
    async fn a_call_to_a_silent_peer_fails_within_the_keepalive() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let keepalive = Keepalive {
            interval: Duration::from_millis(300),
            timeout: Duration::from_millis(300),
        };
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(2));
        let channel = keepalive.client(endpoint).connect_lazy();
        let mut client = CoordinatorClient::new(channel);
        let started = Instant::now();
        let call = tokio::time::timeout(
            Duration::from_secs(10),
            client.list_workers(ListWorkersRequest {}),
        )
        .await;
        let took = started.elapsed();
        drop(listener);
        let outcome = call.expect("the call waited on the silent peer for 10 s");
        assert!(outcome.is_err(), "a silent peer cannot answer");
        assert!(took < Duration::from_secs(5), "took {took:?}");
    }
}
