//! Shared by rfm-web's tests: runs of the real UCI file made by the core
//! engine (what `rfm run --out` writes), a small run whose ids and
//! countries try to inject markup, the same runs published to a throwaway
//! PostgreSQL, the `rfm-web` binary started as a process on a free port,
//! and a minimal HTTP/1.1 client (std only) for it and for chromedriver.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use rfm_core::RfmResult;
use rfm_store::testing::runs::{publish_folder, write_first_lines};
pub use rfm_store::testing::runs::{uci_file, write_run};
use rfm_store::testing::{self, TestDatabase};
use rfm_store::Store;

/// Reference figures of the real UCI file (DuckDB reference,
/// `../shared/tools/peers/reference_duckdb.py`, and SOURCES.md).
pub const CUSTOMERS: u64 = 4338;
pub const CHAMPIONS: u64 = 632;
pub const CHAMPIONS_REVENUE: &str = "4339953.67";
pub const CHAMPIONS_REVENUE_SHARE: &str = "0.487011";
pub const REVENUE: &str = "8911407.90";
pub const LINES_READ: u64 = 541_909;

/// Run ids of the fixture.
pub const FULL: &str = "20111210T080000Z-full";
pub const HALF: &str = "20110813T080000Z-half";
pub const XSS: &str = "20100101T000000Z-xss";

/// The customer id and the country that try to inject markup.
pub const XSS_ID: &str = "<script>alert(1)</script>";
pub const XSS_ID2: &str = "\"'><img src=x onerror=alert(2)>";
pub const XSS_COUNTRY: &str = "Côte \"d'Ivoire\" <b>";

pub struct Fixture {
    _dir: tempfile::TempDir,
    /// Two runs of the real file: `2011-08` (first 300,000 lines) and
    /// `2011-12` (the whole file, the latest).
    pub root: PathBuf,
    pub full: PathBuf,
    pub half: PathBuf,
    pub full_result: RfmResult,
    pub half_result: RfmResult,
    /// A root with one small run whose ids and countries hold markup.
    pub xss_root: PathBuf,
}

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("runs");
        let full = root.join("2011-12");
        let full_result = write_run(&uci_file(), &full, FULL, "2011-12-10T08:00:00Z");
        let half_csv = dir.path().join("first_300000.csv");
        write_first_lines(&uci_file(), 300_000, &half_csv);
        let half = root.join("2011-08");
        let half_result = write_run(&half_csv, &half, HALF, "2011-08-13T08:00:00Z");
        let xss_csv = dir.path().join("xss.csv");
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let text = format!(
            "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
             1,A,x,2,2011-01-02 10:00:00,5.00,{},{}\n\
             2,A,x,1,2011-02-02 10:00:00,7.50,{},{}\n\
             3,A,x,3,2011-03-02 10:00:00,1.25,17850,United Kingdom\n",
            quote(XSS_ID),
            quote(XSS_COUNTRY),
            quote(XSS_ID2),
            quote(XSS_COUNTRY),
        );
        std::fs::write(&xss_csv, text).expect("write xss csv");
        let xss_root = dir.path().join("xss");
        write_run(&xss_csv, &xss_root.join("x"), XSS, "2011-04-01T00:00:00Z");
        Fixture {
            _dir: dir,
            root,
            full,
            half,
            full_result,
            half_result,
            xss_root,
        }
    })
}

/// A database holding the fixture's two runs of the real file, published
/// as `rfm run --database-url` does.
pub fn published() -> TestDatabase {
    let fx = fixture();
    let db = testing::database();
    let mut store = Store::connect(&db.url).expect("connect");
    for (dir, result) in [(&fx.half, &fx.half_result), (&fx.full, &fx.full_result)] {
        publish_folder(&mut store, dir, result);
    }
    db
}

/// A running `rfm-web` process, stopped on drop.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
}

impl Server {
    /// Starts `rfm-web ARGS --listen 127.0.0.1:0` and waits for its
    /// "serving" line.
    pub fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rfm-web"))
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("DATABASE_URL")
            .env_remove("RFM_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start rfm-web");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the serving line");
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        Server { child, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn get(&self, path: &str) -> Reply {
        request(&self.addr, "GET", path, &[], None)
    }

    /// GET and the body parsed as JSON, with the status.
    pub fn json(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.get(path);
        let v = serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {}", r.text()));
        (r.status, v)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a new connection (`Connection: close`).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(120))).ok();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("send");
    if let Some(b) = body {
        s.write_all(b).expect("send body");
    }
    // Read the head, then the body by its length: some servers
    // (chromedriver) keep the connection open whatever the request says.
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let split = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut buf).expect("read answer");
        assert!(n > 0, "connection closed before the end of the headers");
        raw.extend_from_slice(&buf[..n]);
    };
    let length = String::from_utf8_lossy(&raw[..split])
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok());
    match length {
        Some(len) => {
            while raw.len() < split + 4 + len {
                let n = s.read(&mut buf).expect("read body");
                assert!(n > 0, "connection closed before the end of the body");
                raw.extend_from_slice(&buf[..n]);
            }
            raw.truncate(split + 4 + len);
        }
        None => {
            s.read_to_end(&mut raw).expect("read body");
        }
    }
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&raw[..end])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 2 + size + 2..];
    }
    out
}

/// The text between `<tag id="ID">` and the next `<`, e.g. a KPI value.
pub fn text_of(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let rest = &html[at..];
    let start = rest.find('>')? + 1;
    let end = rest[start..].find('<')? + start;
    Some(rest[start..end].to_string())
}

/// The data of the first server-sent event of `path`.
pub fn first_event(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = s.read(&mut buf).expect("read events");
        assert!(n > 0, "the event stream ended");
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw);
        if let Some(at) = text.find("data: ") {
            if let Some(end) = text[at..].find('\n') {
                return text[at + 6..at + end].to_string();
            }
        }
    }
}
