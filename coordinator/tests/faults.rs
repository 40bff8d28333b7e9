//! The fault matrix. A coordinator and its workers each run in a network
//! namespace of their own, joined by veth pairs (10.200.N.1 on the
//! coordinator's side, 10.200.N.2 on worker N's); loss and partitions are
//! iptables rules inside those namespaces and delay is the tests' TCP proxy.
//! The coordinator's PostgreSQL link goes through the proxy and is cut
//! mid-COPY, or crosses a veth pair and is partitioned mid-COPY. Every
//! scenario ends with the reference results of the real UCI file; a test of
//! its own checks the proxy's delay and cut. Without root or `ip netns` the namespace scenarios are skipped
//! with the reason printed (`RFM_REQUIRE_NETNS=1` makes that a failure).

use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::netns::{self, End, Netns};
use crate::support::proxy::Proxy;
use crate::support::reference::assert_uci_reference;
use crate::support::{assert_task_delay, bin, latest_run, serial, task_delay, Proc, REAL};
use rfm_store::testing;

const COORDINATOR_PORT: u16 = 7000;
const WORKER_PORT: u16 = 7100;
/// Where a slow link's proxy takes the coordinator's calls to its worker.
const WORKER_PROXY_PORT: u16 = 7101;
/// The workers' /metrics port, inside their namespaces.
const WORKER_HTTP_PORT: u16 = 7200;
/// The coordinator as seen from its own namespace (clients run there).
const COORDINATOR_URL: &str = "http://127.0.0.1:7000";

/// How a worker's link to the coordinator behaves.
#[derive(Clone, Copy)]
enum Link {
    Clean,
    /// Every byte held this long in each direction, by proxies in the
    /// worker's namespace.
    Slow(Duration),
}

/// A coordinator in namespace `hub` and one namespace per worker. Fields
/// drop in order: processes, then proxies, then namespaces.
struct Lab {
    coordinator: Proc,
    workers: Vec<Proc>,
    proxies: Vec<Proxy>,
    /// (coordinator's end, worker's end) of each worker's veth pair.
    links: Vec<(End, End)>,
    worker_ns: Vec<Netns>,
    hub: Netns,
}

fn addr(ip: std::net::Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

impl Lab {
    fn start(coordinator_args: &[&str], links: &[Link], task_delay_ms: u64) -> Lab {
        let hub = Netns::create("hub").expect("a namespace for the coordinator");
        let mut cmd = hub.command(bin("rfm-coordinator"));
        // The lab's namespaces are private: its servers run open (--insecure).
        cmd.args([
            "--listen",
            &format!("0.0.0.0:{COORDINATOR_PORT}"),
            "--insecure",
        ])
        .args(coordinator_args);
        let coordinator = Proc::spawn(cmd);
        coordinator.wait_for("listening on", 1, Duration::from_secs(20));
        let mut lab = Lab {
            coordinator,
            workers: Vec::new(),
            proxies: Vec::new(),
            links: Vec::new(),
            worker_ns: Vec::new(),
            hub,
        };
        for (i, link) in links.iter().enumerate() {
            lab.add_worker(i as u8 + 1, *link, task_delay_ms);
        }
        lab.coordinator
            .wait_for("registered at", links.len(), Duration::from_secs(20));
        lab
    }

    fn add_worker(&mut self, n: u8, link: Link, task_delay_ms: u64) {
        let ns = Netns::create(&format!("w{n}")).expect("a namespace for a worker");
        let (hub_end, worker_end) = self.hub.link(&ns, n);
        let mut cmd = ns.command(bin("rfm-worker"));
        cmd.args(["--threads", "1", "--heartbeat-interval", "200ms"])
            .args(["--http-listen", &format!("127.0.0.1:{WORKER_HTTP_PORT}")]);
        match link {
            Link::Clean => {
                cmd.args([
                    "--coordinator",
                    &format!("http://{}:{COORDINATOR_PORT}", hub_end.ip),
                    "--insecure",
                    "--listen",
                    &format!("0.0.0.0:{WORKER_PORT}"),
                    "--advertise",
                    &addr(worker_end.ip, WORKER_PORT).to_string(),
                ]);
            }
            Link::Slow(delay) => {
                let local = std::net::Ipv4Addr::LOCALHOST;
                self.proxies.push(Proxy::start(
                    addr(local, COORDINATOR_PORT),
                    addr(hub_end.ip, COORDINATOR_PORT),
                    delay,
                    Some(&ns),
                    Some(&ns),
                ));
                self.proxies.push(Proxy::start(
                    addr(worker_end.ip, WORKER_PROXY_PORT),
                    addr(local, WORKER_PORT),
                    delay,
                    Some(&ns),
                    Some(&ns),
                ));
                cmd.args([
                    "--coordinator",
                    COORDINATOR_URL,
                    "--listen",
                    &addr(local, WORKER_PORT).to_string(),
                    "--advertise",
                    &addr(worker_end.ip, WORKER_PROXY_PORT).to_string(),
                ]);
            }
        }
        let worker = Proc::spawn(task_delay(cmd, task_delay_ms));
        if task_delay_ms > 0 {
            assert_task_delay(&worker);
        }
        self.workers.push(worker);
        self.links.push((hub_end, worker_end));
        self.worker_ns.push(ns);
    }

    /// A counter of worker `i`'s /metrics, read from inside its namespace.
    fn worker_metric(&self, i: usize, name: &str) -> u64 {
        let ns = self.worker_ns[i].file();
        let page = std::thread::spawn(move || {
            netns::enter_on_this_thread(&ns);
            let mut conn = std::net::TcpStream::connect(("127.0.0.1", WORKER_HTTP_PORT))
                .expect("the worker's HTTP port");
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: worker\r\n\r\n")
                .unwrap();
            let mut page = String::new();
            conn.read_to_string(&mut page).expect("the metrics page");
            page
        })
        .join()
        .expect("metrics read");
        page.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{page}")) as u64
    }

    /// Sends small messages across worker `i`'s link and back (an echo
    /// server in the worker's namespace, a client in the coordinator's, each
    /// message its own packet) until both ends have dropped a packet: a lossy
    /// link shows its loss within seconds, whatever the heartbeats' pace.
    fn cross_link_until_both_ends_drop(&self, i: usize, timeout: Duration) {
        let (_, worker_end) = &self.links[i];
        let (worker_ns, hub_ns) = (self.worker_ns[i].file(), self.hub.file());
        let ip = worker_end.ip;
        let (bound, addr) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            netns::enter_on_this_thread(&worker_ns);
            let listener = std::net::TcpListener::bind((ip, 0)).expect("an echo port");
            bound.send(listener.local_addr().unwrap()).unwrap();
            if let Ok((mut conn, _)) = listener.accept() {
                let mut buf = [0u8; 8];
                while conn.read_exact(&mut buf).is_ok() && conn.write_all(&buf).is_ok() {}
            }
        });
        let addr = addr.recv().expect("the echo server's address");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let client = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                netns::enter_on_this_thread(&hub_ns);
                let mut conn = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10))
                    .expect("the echo server across the link");
                conn.set_nodelay(true).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut buf = [0u8; 8];
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if conn.write_all(b"rfm-echo").is_err() || conn.read_exact(&mut buf).is_err() {
                        break;
                    }
                }
            })
        };
        let start = Instant::now();
        while self.hub.dropped_packets() == 0 || self.worker_ns[i].dropped_packets() == 0 {
            assert!(
                start.elapsed() < timeout,
                "the lossy link lost no packet in {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        client.join().expect("the echo client");
    }

    /// `rfm ARGS --coordinator … --json` run in the coordinator's namespace.
    fn rfm_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self
            .hub
            .command(bin("rfm"))
            .args(args)
            .args(["--coordinator", COORDINATOR_URL, "--json"])
            .output()
            .expect("run rfm");
        assert!(
            out.status.success(),
            "rfm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("rfm --json prints JSON")
    }

    fn submit(&self, out: &Path, chunk_size: &str) -> Proc {
        let mut cmd = self.hub.command(bin("rfm"));
        cmd.args(["submit", REAL, "--coordinator", COORDINATOR_URL])
            .args(["--chunk-size", chunk_size, "--out"])
            .arg(out);
        Proc::spawn(cmd)
    }

    /// Waits until the (only) job has at least `done` finished tasks.
    fn wait_tasks_done(&self, done: u64, timeout: Duration) {
        let start = Instant::now();
        loop {
            let jobs = self.rfm_json(&["jobs"]);
            if jobs
                .as_array()
                .and_then(|j| j.first())
                .is_some_and(|j| j["tasks_done"].as_u64() >= Some(done))
            {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "fewer than {done} tasks done within {timeout:?}: {jobs}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn wait_success(submit: &mut Proc, timeout: Duration) {
    let status = submit.wait_exit(timeout);
    assert!(
        status.success(),
        "rfm submit: {status}\n{}",
        submit.stderr()
    );
}

/// The proxy itself: each direction is held for the delay, and a cut
/// closes the open connection while new ones are still forwarded.
#[test]
fn the_test_proxy_delays_each_direction_and_cuts() {
    let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = echo.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in echo.incoming() {
            let Ok(mut conn) = conn else { break };
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    if conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let delay = Duration::from_millis(200);
    let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), upstream, delay, None, None);
    let connect = || {
        let conn = std::net::TcpStream::connect(proxy.addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn
    };
    let mut conn = connect();
    let sent = Instant::now();
    conn.write_all(b"ping").unwrap();
    let mut answer = [0u8; 4];
    conn.read_exact(&mut answer).unwrap();
    let round_trip = sent.elapsed();
    assert_eq!(&answer, b"ping");
    assert!(
        round_trip >= delay * 2 && round_trip < Duration::from_secs(5),
        "round trip {round_trip:?} through a proxy holding bytes {delay:?} each way"
    );
    proxy.cut();
    let mut rest = Vec::new();
    assert!(
        matches!(conn.read_to_end(&mut rest), Ok(0) | Err(_)),
        "the cut connection is closed"
    );
    let mut again = connect();
    again.write_all(b"pong").unwrap();
    again.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"pong");
    assert!(proxy.bytes() >= 12, "{} bytes counted", proxy.bytes());
}

#[test]
fn a_slow_lossy_link_to_one_worker_changes_no_result() {
    if !netns::usable("faults::a_slow_lossy_link_to_one_worker_changes_no_result") {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let lab = Lab::start(
        &["--worker-timeout", "3s"],
        &[Link::Slow(Duration::from_millis(200)), Link::Clean],
        // Tasks long enough for the slow worker's share not to be taken
        // by the clean one while its first tasks cross the slow link.
        250,
    );
    // 5 % of the packets lost each way on worker 1's veth pair.
    let (hub_end, worker_end) = &lab.links[0];
    lab.hub.lose(&hub_end.iface, 0.05);
    lab.worker_ns[0].lose(&worker_end.iface, 0.05);
    // Packets are seen lost both ways before the job.
    lab.cross_link_until_both_ends_drop(0, Duration::from_secs(30));

    let out = tmp.path().join("out");
    let mut submit = lab.submit(&out, "2MiB");
    wait_success(&mut submit, Duration::from_secs(90));
    assert_uci_reference(&out);

    let dropped = lab.hub.dropped_packets() + lab.worker_ns[0].dropped_packets();
    let completed = lab.worker_metric(0, "rfm_worker_tasks_completed_total");
    assert!(
        completed >= 1,
        "the worker behind the slow link ran no task; the coordinator's log:\n{}\nthe worker's log:\n{}",
        lab.coordinator.stderr(),
        lab.workers[0].stderr()
    );
    eprintln!(
        "slow lossy link: {dropped} packets dropped, {completed} tasks done behind it, {} bytes through its proxies",
        lab.proxies.iter().map(Proxy::bytes).sum::<u64>()
    );
}

#[test]
fn a_partitioned_worker_is_replaced_then_registers_again() {
    if !netns::usable("faults::a_partitioned_worker_is_replaced_then_registers_again") {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let expiry = Duration::from_secs(1);
    let lab = Lab::start(
        &["--worker-timeout", "1s"],
        &[Link::Clean, Link::Clean, Link::Clean],
        300,
    );
    let (hub_end, worker_end) = lab.links[1].clone();
    let address = addr(worker_end.ip, WORKER_PORT).to_string();
    let workers = lab.rfm_json(&["workers"]);
    let first_id = workers
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["address"] == address.as_str())
        .unwrap_or_else(|| panic!("no worker at {address}: {workers}"))["id"]
        .as_str()
        .unwrap()
        .to_string();

    let out = tmp.path().join("out");
    let mut submit = lab.submit(&out, "1MiB");
    lab.wait_tasks_done(4, Duration::from_secs(30));
    // A silent partition: every packet between the two ends is dropped.
    let partitioned = Instant::now();
    lab.hub.drop_all(&hub_end.iface);
    lab.worker_ns[1].drop_all(&worker_end.iface);
    lab.coordinator.wait_for(
        &format!("({address}) lost: no heartbeat"),
        1,
        Duration::from_secs(10),
    );
    assert!(
        submit.child.try_wait().unwrap().is_none(),
        "the job ended before the worker was lost: nothing was tested\n{}",
        submit.stderr()
    );
    // Healed well after the expiry, while the job still runs.
    std::thread::sleep((expiry * 3).saturating_sub(partitioned.elapsed()));
    lab.hub.flush();
    lab.worker_ns[1].flush();

    wait_success(&mut submit, Duration::from_secs(90));
    assert_uci_reference(&out);
    // A task was running on the partitioned worker: its answer, if any, came
    // too late and the task ran again elsewhere.
    let log = lab.coordinator.stderr();
    assert!(
        log.contains(&format!(
            "failed (worker {first_id} was lost); running it again"
        )),
        "no task of the partitioned worker was re-run:\n{log}"
    );
    lab.workers[1].wait_for("registered again as", 1, Duration::from_secs(30));
    let start = Instant::now();
    loop {
        let workers = lab.rfm_json(&["workers"]);
        let list = workers.as_array().unwrap();
        let alive = list.iter().filter(|w| w["state"] == "alive").count();
        let back = list
            .iter()
            .find(|w| w["address"] == address.as_str() && w["state"] == "alive");
        if let (3, Some(w)) = (alive, back) {
            assert_ne!(
                w["id"],
                first_id.as_str(),
                "registered again under a new id"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the healed worker is not back: {workers}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `host:port` of a `postgresql://user@host:port/db` URL.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or(rest);
    host_port.rsplit('@').next().unwrap_or(host_port)
}

fn run_id_of(dir: &Path) -> String {
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).expect("run.json"))
            .expect("run.json is JSON");
    report["run_id"].as_str().expect("run_id").to_string()
}

/// Waits until a `COPY rfm_customers` of database `name` waits on a lock.
fn wait_copy_on_lock(db: &testing::TestDatabase, within: Duration) {
    let mut admin = db.admin_client();
    let start = Instant::now();
    loop {
        let waiting: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = $1 AND wait_event_type = 'Lock'
                   AND query LIKE 'COPY rfm_customers%'",
                &[&db.name()],
            )
            .expect("look for a waiting COPY")
            .get(0);
        if waiting > 0 {
            return;
        }
        assert!(start.elapsed() < within, "no COPY waited within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_database_link_cut_mid_copy_fails_the_run_and_keeps_the_latest() {
    let _serial = serial();
    let db = testing::database();
    let tmp = tempfile::tempdir().unwrap();
    let extract = Path::new(REAL).with_file_name("online_retail_ii_2009-12_extract.csv");
    let server: SocketAddr = authority(&db.url)
        .parse()
        .expect("the test server's address");
    let proxy = Proxy::start(
        "127.0.0.1:0".parse().unwrap(),
        server,
        Duration::ZERO,
        None,
        None,
    );
    let proxied_url = db
        .url
        .replacen(&server.to_string(), &proxy.addr.to_string(), 1);
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "127.0.0.1:0", "--database-url", &proxied_url])
        .env_remove("DATABASE_URL")
        .env_remove("RFM_DATABASE_URL");
    let coordinator = Proc::spawn(cmd);
    let url = coordinator.coordinator_url();
    let _workers: Vec<Proc> = (0..2)
        .map(|_| {
            let mut cmd = Command::new(bin("rfm-worker"));
            cmd.args(["--coordinator", &url, "--listen", "127.0.0.1:0"])
                .args(["--threads", "1", "--heartbeat-interval", "200ms"]);
            Proc::spawn(cmd)
        })
        .collect();
    coordinator.wait_for("registered at", 2, Duration::from_secs(20));
    let submit = |input: &Path, out: &Path| {
        let mut cmd = Command::new(bin("rfm"));
        cmd.arg("submit")
            .arg(input)
            .args(["--coordinator", &url, "--chunk-size", "8MiB", "--out"])
            .arg(out);
        Proc::spawn(cmd)
    };

    let out_a = tmp.path().join("a");
    wait_success(&mut submit(&extract, &out_a), Duration::from_secs(60));
    let run_a = run_id_of(&out_a);
    assert_eq!(latest_run(&db.url).0, run_a);

    // The next load's COPY waits on a lock; the link is cut under it.
    let mut locker = db.client();
    let mut lock = locker.transaction().unwrap();
    lock.batch_execute("LOCK TABLE rfm_customers IN SHARE MODE")
        .unwrap();
    let out_b = tmp.path().join("b");
    let mut client = submit(Path::new(REAL), &out_b);
    wait_copy_on_lock(&db, Duration::from_secs(120));
    proxy.cut();
    std::thread::sleep(Duration::from_millis(300));
    lock.rollback().unwrap();
    let status = client.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(6), "{}", client.stderr());
    let err = client.stderr();
    assert!(
        err.contains("not published") && err.contains("loading customers (COPY) failed"),
        "{err}"
    );
    assert_uci_reference(&out_b);
    let run_b = run_id_of(&out_b);
    let mut store = rfm_store::Store::connect(&db.url).unwrap();
    let row = store
        .client()
        .query_one(
            "SELECT status, error FROM rfm_runs WHERE run_id = $1",
            &[&run_b],
        )
        .expect("the cut run is recorded");
    let (state, error): (String, Option<String>) = (row.get(0), row.get(1));
    assert_eq!(state, "failed", "{error:?}");
    assert!(
        error.as_deref().unwrap_or("").contains("publishing failed"),
        "{error:?}"
    );
    assert_eq!(
        latest_run(&db.url).0,
        run_a,
        "the previous run stays latest"
    );

    // Over the same link, now whole again, the next run is published.
    let out_c = tmp.path().join("c");
    wait_success(&mut submit(&extract, &out_c), Duration::from_secs(60));
    assert_eq!(latest_run(&db.url).0, run_id_of(&out_c));
}

/// The connection's keepalive and `TCP_USER_TIMEOUT` (rfm-store's defaults)
/// end the stalled COPY in about 25 s.
#[test]
fn a_silent_database_partition_mid_copy_ends_the_job_in_bounded_time() {
    if !netns::usable("faults::a_silent_database_partition_mid_copy_ends_the_job_in_bounded_time") {
        return;
    }
    let _serial = serial();
    let db = testing::database();
    let tmp = tempfile::tempdir().unwrap();
    let extract = Path::new(REAL).with_file_name("online_retail_ii_2009-12_extract.csv");
    // The coordinator in `hub` reaches PostgreSQL at 10.200.9.2 over a veth
    // pair; a proxy listening there in namespace `db` forwards to the server.
    let hub = Netns::create("hub").expect("a namespace for the coordinator");
    let db_ns = Netns::create("db").expect("a namespace for the database link");
    let (hub_end, db_end) = hub.link(&db_ns, 9);
    let server: SocketAddr = authority(&db.url)
        .parse()
        .expect("the test server's address");
    let _proxy = Proxy::start(
        addr(db_end.ip, 5432),
        server,
        Duration::ZERO,
        Some(&db_ns),
        None,
    );
    let url = db
        .url
        .replacen(&server.to_string(), &addr(db_end.ip, 5432).to_string(), 1);
    let mut cmd = hub.command(bin("rfm-coordinator"));
    cmd.args(["--listen", &format!("127.0.0.1:{COORDINATOR_PORT}")])
        .args(["--database-url", &url])
        .env_remove("DATABASE_URL")
        .env_remove("RFM_DATABASE_URL");
    let coordinator = Proc::spawn(cmd);
    coordinator.wait_for("listening on", 1, Duration::from_secs(20));
    let _workers: Vec<Proc> = (0..2)
        .map(|_| {
            let mut cmd = hub.command(bin("rfm-worker"));
            cmd.args(["--coordinator", COORDINATOR_URL, "--listen", "127.0.0.1:0"])
                .args(["--threads", "1", "--heartbeat-interval", "200ms"]);
            Proc::spawn(cmd)
        })
        .collect();
    coordinator.wait_for("registered at", 2, Duration::from_secs(20));
    let submit = |input: &Path, out: &Path| {
        let mut cmd = hub.command(bin("rfm"));
        cmd.arg("submit")
            .arg(input)
            .args([
                "--coordinator",
                COORDINATOR_URL,
                "--chunk-size",
                "8MiB",
                "--out",
            ])
            .arg(out);
        Proc::spawn(cmd)
    };
    let out_a = tmp.path().join("a");
    wait_success(&mut submit(&extract, &out_a), Duration::from_secs(60));
    let run_a = run_id_of(&out_a);

    // The load's COPY waits on a lock; the link then drops every packet.
    let mut locker = db.client();
    let mut lock = locker.transaction().unwrap();
    lock.batch_execute("LOCK TABLE rfm_customers IN SHARE MODE")
        .unwrap();
    let out_b = tmp.path().join("b");
    let mut client = submit(Path::new(REAL), &out_b);
    wait_copy_on_lock(&db, Duration::from_secs(120));
    let partitioned = Instant::now();
    hub.drop_all(&hub_end.iface);
    db_ns.drop_all(&db_end.iface);
    lock.rollback().unwrap();
    let status = client.wait_exit(Duration::from_secs(90));
    eprintln!(
        "silent database partition: rfm submit ended {:?} after it began",
        partitioned.elapsed()
    );
    assert_eq!(status.code(), Some(6), "{}", client.stderr());
    assert!(
        client.stderr().contains("not published"),
        "{}",
        client.stderr()
    );
    assert_uci_reference(&out_b);
    assert_eq!(
        latest_run(&db.url).0,
        run_a,
        "the previous run stays latest"
    );

    // Healed: the next run is published.
    hub.flush();
    db_ns.flush();
    let out_c = tmp.path().join("c");
    wait_success(&mut submit(&extract, &out_c), Duration::from_secs(90));
    assert_eq!(latest_run(&db.url).0, run_id_of(&out_c));
}
