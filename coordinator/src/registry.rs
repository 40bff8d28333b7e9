//! The worker registry: who registered, where to dial them, their free slots
//! and last heartbeat. A worker is lost when its heartbeat is older than the
//! timeout or when dialing it fails; a lost worker gets no new tasks, and it
//! comes back only by registering again (under a new id). A draining worker
//! (shutting down) keeps its running tasks but gets no new ones; one that
//! left is out like a lost one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arrow_flight::flight_service_client::FlightServiceClient;
use rfm_proto::keepalive::Keepalive;
use rfm_proto::tls::ClientTls;
use rfm_proto::v1::worker_client::WorkerClient;
use rfm_proto::v1::{WorkerInfo, WorkerPhase};
use rfm_proto::MAX_MESSAGE_BYTES;
use tokio::sync::Notify;
use tonic::transport::{Channel, Endpoint};

struct Entry {
    address: String,
    slots: u32,
    running: u32,
    last_heartbeat: Instant,
    /// Why the worker was declared lost (or left), if it was.
    lost: Option<String>,
    /// It left on its own (shut down) rather than being lost.
    left: bool,
    /// It is shutting down: no new tasks.
    draining: bool,
    /// Until then the worker gets new tasks only when no other worker has a
    /// free slot (an attempt hung there past the task timeout).
    suspect_until: Option<Instant>,
    tasks: WorkerClient<Channel>,
    flight: FlightServiceClient<Channel>,
}

/// All workers this coordinator has heard of.
pub struct Registry {
    workers: Mutex<BTreeMap<String, Entry>>,
    next_id: AtomicU64,
    timeout: Duration,
    /// Keepalive of the connections to the workers.
    keepalive: Keepalive,
    /// TLS of the connections to the workers, if they serve it.
    tls: Option<ClientTls>,
    /// The name checked on every worker's certificate (default: the host
    /// it is dialled at).
    tls_name: Option<String>,
    /// Woken when a worker registers or a slot frees up.
    pub changed: Notify,
}

/// A slot on a worker, held while a task attempt runs there; dropping it
/// frees the slot.
pub struct Lease {
    pub worker_id: String,
    pub address: String,
    pub tasks: WorkerClient<Channel>,
    pub flight: FlightServiceClient<Channel>,
    registry: Arc<Registry>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.registry.release(&self.worker_id);
    }
}

/// The `host:port` to dial for a worker.
pub fn dial_address(advertise_host: &str, port: u16, peer: Option<SocketAddr>) -> String {
    if advertise_host.is_empty() {
        let ip = peer
            .map(|p| p.ip())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        return SocketAddr::new(ip, port).to_string();
    }
    if advertise_host.contains(':') {
        format!("[{advertise_host}]:{port}")
    } else {
        format!("{advertise_host}:{port}")
    }
}

impl Registry {
    pub fn new(timeout: Duration, keepalive: Keepalive) -> Registry {
        Registry {
            workers: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            timeout,
            keepalive,
            tls: None,
            tls_name: None,
            changed: Notify::new(),
        }
    }

    /// Dials workers over TLS (https) with `tls`, checking `name` on their
    /// certificates (default: the host each is dialled at); `None`: plaintext.
    pub fn dialing_with_tls(mut self, tls: Option<ClientTls>, name: Option<String>) -> Registry {
        self.tls = tls;
        self.tls_name = name;
        self
    }

    /// The endpoint of a worker's `host:port`.
    fn endpoint(&self, address: &str) -> Result<Endpoint, String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let domain = self
            .tls_name
            .clone()
            .unwrap_or_else(|| rfm_proto::tls::host_of(address).to_string());
        rfm_proto::tls::endpoint(
            &format!("{scheme}://{address}"),
            self.tls.as_ref(),
            Some(&domain),
        )
        .map_err(|e| format!("cannot dial {address}: {e}"))
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.workers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a worker; an earlier, lost entry with the same address is dropped.
    pub fn register(&self, address: String, slots: u32) -> Result<String, String> {
        let endpoint = self
            .endpoint(&address)?
            .connect_timeout(Duration::from_secs(2));
        let channel = self.keepalive.client(endpoint).connect_lazy();
        let tasks = WorkerClient::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let flight = FlightServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let id = format!("w{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let mut workers = self.lock();
        workers.retain(|_, e| !(e.address == address && e.lost.is_some()));
        workers.insert(
            id.clone(),
            Entry {
                address,
                slots: slots.max(1),
                running: 0,
                last_heartbeat: Instant::now(),
                lost: None,
                left: false,
                draining: false,
                suspect_until: None,
                tasks,
                flight,
            },
        );
        drop(workers);
        self.changed.notify_waiters();
        Ok(id)
    }

    /// Records a heartbeat in the worker's `phase`; false if the worker is
    /// unknown or lost.
    pub fn heartbeat(&self, id: &str, phase: WorkerPhase) -> bool {
        let mut workers = self.lock();
        let Some(e) = workers.get_mut(id).filter(|e| e.lost.is_none()) else {
            return false;
        };
        e.last_heartbeat = Instant::now();
        match phase {
            WorkerPhase::Active => e.draining = false,
            WorkerPhase::Draining => e.draining = true,
            WorkerPhase::Left => {
                e.lost = Some("it left (shut down)".into());
                e.left = true;
                drop(workers);
                // Drivers re-run what it still ran.
                self.changed.notify_waiters();
            }
        }
        true
    }

    /// Declares lost every worker whose heartbeat is too old; returns them
    /// as (id, address).
    pub fn sweep(&self) -> Vec<(String, String)> {
        let mut newly_lost = Vec::new();
        for (id, e) in self.lock().iter_mut() {
            let silent = e.last_heartbeat.elapsed();
            if e.lost.is_none() && silent > self.timeout {
                e.lost = Some(format!("no heartbeat for {:.1} s", silent.as_secs_f64()));
                newly_lost.push((id.clone(), e.address.clone()));
            }
        }
        newly_lost
    }

    /// Declares a worker lost (dialing or fetching from it failed).
    pub fn mark_lost(&self, id: &str, reason: &str) -> bool {
        match self.lock().get_mut(id) {
            Some(e) if e.lost.is_none() => {
                e.lost = Some(reason.to_string());
                true
            }
            _ => false,
        }
    }

    /// Gives a worker new tasks only as a last resort for `period`: an
    /// attempt hung there past the task timeout, and its freed slot may well
    /// hang the next one too.
    pub fn suspect(&self, id: &str, period: Duration) {
        if let Some(e) = self.lock().get_mut(id) {
            e.suspect_until = Some(Instant::now() + period);
        }
    }

    pub fn is_alive(&self, id: &str) -> bool {
        self.lock().get(id).is_some_and(|e| e.lost.is_none())
    }

    /// The task client of a worker (to cancel its tasks).
    pub fn tasks_client(&self, id: &str) -> Option<WorkerClient<Channel>> {
        self.lock().get(id).map(|e| e.tasks.clone())
    }

    pub fn alive_count(&self) -> usize {
        self.lock().values().filter(|e| e.lost.is_none()).count()
    }

    /// Live workers that take new tasks (not draining).
    pub fn accepting_count(&self) -> usize {
        self.lock()
            .values()
            .filter(|e| e.lost.is_none() && !e.draining)
            .count()
    }

    /// Takes a free slot on the live worker with the most free slots.
    pub fn acquire(self: &Arc<Self>) -> Option<Lease> {
        self.acquire_avoiding(&[])
    }

    /// [`Registry::acquire`], on a worker neither in `avoid` nor suspect when
    /// one has a free slot, else on any.
    pub fn acquire_avoiding(self: &Arc<Self>, avoid: &[String]) -> Option<Lease> {
        let now = Instant::now();
        let mut workers = self.lock();
        let (id, e) = workers
            .iter_mut()
            .filter(|(_, e)| e.lost.is_none() && !e.draining && e.running < e.slots)
            .max_by_key(|(id, e)| {
                (
                    !avoid.contains(id),
                    e.suspect_until.is_none_or(|until| until <= now),
                    e.slots - e.running,
                    std::cmp::Reverse(e.running),
                )
            })?;
        e.running += 1;
        Some(Lease {
            worker_id: id.clone(),
            address: e.address.clone(),
            tasks: e.tasks.clone(),
            flight: e.flight.clone(),
            registry: self.clone(),
        })
    }

    fn release(&self, id: &str) {
        if let Some(e) = self.lock().get_mut(id) {
            e.running = e.running.saturating_sub(1);
        }
        self.changed.notify_waiters();
    }

    /// The lost workers, for error messages: `w1 (10.0.0.5:50052: no heartbeat for 10.2 s)`.
    pub fn lost_summary(&self) -> String {
        let lost: Vec<String> = self
            .lock()
            .iter()
            .filter_map(|(id, e)| {
                e.lost
                    .as_ref()
                    .map(|why| format!("{id} ({}: {why})", e.address))
            })
            .collect();
        if lost.is_empty() {
            "none ever registered".into()
        } else {
            lost.join(", ")
        }
    }

    /// Every known worker, for `ListWorkers`.
    pub fn list(&self) -> Vec<WorkerInfo> {
        self.lock()
            .iter()
            .map(|(id, e)| WorkerInfo {
                worker_id: id.clone(),
                address: e.address.clone(),
                state: match (&e.lost, e.left, e.draining) {
                    (Some(_), true, _) => "left",
                    (Some(_), false, _) => "lost",
                    (None, _, true) => "draining",
                    (None, _, false) => "alive",
                }
                .into(),
                slots: e.slots,
                running_tasks: e.running,
                seconds_since_heartbeat: e.last_heartbeat.elapsed().as_secs_f64(),
                tls: self.tls.is_some(),
                ..Default::default()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_addresses() {
        let peer: SocketAddr = "10.1.2.3:5555".parse().unwrap();
        assert_eq!(dial_address("", 7000, Some(peer)), "10.1.2.3:7000");
        assert_eq!(dial_address("worker-1", 7000, Some(peer)), "worker-1:7000");
        assert_eq!(dial_address("::1", 7000, None), "[::1]:7000");
    }

    #[tokio::test]
    async fn slots_and_expiry() {
        let reg = Arc::new(Registry::new(
            Duration::from_millis(50),
            Keepalive::default(),
        ));
        let id = reg.register("127.0.0.1:1".into(), 2).unwrap();
        let a = reg.acquire().unwrap();
        let _b = reg.acquire().unwrap();
        assert!(reg.acquire().is_none(), "two slots only");
        drop(a);
        assert!(reg.acquire().is_some());
        assert!(reg.heartbeat(&id, WorkerPhase::Active));
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(reg.sweep().len(), 1);
        assert!(
            !reg.heartbeat(&id, WorkerPhase::Active),
            "a lost worker must register again"
        );
        assert_eq!(reg.alive_count(), 0);
        assert!(reg.lost_summary().contains("no heartbeat"));
    }

    #[tokio::test]
    async fn a_draining_worker_gets_no_new_task_and_one_that_left_is_out() {
        let reg = Arc::new(Registry::new(Duration::from_secs(60), Keepalive::default()));
        let leaving = reg.register("127.0.0.1:1".into(), 4).unwrap();
        let staying = reg.register("127.0.0.1:2".into(), 1).unwrap();
        let running = reg.acquire().unwrap();
        assert_eq!(running.worker_id, leaving, "the most free slots first");
        assert!(reg.heartbeat(&leaving, WorkerPhase::Draining));
        assert!(reg.is_alive(&leaving), "it still finishes its running task");
        assert_eq!((reg.alive_count(), reg.accepting_count()), (2, 1));
        let next = reg.acquire().unwrap();
        assert_eq!(next.worker_id, staying);
        assert!(reg.acquire().is_none(), "no slot on a draining worker");
        assert!(reg.heartbeat(&leaving, WorkerPhase::Left));
        assert!(!reg.is_alive(&leaving));
        let states: Vec<String> = reg.list().into_iter().map(|w| w.state).collect();
        assert_eq!(states, ["left", "alive"]);
        assert!(reg.lost_summary().contains("left (shut down)"));
        drop((running, next));
    }
}
