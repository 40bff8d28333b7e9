//! The Live view: drawn at 80 × 24 from a fixed snapshot (a stale worker is
//! marked even without colour), and polled from a real `rfm-coordinator`
//! with a real `rfm-worker` over loopback gRPC, with and without the token.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::style::Modifier;
use ratatui::Terminal;
use rfm_dashboard::app::{App, View};
use rfm_dashboard::events;
use rfm_dashboard::live::{JobRow, LivePoller, LiveSnapshot, LiveSource, LiveUpdate, WorkerRow};
use rfm_dashboard::ui;

fn snapshot() -> LiveSnapshot {
    LiveSnapshot {
        jobs: vec![
            JobRow {
                id: "job-7".into(),
                stage: "running".into(),
                tasks_done: 12,
                tasks_total: 40,
                tasks_running: 3,
                bytes_done: 1_500_000_000,
                bytes_total: 4_000_000_000,
                lines_done: 2_500_000,
                retries: 2,
                seconds: 31.4,
                result_bytes: 0,
                error: String::new(),
            },
            JobRow {
                id: "job-6".into(),
                stage: "succeeded".into(),
                tasks_done: 8,
                tasks_total: 8,
                tasks_running: 0,
                bytes_done: 420_000_000,
                bytes_total: 420_000_000,
                lines_done: 5_400_000,
                retries: 0,
                seconds: 2.2,
                result_bytes: 4_700_000,
                error: String::new(),
            },
        ],
        workers: vec![
            WorkerRow {
                id: "w1".into(),
                address: "10.0.0.5:50052".into(),
                state: "alive".into(),
                running_tasks: 2,
                slots: 4,
                seconds_since_heartbeat: 0.4,
            },
            WorkerRow {
                id: "w2".into(),
                address: "10.0.0.6:50052".into(),
                state: "alive".into(),
                running_tasks: 1,
                slots: 4,
                seconds_since_heartbeat: 7.9,
            },
        ],
    }
}

/// The screen as lines of text, and the buffer for styles.
fn render(app: &App) -> (Vec<String>, ratatui::buffer::Buffer) {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|f| ui::draw(f, app)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    let lines = (0..24)
        .map(|y| {
            (0..80)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect();
    (lines, buffer)
}

#[test]
fn live_view_shows_jobs_and_marks_stale_workers() {
    let mut app = App::new("coordinator http://c:50051".into(), false);
    app.watch_coordinator("http://c:50051".into(), true);
    assert_eq!(app.view, View::Live);
    assert_eq!(app.views(), vec![View::Live]);
    assert!(
        app.start().is_empty(),
        "no runs to list with the coordinator alone"
    );
    let (lines, _) = render(&app);
    let screen = lines.join("\n");
    assert!(
        screen.contains("Connecting to the coordinator at http://c:50051"),
        "{screen}"
    );

    app.apply_live(LiveUpdate::Snapshot(snapshot()));
    let (lines, buffer) = render(&app);
    let screen = lines.join("\n");
    assert!(lines[0].contains("1 Live"), "{screen}");
    let job = lines.iter().find(|l| l.contains("job-7")).expect(&screen);
    for figure in ["running", "12/40", "1.5G/4.0G", "2.5M", "31"] {
        assert!(job.contains(figure), "{figure} missing in {job:?}");
    }
    // The memory a result holds: none while running, its size once finished.
    let last = |row: &str| {
        let figures = row.trim_end().trim_end_matches('│').split_whitespace();
        figures.last().unwrap_or_default().to_string()
    };
    assert_eq!(last(job), "-", "{job:?}");
    let header = lines.iter().find(|l| l.contains("retries")).expect(&screen);
    assert!(header.contains("secs result"), "{header:?}");
    let done = lines.iter().find(|l| l.contains("job-6")).expect(&screen);
    for figure in ["succeeded", "8/8", "420.0M/420.0M", "5.4M"] {
        assert!(done.contains(figure), "{figure} missing in {done:?}");
    }
    assert_eq!(last(done), "4.7M", "{done:?}");
    assert!(screen.contains("Workers (2, 1 stale"), "{screen}");
    let (y1, w1) = lines
        .iter()
        .enumerate()
        .find(|(_, l)| l.contains("w1"))
        .expect(&screen);
    let (y2, w2) = lines
        .iter()
        .enumerate()
        .find(|(_, l)| l.contains("w2"))
        .expect(&screen);
    assert!(
        w1.contains("10.0.0.5:50052") && w1.contains("0.4 s ago"),
        "{w1:?}"
    );
    assert!(!w1.contains('!'), "a fresh worker is not marked: {w1:?}");
    assert!(w2.contains("! w2") && w2.contains("7.9 s ago"), "{w2:?}");
    // Without colour the stale row still stands out: bold, unlike the others.
    let bold = |y: usize| buffer[(10u16, y as u16)].modifier.contains(Modifier::BOLD);
    assert!(bold(y2) && !bold(y1), "{screen}");
    assert!(lines[23].contains("coordinator http://c:50051"), "{screen}");

    // A lost coordinator: the status line says so, the last snapshot stays.
    app.apply_live(LiveUpdate::Lost(
        "cannot reach the coordinator at http://c:50051".into(),
    ));
    let (lines, _) = render(&app);
    let screen = lines.join("\n");
    assert!(lines[23].contains("coordinator lost: retry 1"), "{screen}");
    assert!(
        screen.contains("job-7") && screen.contains("coordinator lost)"),
        "{screen}"
    );
    app.apply_live(LiveUpdate::Snapshot(snapshot()));
    assert!(!render(&app).0[23].contains("lost"));
}

#[test]
fn live_is_an_extra_tab_beside_a_runs_source() {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut app = App::new("results runs".into(), false);
    app.watch_coordinator("http://c:50051".into(), false);
    assert_eq!(app.view, View::Overview);
    assert_eq!(app.views().last(), Some(&View::Live));
    let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
    events::handle_key(&mut app, key(KeyCode::Char('6')));
    assert_eq!(app.view, View::Live);
    events::handle_key(&mut app, key(KeyCode::Tab));
    assert_eq!(app.view, View::Overview);
    events::handle_key(&mut app, key(KeyCode::BackTab));
    assert_eq!(app.view, View::Live);
    app.apply_live(LiveUpdate::Snapshot(snapshot()));
    let (lines, _) = render(&app);
    assert!(lines[0].contains("6 Live"), "{}", lines[0]);
    assert!(lines.iter().any(|l| l.contains("w2")));
}

/// A binary of the workspace next to this package's binary, or `None`.
fn sibling(name: &str) -> Option<PathBuf> {
    let dashboard = PathBuf::from(env!("CARGO_BIN_EXE_rfm-dashboard"));
    let path = dashboard.parent()?.join(name);
    path.is_file().then_some(path)
}

/// A child killed on drop, with its stderr lines sent to a channel.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn a binary");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc { child, lines: rx }
    }

    /// The first stderr line containing `needle`.
    fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut seen = String::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push_str(&format!("{line}\n")),
                Err(_) => break,
            }
        }
        panic!("no {needle:?} within {timeout:?}; stderr:\n{seen}");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn polls_a_real_coordinator_and_its_worker() {
    let (Some(coordinator_bin), Some(worker_bin)) =
        (sibling("rfm-coordinator"), sibling("rfm-worker"))
    else {
        eprintln!(
            "skipped: rfm-coordinator or rfm-worker is not built next to rfm-dashboard; run `cargo build -p rfm-coordinator -p rfm-worker` first"
        );
        return;
    };
    let token = "live-view-token";
    let mut cmd = Command::new(coordinator_bin);
    cmd.args(["--listen", "127.0.0.1:0"])
        .env("RFM_TOKEN", token)
        .env("RFM_WORKER_TOKEN", "live-view-worker-token");
    let mut coordinator = Proc::spawn(cmd);
    let line = coordinator.wait_for("listening on ", Duration::from_secs(20));
    let addr = line
        .split("listening on ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let url = format!("http://{addr}");
    let mut cmd = Command::new(worker_bin);
    cmd.args([
        "--coordinator",
        &url,
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "1",
    ])
    .args(["--heartbeat-interval", "200ms"])
    .env("RFM_WORKER_TOKEN", "live-view-worker-token");
    let _worker = Proc::spawn(cmd);

    // Without the token the coordinator refuses, and the error says what to do.
    let refused = LiveSource::new(&addr, None, None)
        .unwrap()
        .poll_blocking()
        .unwrap_err();
    assert!(
        refused.contains("--token") && refused.contains(&url),
        "{refused}"
    );

    let mut source = LiveSource::new(&addr, Some(token.into()), None).unwrap();
    assert_eq!(source.url(), url);
    let deadline = Instant::now() + Duration::from_secs(20);
    let snapshot = loop {
        let snapshot = source.poll_blocking().expect("poll the coordinator");
        if !snapshot.workers.is_empty() || Instant::now() > deadline {
            break snapshot;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(snapshot.jobs.is_empty(), "{snapshot:?}");
    assert_eq!(
        snapshot.workers.len(),
        1,
        "the worker registered: {snapshot:?}"
    );
    let w = &snapshot.workers[0];
    assert_eq!(w.state, "alive", "{w:?}");
    assert!(!w.stale() && w.seconds_since_heartbeat < 2.0, "{w:?}");
    assert!(w.slots >= 1 && w.address.starts_with("127.0.0.1:"), "{w:?}");

    // The poller thread brings the same, then reports the coordinator lost.
    let poller = LivePoller::spawn(source, Duration::from_millis(100));
    match poller.wait(Duration::from_secs(10)) {
        Some(LiveUpdate::Snapshot(s)) => assert_eq!(s.workers.len(), 1, "{s:?}"),
        other => panic!("expected a snapshot, got {other:?}"),
    }
    coordinator.child.kill().unwrap();
    coordinator.child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let lost = loop {
        match poller.wait(Duration::from_secs(5)) {
            Some(LiveUpdate::Lost(e)) => break e,
            Some(LiveUpdate::Snapshot(_)) if Instant::now() < deadline => continue,
            other => panic!("expected the coordinator lost, got {other:?}"),
        }
    };
    assert!(lost.contains(&url), "{lost}");
}

#[test]
fn polls_a_coordinator_over_tls() {
    let (Some(rfm_bin), Some(coordinator_bin)) = (sibling("rfm"), sibling("rfm-coordinator"))
    else {
        eprintln!(
            "skipped: rfm or rfm-coordinator is not built next to rfm-dashboard; run `cargo build -p rfm-cli -p rfm-coordinator` first"
        );
        return;
    };
    let certs = tempfile::tempdir().unwrap();
    let made = Command::new(rfm_bin)
        .args(["certs", "--hosts", "localhost", "--out"])
        .arg(certs.path())
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let pem = |name: &str| certs.path().join(name);
    let mut cmd = Command::new(coordinator_bin);
    cmd.args(["--listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(pem("server.pem"))
        .arg("--tls-key")
        .arg(pem("server.key"))
        .arg("--tls-ca")
        .arg(pem("ca.pem"));
    let coordinator = Proc::spawn(cmd);
    let line = coordinator.wait_for("listening on ", Duration::from_secs(20));
    let addr = line
        .split("listening on ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let tls = || rfm_proto::tls::ClientTls::load("--tls-ca", &pem("ca.pem"), None, None).unwrap();

    // With --tls-ca the address becomes https:// and the poll succeeds.
    let mut source = LiveSource::new(&addr, None, Some(tls())).unwrap();
    assert_eq!(source.url(), format!("https://{addr}"));
    let snapshot = source.poll_blocking().expect("poll over TLS");
    assert!(
        snapshot.jobs.is_empty() && snapshot.workers.is_empty(),
        "{snapshot:?}"
    );

    // Plaintext against the TLS port fails, and says why.
    let plain = LiveSource::new(&addr, None, None)
        .unwrap()
        .poll_blocking()
        .unwrap_err();
    assert!(plain.contains(&format!("http://{addr}")), "{plain}");
    // A scheme that contradicts --tls-ca is refused before any connection.
    let mixed = LiveSource::new(&format!("http://{addr}"), None, Some(tls()))
        .err()
        .expect("http:// with --tls-ca is a usage error");
    assert!(mixed.contains("https://"), "{mixed}");
}
