//! Leases on running runs. A process that records runs is their [`Owner`]
//! (host, pid, kind, a random instance id); each of its `running` rows holds a
//! lease until `lease_expires_at`, which a [`Heartbeat`] thread renews over
//! its own connection, so a long load never delays it. A process starting
//! with the database calls [`Store::abandon_expired`]: runs whose lease ran
//! out (their owner was killed or lost the database) become `abandoned`, with
//! the reason. Times are the server's, so clocks of the hosts never matter.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use postgres::Client;

use crate::connect;
use crate::error::{Error, Result};
use crate::Store;

/// How often an owner renews its leases, unless configured.
pub const DEFAULT_RENEW_EVERY: Duration = Duration::from_secs(5);
/// How long a lease lasts without renewal, unless configured.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// The process that owns runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub host: String,
    pub pid: u32,
    /// What kind of process: `rfm run`, `rfm-coordinator`, ….
    pub kind: String,
    /// Random per process start: tells a restarted process (same pid) apart.
    pub instance: String,
}

impl Owner {
    /// This process, of the given kind.
    pub fn this_process(kind: &str) -> Owner {
        Owner {
            host: host_name(),
            pid: std::process::id(),
            kind: kind.to_string(),
            instance: random_hex(),
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} ({}, instance {})",
            self.host, self.pid, self.kind, self.instance
        )
    }
}

/// An owner and the terms of its leases.
#[derive(Clone, Debug)]
pub struct Lease {
    pub owner: Owner,
    /// How long a lease lasts without renewal.
    pub duration: Duration,
    /// How often the heartbeat renews it (shorter than `duration`).
    pub renew_every: Duration,
}

impl Lease {
    /// Leases of this process with the given terms; an error unless the
    /// renewal comes well within the lease (at most half of it) and both are
    /// at least a millisecond.
    pub fn new(
        kind: &str,
        duration: Duration,
        renew_every: Duration,
    ) -> std::result::Result<Lease, String> {
        if renew_every < Duration::from_millis(1) || duration < 2 * renew_every {
            return Err(format!(
                "the run lease ({} ms) must be at least twice its heartbeat ({} ms), and the heartbeat at least 1 ms",
                duration.as_millis(),
                renew_every.as_millis()
            ));
        }
        Ok(Lease {
            owner: Owner::this_process(kind),
            duration,
            renew_every,
        })
    }

    /// Leases of this process with the default terms.
    pub fn with_defaults(kind: &str) -> Lease {
        Lease {
            owner: Owner::this_process(kind),
            duration: DEFAULT_LEASE,
            renew_every: DEFAULT_RENEW_EVERY,
        }
    }

    pub(crate) fn millis(&self) -> i64 {
        i64::try_from(self.duration.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A run marked abandoned, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Abandoned {
    pub run_id: String,
    /// `lease expired at T; owner host/pid (kind, instance I)`.
    pub reason: String,
}

/// Renews the leases of every `running` run of its owner.
const RENEW: &str = "UPDATE rfm_runs
    SET lease_expires_at = now() + $2::bigint * interval '1 millisecond'
    WHERE owner_instance = $1 AND status = 'running'";

/// Marks the runs whose lease expired `abandoned`, with the reason in
/// `error` and in the report.
const ABANDON_EXPIRED: &str = "WITH expired AS (
    SELECT id, 'lease expired at '
        || to_char(lease_expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
        || '; owner '
        || CASE WHEN owner_instance IS NULL THEN 'unknown (recorded before run leases)'
                ELSE owner_host || '/' || owner_pid || ' (' || owner_kind || ', instance '
                     || owner_instance || ')' END AS reason
    FROM rfm_runs
    WHERE status = 'running' AND lease_expires_at < now()
    FOR UPDATE SKIP LOCKED
)
UPDATE rfm_runs r
    SET status = 'abandoned', finished_at = now(), error = e.reason,
        report = r.report || jsonb_build_object('status', 'abandoned', 'error', e.reason)
    FROM expired e
    WHERE r.id = e.id AND r.status = 'running'
    RETURNING r.run_id, e.reason";

impl Store {
    /// Marks every `running` run whose lease expired `abandoned` (with the
    /// reason); returns them. Call it when starting with the database.
    pub fn abandon_expired(&mut self) -> Result<Vec<Abandoned>> {
        self.ensure_connected()?;
        let rows = self
            .client
            .query(ABANDON_EXPIRED, &[])
            .map_err(self.query_err("marking runs with expired leases abandoned"))?;
        Ok(rows
            .iter()
            .map(|r| Abandoned {
                run_id: r.get(0),
                reason: r.get(1),
            })
            .collect())
    }
}

/// A thread renewing its owner's leases every `renew_every` over a
/// connection of its own. Stops when dropped.
pub struct Heartbeat {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    /// Connects to `url` and starts renewing. `warn` hears of failed renewals
    /// (once per streak) and of their recovery.
    pub fn start(
        url: &str,
        lease: Lease,
        warn: impl Fn(&str) + Send + 'static,
    ) -> Result<Heartbeat> {
        let endpoint = connect::parse(url)?;
        let client = connect::open(&endpoint)?;
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("rfm-run-lease".into())
            .spawn(move || beat(client, endpoint, lease, stopped, warn))
            .map_err(|e| Error::Connect {
                target: "the lease heartbeat".into(),
                detail: format!("cannot start its thread: {e}"),
                hint: "check the process's thread limit".into(),
                transient: false,
            })?;
        Ok(Heartbeat {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        drop(self.stop.take());
        // Between renewals it stops at once; a renewal stuck on a lost
        // server is left to finish on its own.
        if let Some(t) = self.thread.take() {
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

fn beat(
    mut client: Client,
    endpoint: connect::Endpoint,
    lease: Lease,
    stopped: mpsc::Receiver<()>,
    warn: impl Fn(&str),
) {
    let mut failing = false;
    loop {
        match stopped.recv_timeout(lease.renew_every) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        if client.is_closed() {
            match connect::open(&endpoint) {
                Ok(c) => client = c,
                Err(e) => {
                    if !failing {
                        warn(&format!("cannot renew run leases: {e}"));
                    }
                    failing = true;
                    continue;
                }
            }
        }
        match client.execute(RENEW, &[&lease.owner.instance, &lease.millis()]) {
            Ok(_) if failing => {
                warn("run leases renewed again");
                failing = false;
            }
            Ok(_) => {}
            Err(e) => {
                if !failing {
                    let e = Error::query(&endpoint.target.to_string(), "renewing run leases", e);
                    warn(&format!("cannot renew run leases: {e}"));
                }
                failing = true;
            }
        }
    }
}

/// This host's name (Linux: the kernel's; else `$HOSTNAME`), or `unknown-host`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// 64 random bits (from the OS-seeded keys of `RandomState`) as hex.
fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}
