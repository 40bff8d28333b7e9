//! PostgreSQL sink of rfm runs.
//!
//! [`Store::connect`] opens a connection and applies the embedded schema
//! migrations. A run is recorded with [`Store::begin_run`] (status `running`,
//! with its owner's lease, renewed by a [`Heartbeat`]), then either [`Store::publish`]ed — customers and segments bulk-loaded with
//! binary `COPY` in one transaction that also turns the run `published`, so a
//! reader sees the whole run or none of it — or marked with [`Store::fail`].
//! Runs whose owner stopped renewing their lease are marked `abandoned` by
//! [`Store::abandon_expired`], which every process starting with the database calls.
//! Readers ([`Store::runs`], [`Store::latest_segments`], [`Store::customers`],
//! [`Store::cut_points`]) serve the read side (`rfm-runs`).

mod connect;
mod error;
mod lease;
mod load;
mod migrate;
pub mod pgtypes;
mod query;
mod recorder;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;

pub use connect::Target;
pub use error::{Error, Result};
pub use lease::{Abandoned, Heartbeat, Lease, Owner, DEFAULT_LEASE, DEFAULT_RENEW_EVERY};
pub use migrate::{Migration, MIGRATIONS};
pub use query::{CustomerQuery, CustomerRecord, RunInfo, RunWithReport, SegmentFigures};
pub use recorder::Recorder;

/// Checks a database URL without connecting: its form ([`Error::Url`])
/// and its TLS parameters ([`Error::TlsSettings`]).
pub fn check_url(url: &str) -> Result<()> {
    connect::parse(url).map(|_| ())
}
pub use rfm_core::RunStatus;

/// A run's key in the database (`rfm_runs.id`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct RunId(pub i64);

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A connection to the rfm database.
pub struct Store {
    client: postgres::Client,
    endpoint: connect::Endpoint,
    target: Target,
}

impl Store {
    /// Connects to `url` (a `postgresql://` URL or `key=value` string) and
    /// applies any pending migrations. TLS follows the URL's `sslmode` and
    /// `sslrootcert` as libpq does ([`tls`]). Without a `connect_timeout` in the URL,
    /// gives up after `connect::DEFAULT_CONNECT_TIMEOUT`.
    pub fn connect(url: &str) -> Result<Store> {
        let endpoint = connect::parse(url)?;
        let mut client = connect::open(&endpoint)?;
        let target = endpoint.target.clone();
        migrate::apply(&mut client, &target)?;
        Ok(Store {
            client,
            endpoint,
            target,
        })
    }

    /// Where this store is connected (host, port, database, user).
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The underlying client, for queries this API does not cover.
    pub fn client(&mut self) -> &mut postgres::Client {
        &mut self.client
    }

    /// Reconnects when the connection was lost (e.g. the server restarted).
    fn ensure_connected(&mut self) -> Result<()> {
        if self.client.is_closed() {
            self.client = connect::open(&self.endpoint)?;
        }
        Ok(())
    }

    fn query_err(&self, action: &str) -> impl Fn(postgres::Error) -> Error + '_ {
        let target = self.target.to_string();
        let action = action.to_string();
        move |source| Error::query(&target, &action, source)
    }
}
