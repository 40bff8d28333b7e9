//! A throwaway PostgreSQL for tests (feature `testing`).
//!
//! With `RFM_TEST_DATABASE_URL` (or else `DATABASE_URL`) set, tests use that
//! server and get a fresh database each (dropped afterwards). Otherwise the
//! first test of a test binary starts a private server (binaries from
//! `RFM_PG_BINDIR`, `/usr/lib/postgresql/*/bin` or `pg_config --bindir`):
//! `initdb` into a temporary directory (as the `postgres` user when running as
//! root, since initdb refuses root), `pg_ctl start` on a free loopback port. A
//! small shell watchdog stops the server and removes the directory when the
//! test process ends, however it ends (its stdin is a pipe from this process).
//! Every test gets its own database on the shared server.
//!
//! [`tls_server`] is a second private server with `ssl=on`, its certificate
//! (SANs `localhost` and `127.0.0.1`) signed by a throwaway CA ([`TestPki`]),
//! that accepts TCP connections only over TLS (`hostssl` in its pg_hba.conf);
//! the helpers here reach it over its Unix socket.
//!
//! [`runs`] makes result folders of the real UCI file and publishes them.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use postgres::{Client, Config, NoTls};

pub mod runs;

/// A database of its own for one test.
pub struct TestDatabase {
    /// Connection URL of this database.
    pub url: String,
    /// A URL of this database that needs no TLS (the Unix socket of a
    /// [`tls_server`]), for the helpers' own connections.
    direct_url: String,
    name: String,
    admin_url: String,
    drop_on_exit: bool,
}

impl TestDatabase {
    /// A new connection to this database (no migrations).
    pub fn client(&self) -> Client {
        Client::connect(&self.direct_url, NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.direct_url))
    }

    /// A connection to the server's `postgres` database (for admin work such
    /// as `pg_terminate_backend`).
    pub fn admin_client(&self) -> Client {
        Client::connect(&self.admin_url, NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.admin_url))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits up to `within` for a `COPY rfm_customers` blocked on a lock and
    /// terminates its connection, as a database lost mid-load would; false
    /// if none was seen.
    pub fn terminate_copy_waiting_on_lock(&self, within: Duration) -> bool {
        let mut admin = self.admin_client();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let terminated = admin
                .query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE datname = $1 AND wait_event_type = 'Lock'
                       AND query LIKE 'COPY rfm_customers%'",
                    &[&self.name],
                )
                .expect("look for a waiting COPY")
                .iter()
                .any(|r| r.get::<_, bool>(0));
            if terminated {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Refuses new connections to this database and terminates the open
    /// ones: the database is gone for its clients until [`Self::reopen`].
    /// Returns how many connections were terminated.
    pub fn cut_off(&self) -> i64 {
        let mut admin = self.admin_client();
        admin
            .batch_execute(&format!(
                "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS false",
                self.name
            ))
            .expect("refuse connections");
        admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
                &[&self.name],
            )
            .expect("terminate connections")
            .get(0)
    }

    /// Accepts connections again after [`Self::cut_off`].
    pub fn reopen(&self) {
        self.admin_client()
            .batch_execute(&format!(
                "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS true",
                self.name
            ))
            .expect("accept connections");
    }
}

/// Writes a small UCI-layout CSV with 20 good lines and one malformed line
/// (quantity `lots`, line 22): over the default malformed limit of 1 %.
pub fn write_csv_over_the_malformed_limit(path: &Path) {
    let mut body = String::from(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n",
    );
    for i in 0..20 {
        body.push_str(&format!(
            "5{i:05},A,x,1,2011-01-01 10:00:00,1.5,{},UK\n",
            12000 + i
        ));
    }
    body.push_str("600000,A,x,lots,2011-01-01 10:00:00,1.5,13000,UK\n");
    std::fs::write(path, body).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// The latest published run's segments as the text of a `segments.csv`.
pub fn latest_segments_csv(url: &str) -> String {
    let mut store = crate::Store::connect(url).expect("connect to the test database");
    let mut csv = String::from(
        "segment,customers,customers_share,revenue,revenue_share,avg_recency,avg_frequency,avg_monetary\n",
    );
    for s in store.latest_segments().expect("latest segments") {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            s.segment,
            s.customers,
            s.customers_share,
            s.revenue,
            s.revenue_share,
            s.avg_recency,
            s.avg_frequency,
            s.avg_monetary
        ));
    }
    csv
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.drop_on_exit {
            if let Ok(mut c) = Client::connect(&self.admin_url, NoTls) {
                let _ = c.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.name
                ));
            }
        }
    }
}

/// A PostgreSQL server the tests of this process share.
struct Server {
    /// URL of the `postgres` database; other databases by [`with_dbname`].
    admin_url: String,
    /// The loopback TCP port.
    port: u16,
    /// The private server's directory (removed when the process ends).
    dir: Option<PathBuf>,
    /// True for a server given by `DATABASE_URL` (its databases are dropped after each test).
    external: bool,
    /// Keeps the watchdog's stdin open: closing it stops the server.
    _watchdog: Option<Mutex<Watchdog>>,
}

struct Watchdog {
    stdin: Option<ChildStdin>,
    child: Child,
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// A fresh, empty database on the shared test server. Panics with the reason
/// when no server can be had (no `DATABASE_URL` and no PostgreSQL binaries).
pub fn database() -> TestDatabase {
    let server = match SERVER.get_or_init(start_server) {
        Ok(s) => s,
        Err(e) => panic!("no PostgreSQL for tests: {e}"),
    };
    let name = create_database(server);
    TestDatabase {
        url: with_dbname(&server.admin_url, &name),
        direct_url: with_dbname(&server.admin_url, &name),
        name,
        admin_url: server.admin_url.clone(),
        drop_on_exit: server.external,
    }
}

/// A new database on `server`: its name.
fn create_database(server: &Server) -> String {
    let name = format!(
        "rfm_test_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = Client::connect(&server.admin_url, NoTls).unwrap_or_else(|e| {
        panic!(
            "cannot connect to the test server {}: {e}",
            server.admin_url
        )
    });
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    name
}

/// A loopback TCP port nobody listens on (for "unreachable" tests).
pub fn unused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(1)
}

/// `url` with its database replaced by `dbname` (URL or `key=value` form).
pub fn with_dbname(url: &str, dbname: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let (base, query) = match url.find('?') {
            Some(q) => (&url[..q], &url[q..]),
            None => (url, ""),
        };
        let after = scheme_end + 3;
        let authority_end = base[after..].find('/').map_or(base.len(), |i| after + i);
        format!("{}/{dbname}{query}", &base[..authority_end])
    } else {
        format!("{url} dbname={dbname}")
    }
}

fn start_server() -> Result<Server, String> {
    let given = std::env::var("RFM_TEST_DATABASE_URL").or_else(|_| std::env::var("DATABASE_URL"));
    if let Ok(url) = given {
        if !url.trim().is_empty() {
            Config::from_str(&url)
                .map_err(|e| format!("the test database URL is not valid: {e}"))?;
            let admin_url = with_dbname(&url, "postgres");
            Client::connect(&admin_url, NoTls).map_err(|e| {
                format!("cannot connect to the test database server ({admin_url}): {e}")
            })?;
            let port = Config::from_str(&admin_url)
                .ok()
                .and_then(|c| c.get_ports().first().copied())
                .unwrap_or(5432);
            return Ok(Server {
                admin_url,
                port,
                dir: None,
                external: true,
                _watchdog: None,
            });
        }
    }
    start_private_server(None)
}

/// Where `initdb` and `pg_ctl` are: `RFM_PG_BINDIR`, PostgreSQL 15's Debian
/// directory, the newest other `/usr/lib/postgresql/*/bin`, `pg_config --bindir`.
fn bindir() -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(dir) = std::env::var("RFM_PG_BINDIR") {
        candidates.push(PathBuf::from(dir));
    }
    candidates.push(PathBuf::from("/usr/lib/postgresql/15/bin"));
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_str()?.parse().ok()?;
                Some((v, e.path().join("bin")))
            })
            .collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev().map(|(_, p)| p));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    candidates
        .into_iter()
        .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
        .ok_or_else(|| {
            "set RFM_TEST_DATABASE_URL (or DATABASE_URL) to a server where the user may create \
             databases, or install the PostgreSQL server (initdb, pg_ctl; or set RFM_PG_BINDIR)"
                .to_string()
        })
}

fn id_of(flag: &str, user: &str) -> Result<u32, String> {
    let out = Command::new("id")
        .args([flag, user])
        .output()
        .map_err(|e| format!("cannot run id: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| format!("no OS user {user:?} to run PostgreSQL as (initdb refuses root)"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command run as the `postgres` user when this process is root.
fn as_server_user(program: &Path, root: bool) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn start_private_server(tls: Option<&TestPki>) -> Result<Server, String> {
    let bin = bindir()?;
    let root = is_root();
    let port = unused_port();
    let dir = std::env::temp_dir().join(format!("rfm-pg-{}-{port}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let owner = if root {
        Some((id_of("-u", "postgres")?, id_of("-g", "postgres")?))
    } else {
        None
    };
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
            .map_err(|e| format!("cannot chown {} to postgres: {e}", dir.display()))?;
    }
    let tls_opts = match tls {
        Some(pki) => pki.install_for_server(&dir, owner)?,
        None => String::new(),
    };
    let data = dir.join("data");
    let init = as_server_user(&bin.join("initdb"), root)
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !init.status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(format!(
            "initdb failed: {}{}",
            String::from_utf8_lossy(&init.stdout),
            String::from_utf8_lossy(&init.stderr)
        ));
    }
    let log = dir.join("server.log");
    let server_opts = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c max_connections=200{tls_opts}",
        dir.display()
    );
    // Starts the server, says "ready", waits for stdin to close, then stops
    // the server and removes the directory.
    let script = r#"
        "$1/pg_ctl" -D "$2" -l "$3" -w -t 60 -o "$4" start >/dev/null 2>&1 || exit 1
        echo ready
        read _ignored
        "$1/pg_ctl" -D "$2" -m immediate -w stop >/dev/null 2>&1
        rm -rf "$5"
    "#;
    let mut child = as_server_user(Path::new("/bin/sh"), root)
        .arg("-c")
        .arg(script)
        .arg("rfm-test-postgres")
        .arg(&bin)
        .arg(&data)
        .arg(&log)
        .arg(&server_opts)
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start PostgreSQL: {e}"))?;
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().ok_or("no watchdog stdout")?);
    let _ = stdout.read_line(&mut line);
    if line.trim() != "ready" {
        let mut text = String::new();
        let _ = std::fs::File::open(&log).and_then(|mut f| f.read_to_string(&mut text));
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&dir);
        return Err(format!("pg_ctl start failed; server log:\n{text}"));
    }
    let stdin = child.stdin.take();
    let admin_url = if tls.is_some() {
        format!(
            "host={} port={port} user=postgres dbname=postgres",
            dir.display()
        )
    } else {
        format!("postgresql://postgres@127.0.0.1:{port}/postgres")
    };
    Ok(Server {
        admin_url,
        port,
        dir: Some(dir),
        external: false,
        _watchdog: Some(Mutex::new(Watchdog { stdin, child })),
    })
}

/// A throwaway certificate authority and a server certificate it signed.
pub struct TestPki {
    /// The CA's certificate (PEM).
    pub ca_pem: String,
    /// The server's certificate (PEM), for the given host names.
    pub server_pem: String,
    /// The server's private key (PEM).
    pub server_key_pem: String,
}

impl TestPki {
    /// A new CA and a server certificate for `hosts` (names or IP addresses).
    pub fn new(hosts: &[&str]) -> TestPki {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "rfm test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        let names: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let mut server = CertificateParams::new(names).expect("server parameters");
        server.distinguished_name.push(
            DnType::CommonName,
            hosts.first().copied().unwrap_or("server"),
        );
        let key = KeyPair::generate().expect("server key");
        let cert = server.signed_by(&key, &ca).expect("server certificate");
        TestPki {
            ca_pem: ca.pem(),
            server_pem: cert.pem(),
            server_key_pem: key.serialize_pem(),
        }
    }

    /// Writes the CA certificate to `path`.
    pub fn write_ca(&self, path: &Path) {
        std::fs::write(path, &self.ca_pem)
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Writes `ca.pem`, `server.pem`, `server.key` (0600, owned by `owner`)
    /// and a pg_hba.conf allowing TCP over TLS only into `dir`; returns the
    /// server options that use them.
    fn install_for_server(&self, dir: &Path, owner: Option<(u32, u32)>) -> Result<String, String> {
        use std::os::unix::fs::PermissionsExt;
        let write = |name: &str, text: &str, mode: u32| -> Result<PathBuf, String> {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| format!("chmod {}: {e}", path.display()))?;
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                    .map_err(|e| format!("chown {}: {e}", path.display()))?;
            }
            Ok(path)
        };
        write("ca.pem", &self.ca_pem, 0o644)?;
        let cert = write("server.pem", &self.server_pem, 0o644)?;
        let key = write("server.key", &self.server_key_pem, 0o600)?;
        let hba = write(
            "pg_hba.conf",
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
            0o644,
        )?;
        Ok(format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={} -c hba_file={}",
            cert.display(),
            key.display(),
            hba.display()
        ))
    }
}

/// A private PostgreSQL server with `ssl=on` that refuses TCP connections
/// without TLS, shared by the tests of this process.
pub struct TlsServer {
    server: Server,
    ca_file: PathBuf,
}

impl TlsServer {
    /// The CA that signed the server's certificate (PEM), for `sslrootcert`.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The server's loopback TCP port.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// A fresh database; its `url` is `postgresql://postgres@localhost:PORT/NAME`
    /// without TLS parameters (add `?sslmode=…&sslrootcert=…`).
    pub fn database(&self) -> TestDatabase {
        let name = create_database(&self.server);
        TestDatabase {
            url: format!(
                "postgresql://postgres@localhost:{}/{name}",
                self.server.port
            ),
            direct_url: with_dbname(&self.server.admin_url, &name),
            name,
            admin_url: self.server.admin_url.clone(),
            drop_on_exit: false,
        }
    }
}

static TLS_SERVER: OnceLock<Result<TlsServer, String>> = OnceLock::new();

/// The shared TLS-only test server (started on first use). Panics with the
/// reason when it cannot be started.
pub fn tls_server() -> &'static TlsServer {
    let started = TLS_SERVER.get_or_init(|| {
        let pki = TestPki::new(&["localhost", "127.0.0.1"]);
        let server = start_private_server(Some(&pki))?;
        let ca_file = server
            .dir
            .as_ref()
            .ok_or("the TLS server has no directory")?
            .join("ca.pem");
        Ok(TlsServer { server, ca_file })
    });
    match started {
        Ok(s) => s,
        Err(e) => panic!("no PostgreSQL with TLS for tests: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_dbname;

    #[test]
    fn replaces_the_database_in_urls() {
        assert_eq!(
            with_dbname("postgresql://u:p@h:5/db", "x"),
            "postgresql://u:p@h:5/x"
        );
        assert_eq!(with_dbname("postgres://h", "x"), "postgres://h/x");
        assert_eq!(
            with_dbname("postgresql://h/db?sslmode=disable", "x"),
            "postgresql://h/x?sslmode=disable"
        );
        assert_eq!(with_dbname("host=h user=u", "x"), "host=h user=u dbname=x");
    }
}
