//! The worker registry: who registered, where to dial them, their free slots
//! and last heartbeat. A worker is lost when its heartbeat is older than the
//! timeout or when dialing it fails; a lost worker gets no new tasks, and it
//! comes back only by registering again (under a new id). A draining worker
//! (shutting down) keeps its running tasks but gets no new ones; one that
//! left is out like a lost one. The table is bounded (`--max-workers`): lost
//! and left workers are purged [`PURGE_AFTER_TIMEOUTS`] worker timeouts
//! after they were lost, and at once when a registration finds it full.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arrow_flight::flight_service_client::FlightServiceClient;
use rfm_proto::auth::Token;
use rfm_proto::keepalive::Keepalive;
use rfm_proto::tls::ClientTls;
use rfm_proto::v1::worker_client::WorkerClient;
use rfm_proto::v1::{WorkerInfo, WorkerPhase};
use rfm_proto::MAX_MESSAGE_BYTES;
use tokio::sync::Notify;
use tonic::transport::{Channel, Endpoint};
use tonic::Status;

/// A lost or left worker stays listed (for `rfm workers` and error
/// messages) this many worker timeouts, then it is purged.
pub const PURGE_AFTER_TIMEOUTS: u32 = 6;

struct Entry {
    address: String,
    slots: u32,
    running: u32,
    last_heartbeat: Instant,
    /// Why the worker was declared lost (or left), if it was.
    lost: Option<String>,
    /// When it was declared lost (or left).
    lost_at: Option<Instant>,
    /// It left on its own (shut down) rather than being lost.
    left: bool,
    /// It is shutting down: no new tasks.
    draining: bool,
    /// Until then the worker gets new tasks only when no other worker has a
    /// free slot (an attempt hung there past the task timeout).
    suspect_until: Option<Instant>,
    tasks: WorkerClient<Channel>,
    flight: FlightServiceClient<Channel>,
    access: WorkerAccess,
}

/// How the coordinator calls a worker, as it said at registration.
#[derive(Clone, Debug, Default)]
pub struct WorkerAccess {
    /// The worker's call secret, sent on every call to it.
    pub call_secret: Token,
    /// It was started with `--insecure`.
    pub insecure: bool,
}

/// All workers this coordinator has heard of.
pub struct Registry {
    workers: Mutex<BTreeMap<String, Entry>>,
    next_id: AtomicU64,
    timeout: Duration,
    /// Most entries of the table (`--max-workers`).
    max_workers: usize,
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
    /// The worker's call secret, sent on every call to it.
    pub call_secret: Token,
    registry: Arc<Registry>,
    /// The slot was given back before the lease ended ([`Lease::free_slot`]).
    freed: bool,
}

impl Lease {
    /// Gives the worker's slot back while the lease is still used: the
    /// task has been computed there, and fetching its state does not take
    /// a compute slot. The lease's clients stay usable.
    pub fn free_slot(&mut self) {
        if !std::mem::replace(&mut self.freed, true) {
            self.registry.release(&self.worker_id);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.free_slot();
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

impl Entry {
    fn lose(&mut self, why: String) {
        self.lost = Some(why);
        self.lost_at = Some(Instant::now());
    }
}

impl Registry {
    pub fn new(timeout: Duration, keepalive: Keepalive, max_workers: usize) -> Registry {
        Registry {
            workers: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            timeout,
            max_workers: max_workers.max(1),
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

    /// Adds a worker; an earlier, lost entry with the same address is
    /// dropped. A full table first drops its lost and left workers; when it
    /// is still full the registration is RESOURCE_EXHAUSTED.
    pub fn register(
        &self,
        address: String,
        slots: u32,
        access: WorkerAccess,
    ) -> Result<String, Status> {
        let endpoint = self
            .endpoint(&address)
            .map_err(Status::invalid_argument)?
            .connect_timeout(Duration::from_secs(2));
        let channel = self.keepalive.client(endpoint).connect_lazy();
        let tasks = WorkerClient::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let flight = FlightServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let mut workers = self.lock();
        workers.retain(|_, e| !(e.address == address && e.lost.is_some()));
        if workers.len() >= self.max_workers {
            workers.retain(|_, e| e.lost.is_none());
        }
        if workers.len() >= self.max_workers {
            return Err(Status::resource_exhausted(format!(
                "the coordinator has {} live workers, its limit (--max-workers {}); \
                 stop a worker or raise the limit",
                workers.len(),
                self.max_workers
            )));
        }
        let id = format!("w{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        workers.insert(
            id.clone(),
            Entry {
                address,
                slots: slots.max(1),
                running: 0,
                last_heartbeat: Instant::now(),
                lost: None,
                lost_at: None,
                left: false,
                draining: false,
                suspect_until: None,
                tasks,
                flight,
                access,
            },
        );
        drop(workers);
        self.changed.notify_waiters();
        Ok(id)
    }

    /// Records a heartbeat in the worker's `phase`; false if the worker is
    /// unknown or lost, or `call_secret` is not its registration's (a
    /// heartbeat speaks only for the worker that registered).
    pub fn heartbeat(&self, id: &str, call_secret: &str, phase: WorkerPhase) -> bool {
        let mut workers = self.lock();
        let Some(e) = workers
            .get_mut(id)
            .filter(|e| e.lost.is_none() && e.access.call_secret.matches(call_secret))
        else {
            return false;
        };
        e.last_heartbeat = Instant::now();
        match phase {
            WorkerPhase::Active => e.draining = false,
            WorkerPhase::Draining => e.draining = true,
            WorkerPhase::Left => {
                e.lose("it left (shut down)".into());
                e.left = true;
                drop(workers);
                // Drivers re-run what it still ran.
                self.changed.notify_waiters();
            }
        }
        true
    }

    /// Declares lost every worker whose heartbeat is too old (returns them
    /// as (id, address)), and purges those lost or left for longer than
    /// [`PURGE_AFTER_TIMEOUTS`] worker timeouts.
    pub fn sweep(&self) -> Vec<(String, String)> {
        let mut newly_lost = Vec::new();
        let mut workers = self.lock();
        for (id, e) in workers.iter_mut() {
            let silent = e.last_heartbeat.elapsed();
            if e.lost.is_none() && silent > self.timeout {
                e.lose(format!("no heartbeat for {:.1} s", silent.as_secs_f64()));
                newly_lost.push((id.clone(), e.address.clone()));
            }
        }
        let keep_lost = self.timeout * PURGE_AFTER_TIMEOUTS;
        workers.retain(|_, e| e.lost_at.is_none_or(|at| at.elapsed() <= keep_lost));
        newly_lost
    }

    /// Declares a worker lost (dialing or fetching from it failed).
    pub fn mark_lost(&self, id: &str, reason: &str) -> bool {
        match self.lock().get_mut(id) {
            Some(e) if e.lost.is_none() => {
                e.lose(reason.to_string());
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

    /// The task client of a worker and its call secret (to cancel its tasks).
    pub fn tasks_client(&self, id: &str) -> Option<(WorkerClient<Channel>, Token)> {
        self.lock()
            .get(id)
            .map(|e| (e.tasks.clone(), e.access.call_secret.clone()))
    }

    pub fn alive_count(&self) -> usize {
        self.lock().values().filter(|e| e.lost.is_none()).count()
    }

    /// The task slots of the live workers that take new tasks.
    pub fn accepting_slots(&self) -> u64 {
        self.lock()
            .values()
            .filter(|e| e.lost.is_none() && !e.draining)
            .map(|e| e.slots as u64)
            .sum()
    }

    /// Live workers that take new tasks and compute nothing, of any job:
    /// every slot is free (a task's slot is given back once it is computed,
    /// while its state is still to be fetched).
    pub fn idle(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, e)| e.lost.is_none() && !e.draining && e.running == 0)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Live workers that take new tasks (not draining).
    pub fn accepting_count(&self) -> usize {
        self.lock()
            .values()
            .filter(|e| e.lost.is_none() && !e.draining)
            .count()
    }

    /// Takes a free slot on the live worker with the most free slots, on a
    /// worker neither in `avoid` nor suspect when one has a free slot, else
    /// on any.
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
            call_secret: e.access.call_secret.clone(),
            registry: self.clone(),
            freed: false,
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
                insecure: e.access.insecure,
                tls: self.tls.is_some(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn access() -> WorkerAccess {
        WorkerAccess {
            call_secret: Token::new(Some(SECRET.into())),
            insecure: false,
        }
    }

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
            8,
        ));
        let id = reg.register("127.0.0.1:1".into(), 2, access()).unwrap();
        assert_eq!(reg.idle(), std::slice::from_ref(&id));
        let mut a = reg.acquire_avoiding(&[]).unwrap();
        assert!(reg.idle().is_empty(), "a slot of two in use: not idle");
        let _b = reg.acquire_avoiding(&[]).unwrap();
        assert!(reg.acquire_avoiding(&[]).is_none(), "two slots only");
        a.free_slot();
        assert!(reg.idle().is_empty(), "the other slot still computes");
        drop(a);
        assert!(reg.acquire_avoiding(&[]).is_some());
        assert!(reg.heartbeat(&id, SECRET, WorkerPhase::Active));
        // A heartbeat speaks only for the worker that registered: another
        // secret (a holder of the worker token) cannot keep it or make it leave.
        assert!(!reg.heartbeat(&id, "another secret of 32 characters!", WorkerPhase::Left));
        assert!(!reg.heartbeat(&id, "", WorkerPhase::Left));
        assert!(reg.is_alive(&id));
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(reg.sweep().len(), 1);
        assert!(
            !reg.heartbeat(&id, SECRET, WorkerPhase::Active),
            "a lost worker must register again"
        );
        assert_eq!(reg.alive_count(), 0);
        assert!(reg.lost_summary().contains("no heartbeat"));
    }

    #[tokio::test]
    async fn the_table_is_bounded_and_lost_workers_are_purged() {
        let reg = Arc::new(Registry::new(
            Duration::from_millis(20),
            Keepalive::default(),
            2,
        ));
        let first = reg.register("127.0.0.1:1".into(), 1, access()).unwrap();
        reg.register("127.0.0.1:2".into(), 1, access()).unwrap();
        let full = reg.register("127.0.0.1:3".into(), 1, access()).unwrap_err();
        assert_eq!(full.code(), tonic::Code::ResourceExhausted);
        assert!(full.message().contains("--max-workers 2"), "{full:?}");
        // A full table makes room by purging its lost workers at once.
        reg.mark_lost(&first, "test");
        let third = reg.register("127.0.0.1:3".into(), 1, access()).unwrap();
        assert_eq!(reg.list().len(), 2);
        // Silent workers are lost, then purged after 6 timeouts.
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(reg.sweep().len(), 2);
        assert_eq!(reg.list().len(), 2, "lost workers stay listed a while");
        std::thread::sleep(Duration::from_millis(140));
        reg.sweep();
        assert!(reg.list().is_empty(), "purged");
        assert!(!reg.heartbeat(&third, SECRET, WorkerPhase::Active));
    }

    #[tokio::test]
    async fn a_draining_worker_gets_no_new_task_and_one_that_left_is_out() {
        let reg = Arc::new(Registry::new(
            Duration::from_secs(60),
            Keepalive::default(),
            8,
        ));
        let leaving = reg.register("127.0.0.1:1".into(), 4, access()).unwrap();
        let staying = reg.register("127.0.0.1:2".into(), 1, access()).unwrap();
        let running = reg.acquire_avoiding(&[]).unwrap();
        assert_eq!(running.worker_id, leaving, "the most free slots first");
        assert!(reg.heartbeat(&leaving, SECRET, WorkerPhase::Draining));
        assert!(reg.is_alive(&leaving), "it still finishes its running task");
        assert_eq!((reg.alive_count(), reg.accepting_count()), (2, 1));
        let next = reg.acquire_avoiding(&[]).unwrap();
        assert_eq!(next.worker_id, staying);
        assert!(
            reg.acquire_avoiding(&[]).is_none(),
            "no slot on a draining worker"
        );
        assert!(reg.heartbeat(&leaving, SECRET, WorkerPhase::Left));
        assert!(!reg.is_alive(&leaving));
        let states: Vec<String> = reg.list().into_iter().map(|w| w.state).collect();
        assert_eq!(states, ["left", "alive"]);
        assert!(reg.lost_summary().contains("left (shut down)"));
        drop((running, next));
    }
}
