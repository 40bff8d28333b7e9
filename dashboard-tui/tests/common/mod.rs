//! Shared by the dashboard's tests: runs of the real UCI file made by the
//! core engine in process and written as `rfm run --out` folders, an app
//! loaded from them, the same runs published to a throwaway PostgreSQL, and
//! rendering to a text screen with ratatui's TestBackend.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use rfm_core::RfmResult;
use rfm_dashboard::app::App;
use rfm_dashboard::{events, loader, source, ui};
use rfm_store::testing::runs::{publish_folder, write_first_lines};
pub use rfm_store::testing::runs::{read_report, uci_file, write_run};
use rfm_store::testing::{self, TestDatabase};
use rfm_store::{RunId, Store};

/// Results of the tests' runs, made once per test binary.
pub struct Fixture {
    _dir: tempfile::TempDir,
    /// A results root with two runs: `2011-08` (the first 300,000 lines of
    /// the file, older) and `2011-12` (the whole file, newer).
    pub root: PathBuf,
    /// The whole file's run folder (inside `root`).
    pub full: PathBuf,
    pub full_result: RfmResult,
    pub half_result: RfmResult,
}

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("runs");
        let full = root.join("2011-12");
        let full_result = write_run(&uci_file(), &full, FULL, "2011-12-10T08:00:00Z");
        let half_csv = dir.path().join("online_retail_first_300000.csv");
        write_first_lines(&uci_file(), 300_000, &half_csv);
        let half_result = write_run(
            &half_csv,
            &root.join("2011-08"),
            HALF,
            "2011-08-13T08:00:00Z",
        );
        Fixture {
            _dir: dir,
            root,
            full,
            full_result,
            half_result,
        }
    })
}

/// Run id of the fixture's run of the whole file.
pub const FULL: &str = "20111210T000000Z-full";
/// Run id of the fixture's run of the first 300,000 lines.
pub const HALF: &str = "20110813T000000Z-half";

/// A database holding the fixture's runs (the older first), as `rfm run
/// --database-url` publishes them: the same run.json and result.
pub fn published(runs: &[&str]) -> (TestDatabase, Vec<RunId>) {
    let fx = fixture();
    let db = testing::database();
    let mut store = Store::connect(&db.url).expect("connect");
    let mut ids = Vec::new();
    for run in runs {
        let (dir, result) = match *run {
            HALF => (fx.root.join("2011-08"), &fx.half_result),
            _ => (fx.full.clone(), &fx.full_result),
        };
        let report = read_report(&dir).expect("run.json");
        assert_eq!(report.run_id, *run);
        let id = publish_folder(&mut store, &dir, result);
        ids.push(id);
    }
    (db, ids)
}

/// An app over `dir` with everything the start-up loads, loaded synchronously.
pub fn loaded_app(dir: &Path) -> App {
    let spec = source::SourceSpec::Results(dir.to_path_buf());
    let src = source::open(&spec).expect("open source");
    let mut app = App::new(src.describe(), true);
    let mut work = app.start();
    while let Some(command) = work.pop() {
        let loaded = loader::execute(src.as_ref(), command);
        work.extend(app.apply(loaded));
    }
    assert!(app.loading.is_empty(), "still loading: {:?}", app.loading);
    assert!(
        !matches!(app.status, Some(rfm_dashboard::app::Status::Error(_))),
        "status: {:?}",
        app.status
    );
    app
}

/// The screen's cells.
pub fn render_buffer(app: &App, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal.draw(|f| ui::draw(f, app)).expect("draw");
    terminal.backend().buffer().clone()
}

/// The screen as text, one line per row.
pub fn render(app: &App, width: u16, height: u16) -> String {
    let buffer = render_buffer(app, width, height);
    let mut out = String::new();
    for y in 0..height {
        for x in 0..width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// The first line of `screen` containing `needle`.
pub fn line_with<'a>(screen: &'a str, needle: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{screen}"))
}

pub fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// Presses keys; runs any loader work synchronously against `dir`.
pub fn press(app: &mut App, dir: &Path, keys: &[KeyCode]) {
    let src = source::open(&source::SourceSpec::Results(dir.to_path_buf())).expect("open");
    for k in keys {
        let mut work = events::handle_key(app, key(*k));
        while let Some(command) = work.pop() {
            let loaded = loader::execute(src.as_ref(), command);
            work.extend(app.apply(loaded));
        }
    }
}

/// Presses each character of `text`.
pub fn type_text(app: &mut App, dir: &Path, text: &str) {
    let keys: Vec<KeyCode> = text.chars().map(KeyCode::Char).collect();
    press(app, dir, &keys);
}
