//! rfm-web in headless Chromium (Debian's `chromium`, driven through
//! `chromedriver`'s WebDriver HTTP API with the tests' own HTTP client):
//! the figures in the DOM against the reference, a click on a heatmap cell
//! to its customers and on to one customer, a search, a CSV download, every
//! page's screenshot under `target/web-screenshots/` checked non-blank,
//! markup in ids shown as text with no dialog, the 404 page, and the
//! banner of a database that goes away, gone once it is back.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{self, fixture, published, request, Server, FULL};

/// The key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one browser session, ended on drop.
pub(crate) struct Browser {
    driver: Child,
    addr: String,
    session: String,
    _profile: tempfile::TempDir,
    pub downloads: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Browser {
    pub(crate) fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is missing: install Debian's chromium and chromium-driver (.ci/run does)");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let downloads = profile.path().join("downloads");
        std::fs::create_dir_all(&downloads).expect("downloads dir");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().join("p").display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.display().to_string(),
                    "download.prompt_for_download": false,
                },
            },
        }}});
        let mut b = Browser {
            driver,
            addr,
            session: String::new(),
            _profile: profile,
            downloads,
        };
        let v = b.call("POST", "/session", Some(caps));
        b.session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        b
    }

    /// A WebDriver call; the whole answer (errors included).
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string());
        let r = request(
            &self.addr,
            method,
            path,
            &[("Content-Type", "application/json")],
            body.as_deref().map(str::as_bytes),
        );
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.text()))
    }

    fn s(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let v = self.call(method, &self.s(path), body);
        assert!(v["value"].get("error").is_none(), "{path}: {v}");
        v["value"].clone()
    }

    pub(crate) fn go(&self, url: &str) {
        self.ok("POST", "/url", Some(json!({ "url": url })));
    }

    fn url(&self) -> String {
        self.ok("GET", "/url", None).as_str().unwrap().to_string()
    }

    /// The element `css` selects, waiting up to 10 s for it.
    pub(crate) fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.call(
                "POST",
                &self.s("/element"),
                Some(json!({"using": "css selector", "value": css})),
            );
            if let Some(id) = v["value"][ELEMENT].as_str() {
                return id.to_string();
            }
            assert!(Instant::now() < deadline, "no element {css}: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn texts(&self, css: &str) -> Vec<String> {
        let v = self.ok(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                self.ok(
                    "GET",
                    &format!("/element/{}/text", e[ELEMENT].as_str().unwrap()),
                    None,
                )
            })
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    }

    /// The attribute `name` of the element `css` selects (`None` if unset).
    pub(crate) fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let e = self.find(css);
        let v = self.ok("GET", &format!("/element/{e}/attribute/{name}"), None);
        v.as_str().map(str::to_string)
    }

    fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.ok("GET", &format!("/element/{e}/text"), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.ok("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.ok("POST", &format!("/element/{e}/clear"), Some(json!({})));
        self.ok(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Waits until the URL holds `part`.
    fn wait_url(&self, part: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let u = self.url();
            if u.contains(part) {
                return u;
            }
            assert!(Instant::now() < deadline, "URL {u} never held {part}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The text of an open dialog (alert), if any.
    fn dialog(&self) -> Option<String> {
        let v = self.call("GET", &self.s("/alert/text"), None);
        v["value"].as_str().map(str::to_string)
    }

    /// A PNG of the viewport.
    fn screenshot(&self) -> Vec<u8> {
        let v = self.ok("GET", "/screenshot", None);
        base64(v.as_str().unwrap())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/web-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// Saves a screenshot of the current page as `name.png` and checks it is
/// not blank: a rendered page compresses far worse than an empty one.
fn shot(b: &Browser, name: &str, blank_size: usize) {
    let png = b.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), &png).expect("write screenshot");
    assert!(
        png.len() > blank_size * 4,
        "{name}: screenshot of {} bytes, a blank page is {blank_size}: nothing rendered?",
        png.len()
    );
}

#[test]
fn figures_clicks_search_download_and_screenshots() {
    let s = Server::start(&["--results", fixture().root.to_str().unwrap()]);
    let b = Browser::start();
    b.go("about:blank");
    let blank = b.screenshot().len();

    // Overview: the reference figures in the DOM.
    b.go(&s.url("/"));
    assert_eq!(b.text("#kpi-customers"), "4,338");
    assert_eq!(b.text("#run-id"), FULL);
    let champions = b.texts("tr[data-segment=\"Champions\"] td");
    assert_eq!(champions[0], "632", "{champions:?}");
    assert_eq!(champions[2], "4,339,953.67", "{champions:?}");
    assert_eq!(
        b.text("tr[data-segment=\"Champions\"] td.revenue-share"),
        "48.7%"
    );
    assert!(b.dialog().is_none());
    shot(&b, "overview", blank);

    // Every page renders (and has a screenshot).
    for (path, name) in [
        ("/heatmap", "heatmap"),
        ("/distributions?scale=log", "distributions"),
        ("/customers", "customers"),
        ("/customers/14646", "customer"),
        ("/runs", "runs"),
        ("/movement", "movement"),
    ] {
        b.go(&s.url(path));
        b.find("main h1");
        shot(&b, name, blank);
    }

    // Heatmap cell R5 F5 → its customers → the first one.
    let (_, r5f5) = s.json("/api/customers?r=5&f=5&size=1");
    b.go(&s.url("/heatmap"));
    b.click("a.cell[data-r=\"5\"][data-f=\"5\"]");
    b.wait_url("/customers?r=5&f=5");
    assert_eq!(
        b.text("#total"),
        rfm_web::html::count(r5f5["total"].as_u64().unwrap())
    );
    let first = b.texts("a.cust")[0].clone();
    assert_eq!(first, r5f5["customers"][0]["customer_id"].as_str().unwrap());
    b.click("a.cust");
    b.wait_url(&format!("/customers/{first}"));
    assert_eq!(b.text("#customer-id"), first);
    assert_eq!(b.text("#segment"), "Champions");

    // A search by id.
    b.go(&s.url("/customers"));
    b.type_into("#q", "1464\u{E007}");
    b.wait_url("q=1464");
    let ids = b.texts("a.cust");
    assert!(
        !ids.is_empty() && ids.iter().all(|i| i.contains("1464")),
        "{ids:?}"
    );

    // A column header sorts on the server.
    b.go(&s.url("/customers?segment=Champions"));
    b.click("th:nth-child(4) a");
    b.wait_url("sort=monetary");
    b.click("th:nth-child(4) a");
    b.wait_url("sort=-monetary");
    assert_eq!(b.texts("a.cust")[0], "14646");

    // The download of the selection.
    b.go(&s.url("/customers?segment=Champions"));
    b.click("#download");
    let deadline = Instant::now() + Duration::from_secs(20);
    let file = loop {
        let done: Vec<PathBuf> = std::fs::read_dir(&b.downloads)
            .expect("downloads")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "csv"))
            .collect();
        if let Some(f) = done.first() {
            break f.clone();
        }
        assert!(Instant::now() < deadline, "no download");
        std::thread::sleep(Duration::from_millis(100));
    };
    let csv = std::fs::read_to_string(&file).expect("read download");
    assert_eq!(csv.lines().count() as u64, 1 + common::CHAMPIONS);

    // Unknown run and customer: the 404 page.
    b.go(&s.url("/?run=nope"));
    assert!(b.text("#not-found").contains("nope"));
    b.go(&s.url("/customers/99999999"));
    assert!(b.text("#not-found").contains("99999999"));
    shot(&b, "not-found", blank);
}

#[test]
fn markup_in_the_data_is_text_and_opens_no_dialog() {
    let s = Server::start(&["--results", fixture().xss_root.to_str().unwrap()]);
    let b = Browser::start();
    b.go(&s.url("/customers"));
    let ids = b.texts("a.cust");
    assert!(ids.contains(&common::XSS_ID.to_string()), "{ids:?}");
    assert!(ids.contains(&common::XSS_ID2.to_string()), "{ids:?}");
    assert!(b.dialog().is_none(), "a dialog opened");
    let countries = b.texts("#customers tbody td:nth-child(7)");
    assert!(
        countries.contains(&common::XSS_COUNTRY.to_string()),
        "{countries:?}"
    );
    for id in [common::XSS_ID, common::XSS_ID2] {
        b.go(&s.url(&format!("/customers/{}", rfm_web::params::component(id))));
        assert_eq!(b.text("#customer-id"), id);
        assert_eq!(b.text("#country"), common::XSS_COUNTRY);
        assert!(b.dialog().is_none(), "a dialog opened on {id}");
    }
    for path in ["/", "/heatmap", "/runs", "/distributions"] {
        b.go(&s.url(path));
        b.find("main h1");
        assert!(b.dialog().is_none(), "a dialog opened on {path}");
    }
}

#[test]
fn a_database_that_goes_away_shows_a_banner_until_it_is_back() {
    let db = published();
    let s = Server::start(&["--database-url", &db.url]);
    let b = Browser::start();
    b.go(&s.url("/"));
    assert_eq!(b.text("#kpi-customers"), "4,338");
    db.cut_off();
    b.go(&s.url("/"));
    assert!(b.text("#banner").contains("cannot be read"));
    db.reopen();
    // The page reloads by itself (every 5 s) and shows the run again.
    assert_eq!(
        b.text_within("#kpi-customers", Duration::from_secs(30)),
        "4,338"
    );
}

impl Browser {
    fn text_within(&self, css: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let v = self.call(
                "POST",
                &self.s("/element"),
                Some(json!({"using": "css selector", "value": css})),
            );
            if let Some(id) = v["value"][ELEMENT].as_str() {
                let t = self.call("GET", &self.s(&format!("/element/{id}/text")), None);
                if let Some(t) = t["value"].as_str() {
                    return t.to_string();
                }
            }
            assert!(Instant::now() < deadline, "no {css} within {within:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}
