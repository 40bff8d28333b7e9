//! Remote inputs with real servers on loopback: an S3-compatible server
//! (`s3s-fs`, started by the test over a temporary directory) and a small
//! range-capable HTTP server written here. The real UCI file from S3 gives
//! the reference result through `rfm run` and through a coordinator with two
//! workers, which fetch only their ranges (counted by a TCP proxy between
//! the workers and the server); over HTTP too. A missing object or bucket,
//! wrong credentials, a server without range support and a loopback URL
//! given to a coordinator's default policy fail with exit 3, naming what is
//! wrong, and nothing is written.
//!
//! Without `s3s-fs` on the PATH the S3 tests skip with a message, and fail
//! under `CI=true` (`.ci/run` installs it).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::support::proxy::Proxy;
use super::support::reference::assert_uci_reference;
use super::support::{assert_task_delay, bin, task_delay, Proc, REAL};

const ACCESS_KEY: &str = "rfm-test-key";
const SECRET_KEY: &str = "rfm-test-secret-0123456789";
const BUCKET: &str = "retail";

/// An `s3s-fs` process serving a temporary directory (a bucket a folder).
struct S3Server {
    _proc: Proc,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `s3s-fs` with the UCI file as `retail/online_retail.csv`; `None`
/// (after saying so) when it is not installed, outside CI.
fn s3_server() -> Option<S3Server> {
    let found = Command::new("s3s-fs")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        let how = "cargo install s3s-fs --version 0.14.1 --features binary --locked";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "s3s-fs is not installed (CI=true): install it with `{how}` (.ci/run does)"
        );
        eprintln!("SKIPPED: s3s-fs is not installed; install it with `{how}`");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(BUCKET)).unwrap();
    std::fs::copy(REAL, dir.path().join(BUCKET).join("online_retail.csv")).unwrap();
    let port = free_port();
    let mut cmd = Command::new("s3s-fs");
    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(dir.path());
    let proc = Proc::spawn(cmd);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "s3s-fs did not start: {}",
            proc.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(S3Server {
        _proc: proc,
        addr,
        dir,
    })
}

/// A command with the S3 settings of a server at `endpoint` (and no other
/// AWS_* or RFM_* variable of the test's environment).
fn with_s3_env(mut cmd: Command, endpoint: SocketAddr, secret: &str) -> Command {
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("RFM_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_ENDPOINT_URL", format!("http://{endpoint}"))
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1");
    cmd
}

fn rfm_run(input: &str, out: &Path, env: impl FnOnce(Command) -> Command) -> Output {
    let mut cmd = Command::new(bin("rfm"));
    cmd.args(["run", input, "--threads", "2", "--out"]).arg(out);
    env(cmd).output().unwrap()
}

/// Exit 3, a message holding every fragment, and no result files.
fn assert_refused(o: &Output, out: &Path, fragments: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for f in fragments {
        assert!(err.contains(f), "stderr lacks {f:?}: {err}");
    }
    for file in ["customers.csv", "segments.csv"] {
        assert!(
            !out.join(file).exists(),
            "{file} written for a failed input"
        );
    }
}

#[test]
fn the_uci_file_from_s3_gives_the_reference_and_bad_objects_fail_naming_them() {
    let Some(s3) = s3_server() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let env = |c| with_s3_env(c, s3.addr, SECRET_KEY);

    let out = tmp.path().join("s3");
    let o = rfm_run(&format!("s3://{BUCKET}/online_retail.csv"), &out, env);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_uci_reference(&out);

    // A glob on keys finds the same object.
    let out = tmp.path().join("glob");
    let o = rfm_run(&format!("s3://{BUCKET}/online_*.csv"), &out, env);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_uci_reference(&out);

    let out = tmp.path().join("missing-key");
    let o = rfm_run(&format!("s3://{BUCKET}/nope.csv"), &out, env);
    assert_refused(&o, &out, &["no such object", "\"nope.csv\"", "\"retail\""]);

    let out = tmp.path().join("missing-bucket");
    let o = rfm_run("s3://no-such-bucket/online_retail.csv", &out, env);
    assert_refused(&o, &out, &["no such bucket \"no-such-bucket\""]);

    let out = tmp.path().join("no-match");
    let o = rfm_run(&format!("s3://{BUCKET}/*.parquet"), &out, env);
    assert_refused(&o, &out, &["no input files match"]);

    let out = tmp.path().join("wrong-secret");
    let o = rfm_run(&format!("s3://{BUCKET}/online_retail.csv"), &out, |c| {
        with_s3_env(c, s3.addr, "not-the-secret")
    });
    assert_refused(
        &o,
        &out,
        &[
            "access denied to bucket \"retail\"",
            "AWS_SECRET_ACCESS_KEY",
        ],
    );

    let out = tmp.path().join("no-credentials");
    let o = rfm_run(&format!("s3://{BUCKET}/online_retail.csv"), &out, |c| {
        let mut c = env(c);
        c.env_remove("AWS_ACCESS_KEY_ID");
        c
    });
    assert_refused(
        &o,
        &out,
        &["s3://retail/", "no AWS credentials", "AWS_ACCESS_KEY_ID"],
    );
}

#[test]
fn credentials_endpoint_and_region_from_the_aws_shared_files_read_the_object() {
    let Some(s3) = s3_server() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let credentials = tmp.path().join("credentials");
    let config = tmp.path().join("config");
    std::fs::write(
        &credentials,
        format!(
            "[default]\naws_access_key_id = not-this-one\naws_secret_access_key = nope\n\n\
             [rfm-test]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        &config,
        format!(
            "[profile rfm-test]\nregion = us-east-1\nendpoint_url = http://{}\n",
            s3.addr
        ),
    )
    .unwrap();
    // No AWS_* variable but the profile and the files' places.
    let with_files = |profile: &str| {
        let (credentials, config, home) = (
            credentials.clone(),
            config.clone(),
            tmp.path().to_path_buf(),
        );
        let profile = profile.to_string();
        move |mut c: Command| {
            for (k, _) in std::env::vars() {
                if k.starts_with("AWS_") || k.starts_with("RFM_") {
                    c.env_remove(k);
                }
            }
            c.env("HOME", &home)
                .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
                .env("AWS_CONFIG_FILE", &config)
                .env("AWS_PROFILE", &profile);
            c
        }
    };
    let url = format!("s3://{BUCKET}/online_retail.csv");
    let out = tmp.path().join("profile");
    let o = rfm_run(&url, &out, with_files("rfm-test"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_uci_reference(&out);

    let out = tmp.path().join("no-such-profile");
    let o = rfm_run(&url, &out, with_files("nope"));
    assert_refused(
        &o,
        &out,
        &[
            "AWS profile \"nope\" (AWS_PROFILE)",
            credentials.to_str().unwrap(),
            config.to_str().unwrap(),
        ],
    );
}

#[test]
fn two_workers_read_the_uci_file_from_s3_each_fetching_only_its_ranges() {
    let Some(s3) = s3_server() else { return };
    let _serial = super::support::serial();
    let tmp = tempfile::tempdir().unwrap();
    let size = std::fs::metadata(s3.dir.path().join(BUCKET).join("online_retail.csv"))
        .unwrap()
        .len();
    // The workers reach the server through a proxy that counts the bytes.
    let proxy = Proxy::start(
        "127.0.0.1:0".parse().unwrap(),
        s3.addr,
        Duration::ZERO,
        None,
        None,
    );
    let coordinator = Proc::spawn(with_s3_env(
        {
            let mut c = Command::new(bin("rfm-coordinator"));
            c.args(["--listen", "127.0.0.1:0"]);
            c
        },
        s3.addr,
        SECRET_KEY,
    ));
    let url = coordinator.coordinator_url();
    let workers: Vec<Proc> = (0..2)
        .map(|_| {
            let mut c = Command::new(bin("rfm-worker"));
            c.args(["--coordinator", &url, "--listen", "127.0.0.1:0"])
                .args(["--threads", "1", "--heartbeat-interval", "200ms"]);
            Proc::spawn(with_s3_env(c, proxy.addr, SECRET_KEY))
        })
        .collect();
    coordinator.wait_for("registered at", 2, Duration::from_secs(20));

    let out = tmp.path().join("cluster");
    let mut submit = Command::new(bin("rfm"));
    submit
        .args(["submit", &format!("s3://{BUCKET}/online_retail.csv")])
        .args([
            "--coordinator",
            &url,
            "--chunk-size",
            "4MiB",
            "--quiet",
            "--out",
        ])
        .arg(&out);
    let o = submit.output().unwrap();
    assert!(
        o.status.success(),
        "{}\ncoordinator:\n{}\nworker:\n{}",
        String::from_utf8_lossy(&o.stderr),
        coordinator.stderr(),
        workers[0].stderr()
    );
    assert_uci_reference(&out);

    // Every byte of the object once, plus, for each chunk, the bytes past its
    // end up to the sync point that ends its last record (the first record
    // end after the next multiple of the record size limit, 1 MiB: so at
    // most 1 MiB and a 64 KiB search window) and the requests' headers: not
    // the object once per worker or per task.
    let tasks = size.div_ceil(4 << 20);
    let limit = rfm_core::scan::DEFAULT_MAX_RECORD_SIZE;
    let fetched = proxy.bytes();
    assert!(
        fetched >= size,
        "{fetched} bytes through the proxy < {size}"
    );
    assert!(
        fetched <= size + tasks * (limit + (64 << 10) + 8192),
        "{fetched} bytes through the proxy for an object of {size} in {tasks} tasks"
    );
    eprintln!("{fetched} bytes through the proxy for an object of {size} in {tasks} tasks");
    drop(workers);
}

#[test]
fn a_coordinator_does_not_fetch_loopback_urls_for_its_clients_by_default() {
    let http = HttpServer::start(true);
    let tmp = tempfile::tempdir().unwrap();
    let coordinator = Proc::spawn({
        let mut c = Command::new(bin("rfm-coordinator"));
        c.args(["--listen", "127.0.0.1:0"]);
        c
    });
    let url = coordinator.coordinator_url();
    let out = tmp.path().join("refused");
    let o = Command::new(bin("rfm"))
        .args(["submit", &http.url("online_retail.csv")])
        .args(["--coordinator", &url, "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_refused(&o, &out, &["refused", "loopback", "--upload"]);
    // A name that resolves to loopback: the message names the host, its
    // address and the setting.
    let by_name = format!("http://localhost:{}/online_retail.csv", http.addr.port());
    let out = tmp.path().join("by-name");
    let o = Command::new(bin("rfm"))
        .args(["submit", &by_name])
        .args(["--coordinator", &url, "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_refused(
        &o,
        &out,
        &["refused", "\"localhost\"", "--remote-inputs public"],
    );
    assert_eq!(http.requests(), 0, "the server was asked for nothing");
}

#[test]
fn a_redirect_is_refused_naming_it_even_when_every_url_is_allowed() {
    // The redirect's target would be fetched without the address check:
    // no policy follows one.
    let target = HttpServer::start(true);
    let moved = HttpServer::redirecting(target.url("online_retail.csv"));
    let tmp = tempfile::tempdir().unwrap();
    let coordinator = Proc::spawn({
        let mut c = Command::new(bin("rfm-coordinator"));
        c.args(["--listen", "127.0.0.1:0", "--remote-inputs", "all"]);
        c
    });
    let url = coordinator.coordinator_url();
    let out = tmp.path().join("redirected");
    let o = Command::new(bin("rfm"))
        .args(["submit", &moved.url("online_retail.csv")])
        .args(["--coordinator", &url, "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_refused(
        &o,
        &out,
        &["online_retail.csv", "redirect (HTTP 302)", "final URL"],
    );
    assert!(moved.requests() > 0, "the redirecting server was asked");
    assert_eq!(target.requests(), 0, "the redirect was not followed");

    // `rfm run` reads every URL, and follows no redirect either.
    let out = tmp.path().join("run");
    let o = rfm_run(&moved.url("online_retail.csv"), &out, |c| c);
    assert_refused(&o, &out, &["redirect (HTTP 302)"]);
    assert_eq!(target.requests(), 0, "the redirect was not followed");
}

#[test]
fn an_object_replaced_after_planning_fails_the_job_naming_it() {
    let Some(s3) = s3_server() else { return };
    let _serial = super::support::serial();
    let tmp = tempfile::tempdir().unwrap();
    let coordinator = Proc::spawn(with_s3_env(
        {
            let mut c = Command::new(bin("rfm-coordinator"));
            c.args(["--listen", "127.0.0.1:0"]);
            c
        },
        s3.addr,
        SECRET_KEY,
    ));
    let url = coordinator.coordinator_url();
    let worker = Proc::spawn(task_delay(
        with_s3_env(
            {
                let mut c = Command::new(bin("rfm-worker"));
                c.args(["--coordinator", &url, "--listen", "127.0.0.1:0"])
                    .args(["--threads", "1", "--heartbeat-interval", "200ms"]);
                c
            },
            s3.addr,
            SECRET_KEY,
        ),
        4000,
    ));
    assert_task_delay(&worker);
    coordinator.wait_for("registered at", 1, Duration::from_secs(20));

    let out = tmp.path().join("replaced");
    let mut submit = Proc::spawn({
        let mut c = Command::new(bin("rfm"));
        c.args(["submit", &format!("s3://{BUCKET}/online_retail.csv")])
            .args(["--coordinator", &url, "--chunk-size", "8MiB", "--out"])
            .arg(&out);
        c
    });
    // Planned (sizes and ETag from the server); before any task reads, the
    // object is replaced by one of the same size that differs in one digit.
    coordinator.wait_for(" tasks, ", 1, Duration::from_secs(60));
    let object = s3.dir.path().join(BUCKET).join("online_retail.csv");
    let mut bytes = std::fs::read(&object).unwrap();
    let at = bytes.len() / 2
        + bytes[bytes.len() / 2..]
            .iter()
            .position(u8::is_ascii_digit)
            .unwrap();
    bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
    std::fs::write(&object, &bytes).unwrap();

    let status = submit.wait_exit(Duration::from_secs(120));
    let err = submit.stderr();
    assert_eq!(status.code(), Some(3), "{err}");
    for fragment in [
        "s3://retail/online_retail.csv",
        "changed while the job ran",
        "nothing was written",
    ] {
        assert!(err.contains(fragment), "stderr lacks {fragment:?}: {err}");
    }
    for file in ["customers.csv", "segments.csv"] {
        assert!(!out.join(file).exists(), "{file} written");
    }
}

#[test]
fn the_uci_file_over_http_gives_the_reference_and_a_server_without_ranges_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let http = HttpServer::start(true);
    let out = tmp.path().join("http");
    let o = rfm_run(&http.url("online_retail.csv"), &out, |c| c);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_uci_reference(&out);

    let out = tmp.path().join("missing");
    let o = rfm_run(&http.url("nope.csv"), &out, |c| c);
    assert_refused(&o, &out, &["nope.csv", "no such object"]);

    let plain = HttpServer::start(false);
    let out = tmp.path().join("no-ranges");
    let o = rfm_run(&plain.url("online_retail.csv"), &out, |c| c);
    assert_refused(
        &o,
        &out,
        &["online_retail.csv", "does not answer range requests"],
    );
}

/// A minimal HTTP/1.1 server of the UCI file on loopback: HEAD and GET, with
/// `Range: bytes=A-B` answered 206 when `ranges`, else the whole file (200).
struct HttpServer {
    addr: SocketAddr,
    requests: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl HttpServer {
    fn start(ranges: bool) -> HttpServer {
        HttpServer::serving(ranges, None)
    }

    /// A server that answers every request with `302 Found` to `location`.
    fn redirecting(location: String) -> HttpServer {
        HttpServer::serving(true, Some(location))
    }

    fn serving(ranges: bool, redirect: Option<String>) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let redirect = redirect.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, ranges, redirect.as_deref());
                });
            }
        });
        HttpServer { addr, requests }
    }

    fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn serve(stream: TcpStream, ranges: bool, redirect: Option<&str>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = v.trim().strip_prefix("bytes=").map(str::to_string);
            }
        }
    }
    if let Some(location) = redirect {
        return stream.write_all(
            format!(
                "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\n\
                 connection: close\r\n\r\n"
            )
            .as_bytes(),
        );
    }
    let path: PathBuf = match target.as_str() {
        "/online_retail.csv" => PathBuf::from(REAL),
        _ => {
            return stream.write_all(
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
        }
    };
    let size = std::fs::metadata(&path)?.len();
    let (status, start, end) = match range.filter(|_| ranges) {
        Some(r) => {
            let (a, b) = r.split_once('-').unwrap_or((&r, ""));
            let a: u64 = a.parse().unwrap_or(0);
            let b: u64 = b.parse().map(|b: u64| b + 1).unwrap_or(size).min(size);
            ("206 Partial Content", a, b)
        }
        None => ("200 OK", 0, size),
    };
    let mut head = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        end - start
    );
    if status.starts_with("206") {
        head.push_str(&format!(
            "content-range: bytes {start}-{}/{size}\r\n",
            end - 1
        ));
    }
    if ranges {
        head.push_str("accept-ranges: bytes\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if method == "GET" {
        let mut file = std::fs::File::open(&path)?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(start))?;
        std::io::copy(&mut file.take(end - start), &mut stream)?;
    }
    stream.flush()
}
