//! TLS with real processes on loopback: certificates made by `rfm certs`, a
//! coordinator and three workers with mutual TLS (`--tls-client-ca`), the
//! real UCI file through them compared with the reference; and the failures
//! a user meets, each a clear message and exit 5: a plaintext client against
//! the TLS port, a CA from another `rfm certs` run, a host name the
//! certificate lacks, a worker without TLS or with a certificate of another
//! CA, a caller without a certificate on a worker's port. The HTTP port
//! answers over HTTPS.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use crate::support::reference::assert_uci_reference;
use crate::support::{bin, Proc, REAL};

/// `rfm certs --out DIR --hosts HOSTS` into a fresh directory under `root`.
fn make_certs(root: &Path, name: &str, hosts: &str) -> PathBuf {
    let dir = root.join(name);
    let out = rfm(&["certs", "--out", path(&dir), "--hosts", hosts]);
    assert!(out.status.success(), "rfm certs: {}", text(&out.stderr));
    dir
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `rfm ARGS` to its end (bounded by its own timeouts).
fn rfm(args: &[&str]) -> Output {
    Command::new(bin("rfm"))
        .args(args)
        .env_remove("RFM_TLS_CA")
        .output()
        .expect("run rfm")
}

/// The `--tls-*` flags of a server using the files of `dir`, with mutual TLS.
fn server_tls(dir: &Path) -> Vec<String> {
    let f = |n: &str| path(&dir.join(n)).to_string();
    vec![
        "--tls-cert".into(),
        f("server.pem"),
        "--tls-key".into(),
        f("server.key"),
        "--tls-client-ca".into(),
        f("ca.pem"),
        "--tls-ca".into(),
        f("ca.pem"),
    ]
}

/// A TLS coordinator; `extra`: more flags (e.g. `--database-url`).
fn coordinator(certs: &Path, extra: &[&str]) -> (Proc, String, String) {
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .args(server_tls(certs))
        .args(extra);
    let proc = Proc::spawn(cmd);
    let url = proc.coordinator_url().replace("http://", "https://");
    let log = proc.wait_for("metrics and health on https://", 1, Duration::from_secs(20));
    let http = log
        .lines()
        .find_map(|l| l.split("metrics and health on https://").nth(1))
        .expect("the HTTP port's line")
        .trim()
        .to_string();
    (proc, url, http)
}

/// A worker dialling `url` with `flags`.
fn worker(url: &str, flags: &[String]) -> Proc {
    let mut cmd = Command::new(bin("rfm-worker"));
    cmd.args(["--coordinator", url, "--listen", "127.0.0.1:0"])
        .args(["--threads", "1", "--heartbeat-interval", "200ms"])
        .args(["--register-timeout", "10s"])
        .args(flags);
    Proc::spawn(cmd)
}

/// `GET path` over HTTPS, trusting `ca`: (status code, body).
fn https_get(addr: &str, ca: &Path, path: &str) -> (u16, String) {
    let tls = rfm_proto::tls::ClientTls::load("--tls-ca", ca, None, None).expect("the CA loads");
    let config = Arc::new(tls.rustls().expect("a client configuration"));
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let session = rustls::ClientConnection::new(config, name).expect("a TLS session");
    let tcp = std::net::TcpStream::connect(addr).expect("the HTTP port accepts");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut stream = rustls::StreamOwned::new(session, tcp);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("the request is sent over TLS");
    let mut bytes = Vec::new();
    // A peer closing without close_notify is fine once the body came.
    let _ = stream.read_to_end(&mut bytes);
    let reply = text(&bytes);
    let code = reply
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

fn assert_exit_5(out: &Output, needle: &str, what: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{what}: exit code; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains(needle),
        "{what}: the message should say {needle:?}; stderr:\n{stderr}"
    );
}

/// The real UCI file through a coordinator and three workers with mutual
/// TLS, publishing to PostgreSQL over `sslmode=verify-full`, gives the
/// reference result; the HTTP port serves HTTPS.
#[test]
fn the_uci_file_through_a_mutual_tls_cluster_gives_the_reference() {
    let _serial = crate::support::serial();
    let tmp = tempfile::tempdir().unwrap();
    let certs = make_certs(tmp.path(), "certs", "coordinator,worker");
    // The run database: PostgreSQL with ssl=on, TLS-only, checked with
    // sslmode=verify-full against its own CA.
    let pg = rfm_store::testing::tls_server();
    let db = pg.database();
    let database_url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        db.url,
        pg.ca_file().display()
    );
    let coordinator_flags = ["--database-url", database_url.as_str()];
    let (coordinator, url, http) = coordinator(&certs, &coordinator_flags);
    let workers: Vec<Proc> = (0..3).map(|_| worker(&url, &server_tls(&certs))).collect();
    coordinator.wait_for("registered at", 3, Duration::from_secs(30));

    let listed = rfm(&[
        "workers",
        "--coordinator",
        &url,
        "--tls-ca",
        path(&certs.join("ca.pem")),
    ]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    assert_eq!(text(&listed.stdout).matches(" alive ").count(), 3);

    let out = tmp.path().join("out");
    let submitted = rfm(&[
        "submit",
        REAL,
        "--coordinator",
        url.trim_start_matches("https://"),
        "--tls-ca",
        path(&certs.join("ca.pem")),
        "--chunk-size",
        "4MiB",
        "--out",
        path(&out),
        "-q",
    ]);
    assert!(
        submitted.status.success(),
        "rfm submit over TLS failed: {}\ncoordinator:\n{}",
        text(&submitted.stderr),
        coordinator.stderr()
    );
    assert_uci_reference(&out);
    // Published over TLS: the database's latest run is this one, its
    // segments the reference's, and the coordinator's sessions encrypted.
    let published = rfm_store::testing::latest_segments_csv(&database_url);
    let reference = std::fs::read_to_string(crate::support::REFERENCE_SEGMENTS).unwrap();
    assert_eq!(published, reference, "the published segments");
    let encrypted: i64 = db
        .admin_client()
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.datname = $1 AND a.application_name = 'rfm' AND s.ssl",
            &[&db.name()],
        )
        .unwrap()
        .get(0);
    assert!(encrypted >= 1, "the coordinator's sessions use TLS");
    let tasks_ran_on = workers
        .iter()
        .filter(|w| w.stderr().contains("registered as"))
        .count();
    assert_eq!(tasks_ran_on, 3, "every worker joined over TLS");

    // A worker's port asks every caller for a certificate (--tls-client-ca).
    let log = workers[0].wait_for("Flight on ", 1, Duration::from_secs(5));
    let worker_port = log
        .lines()
        .find_map(|l| l.split("Flight on ").nth(1))
        .expect("the worker's address")
        .trim()
        .to_string();
    let ca = path(&certs.join("ca.pem")).to_string();
    let with_cert = rfm(&[
        "health",
        &worker_port,
        "--tls-ca",
        &ca,
        "--tls-cert",
        path(&certs.join("client.pem")),
        "--tls-key",
        path(&certs.join("client.key")),
    ]);
    assert!(with_cert.status.success(), "{}", text(&with_cert.stderr));
    assert_eq!(text(&with_cert.stdout), "SERVING\n");
    let without_cert = rfm(&["health", &worker_port, "--tls-ca", &ca]);
    assert_exit_5(
        &without_cert,
        "give --tls-cert and --tls-key signed by that CA",
        "a worker's port without a client certificate",
    );

    let (code, body) = https_get(&http, &certs.join("ca.pem"), "/healthz");
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    let (code, body) = https_get(&http, &certs.join("ca.pem"), "/readyz");
    assert_eq!(code, 200, "{body}");
    // A plaintext request on the HTTPS port gets no answer, and the port
    // still serves after it.
    let mut plain = std::net::TcpStream::connect(&http).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = write!(plain, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut reply = Vec::new();
    let _ = plain.read_to_end(&mut reply);
    assert!(!text(&reply).contains("ok"), "plaintext got {reply:?}");
    assert_eq!(https_get(&http, &certs.join("ca.pem"), "/healthz").0, 200);
}

/// Each TLS mistake fails with a message saying what to do, and exit 5.
#[test]
fn tls_mistakes_fail_clearly() {
    let _serial = crate::support::serial();
    let tmp = tempfile::tempdir().unwrap();
    let certs = make_certs(tmp.path(), "certs", "coordinator,worker");
    let other = make_certs(tmp.path(), "other", "coordinator,worker");
    let (coordinator, url, _) = coordinator(&certs, &[]);
    let address = url.trim_start_matches("https://");
    let ca_file = certs.join("ca.pem");
    let ca = path(&ca_file);

    // A plaintext client against the TLS port.
    let plain = rfm(&["workers", "--coordinator", &format!("http://{address}")]);
    assert_exit_5(
        &plain,
        "it may use TLS: connect with https:// and --tls-ca",
        "plaintext",
    );
    let failed_out = tmp.path().join("plain-out");
    let plain_jobs = rfm(&[
        "submit",
        REAL,
        "--coordinator",
        address,
        "--out",
        path(&failed_out),
        "-q",
    ]);
    assert_exit_5(&plain_jobs, "it may use TLS", "plaintext submit");

    // The CA of another `rfm certs` run.
    let other_ca_file = other.join("ca.pem");
    let other_ca = path(&other_ca_file);
    let untrusted = rfm(&["workers", "--coordinator", address, "--tls-ca", other_ca]);
    assert_exit_5(
        &untrusted,
        &format!("the coordinator's certificate is not trusted by --tls-ca {other_ca}"),
        "another CA",
    );

    // A host name the certificate was not made for (it holds coordinator,
    // worker, 127.0.0.1 and ::1).
    let port = address.rsplit_once(':').unwrap().1;
    let wrong_name = rfm(&[
        "jobs",
        "--coordinator",
        &format!("localhost:{port}"),
        "--tls-ca",
        ca,
    ]);
    assert_exit_5(
        &wrong_name,
        "the coordinator's certificate is not valid for host localhost",
        "wrong host name",
    );

    // `http://` with --tls-ca is a usage error.
    let mixed = rfm(&[
        "workers",
        "--coordinator",
        &format!("http://{address}"),
        "--tls-ca",
        ca,
    ]);
    assert_eq!(mixed.status.code(), Some(2), "{}", text(&mixed.stderr));
    assert!(text(&mixed.stderr).contains("use https://"));

    // A worker serving plaintext (it trusts the CA, so it reaches the port)
    // is refused, told which flags to add.
    let mut plaintext_worker = worker(&url, &["--tls-ca".into(), ca.into()]);
    let status = plaintext_worker.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(5));
    let said = plaintext_worker.stderr();
    assert!(
        said.contains(
            "this worker serves plaintext: start the worker with --tls-cert and --tls-key"
        ),
        "{said}"
    );

    // A worker without any TLS flag: told the coordinator may use TLS.
    let mut no_tls_worker = worker(&format!("http://{address}"), &[]);
    assert_eq!(
        no_tls_worker.wait_exit(Duration::from_secs(30)).code(),
        Some(5)
    );
    assert!(
        no_tls_worker.stderr().contains("it may use TLS"),
        "{}",
        no_tls_worker.stderr()
    );

    // A worker whose certificate another CA signed: the coordinator's
    // --tls-client-ca refuses it.
    let mut foreign = server_tls(&other);
    let ca_at = foreign.iter().rposition(|f| f == "--tls-ca").unwrap();
    foreign[ca_at + 1] = ca.to_string();
    let mut foreign_worker = worker(&url, &foreign);
    assert_eq!(
        foreign_worker.wait_exit(Duration::from_secs(30)).code(),
        Some(5)
    );
    assert!(
        foreign_worker
            .stderr()
            .contains("this worker's --tls-cert must be signed by that CA"),
        "{}",
        foreign_worker.stderr()
    );
    assert!(
        !coordinator.stderr().contains("registered at"),
        "no worker may join: {}",
        coordinator.stderr()
    );

    // A file that is not a certificate: exit 2 naming the flag and the path.
    let key_file = certs.join("server.key");
    let key = path(&key_file);
    let bad = rfm(&["workers", "--coordinator", address, "--tls-ca", key]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains(&format!("--tls-ca {key}: is not a PEM certificate")),
        "{}",
        text(&bad.stderr)
    );
}

/// A plaintext coordinator refuses the registration of a worker that
/// serves TLS (it would dial it in plaintext), saying which flags to add.
#[test]
fn a_plaintext_coordinator_refuses_a_tls_worker() {
    use rfm_proto::v1::coordinator_client::CoordinatorClient;
    use rfm_proto::v1::RegisterWorkerRequest;

    let _serial = crate::support::serial();
    let mut cmd = Command::new(bin("rfm-coordinator"));
    cmd.args(["--listen", "127.0.0.1:0"]);
    let coordinator = Proc::spawn(cmd);
    let url = coordinator.coordinator_url();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let refused = runtime.block_on(async {
        let mut client = CoordinatorClient::connect(url).await.expect("connect");
        let request = RegisterWorkerRequest {
            protocol_version: rfm_proto::PROTOCOL_VERSION,
            port: 50052,
            slots: 1,
            call_secret: "c".repeat(64),
            tls: true,
            ..Default::default()
        };
        tokio::time::timeout(Duration::from_secs(10), client.register_worker(request))
            .await
            .expect("an answer within 10 s")
            .expect_err("a TLS worker is refused")
    });
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused
            .message()
            .contains("start the coordinator with --tls-cert, --tls-key and --tls-ca"),
        "{}",
        refused.message()
    );
    assert!(!coordinator.stderr().contains("registered at"));
}

/// Servers with TLS flags that cannot work stop at start with exit 2 and a
/// message naming the flag (and the file).
#[test]
fn servers_refuse_tls_flags_that_cannot_work() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = make_certs(tmp.path(), "certs", "coordinator");
    let file = |n: &str| path(&certs.join(n)).to_string();
    let missing = path(&tmp.path().join("missing.pem")).to_string();
    let cases: Vec<(&str, Vec<String>, String)> = vec![
        (
            "rfm-coordinator",
            vec!["--tls-cert".into(), file("server.pem")],
            "--tls-cert and --tls-key go together".into(),
        ),
        (
            "rfm-coordinator",
            vec![
                "--tls-cert".into(),
                missing.clone(),
                "--tls-key".into(),
                file("server.key"),
            ],
            format!("--tls-cert {missing}: no such file"),
        ),
        (
            "rfm-coordinator",
            vec![
                "--tls-cert".into(),
                file("server.pem"),
                "--tls-key".into(),
                file("server.key"),
            ],
            "a server with TLS dials its peers over TLS too: give --tls-ca".into(),
        ),
        (
            "rfm-coordinator",
            vec![
                "--tls-cert".into(),
                file("server.pem"),
                "--tls-key".into(),
                file("client.key"),
                "--tls-ca".into(),
                file("ca.pem"),
            ],
            format!(
                "--tls-key {}: does not fit the certificate",
                file("client.key")
            ),
        ),
        (
            "rfm-worker",
            vec![
                "--coordinator".into(),
                "http://127.0.0.1:1".into(),
                "--tls-ca".into(),
                file("ca.pem"),
            ],
            "use https://".into(),
        ),
        (
            "rfm-worker",
            vec![
                "--coordinator".into(),
                "127.0.0.1:1".into(),
                "--tls-client-ca".into(),
                file("ca.pem"),
            ],
            "--tls-client-ca needs --tls-cert and --tls-key".into(),
        ),
    ];
    for (binary, flags, needle) in cases {
        let mut cmd = Command::new(bin(binary));
        cmd.args(["--listen", "127.0.0.1:0"]).args(&flags);
        let mut proc = Proc::spawn(cmd);
        let status = proc.wait_exit(Duration::from_secs(20));
        assert_eq!(
            status.code(),
            Some(2),
            "{binary} {flags:?}: {}",
            proc.stderr()
        );
        assert!(
            proc.stderr().contains(&needle),
            "{binary} {flags:?} should say {needle:?}: {}",
            proc.stderr()
        );
    }
}
