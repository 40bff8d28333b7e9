//! The dashboard reading runs from a real PostgreSQL server (a throwaway one
//! unless RFM_TEST_DATABASE_URL or DATABASE_URL names one): the two runs of
//! the real UCI file the other tests write as result folders are published
//! with rfm-store, and every view must show from the database what it shows
//! from the files. A lost connection is reported in the status line and
//! retried until the database is back.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::{fixture, line_with, published, render, FULL, HALF};
use ratatui::crossterm::event::KeyCode;
use rfm_dashboard::app::{App, Command, Loaded, Role, Status};
use rfm_dashboard::loader::{self, Loader, RetryPolicy};
use rfm_dashboard::source::{self, Source, SourceSpec};
use rfm_dashboard::{analysis, events};
use rfm_store::testing;
use rfm_store::Store;

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

/// Runs loader work synchronously until nothing is left.
fn settle(app: &mut App, src: &dyn Source, mut work: Vec<Command>) {
    while let Some(command) = work.pop() {
        let loaded = loader::execute(src, command);
        work.extend(app.apply(loaded));
    }
}

fn loaded(src: &dyn Source) -> App {
    let mut app = App::new(src.describe(), true);
    let work = app.start();
    settle(&mut app, src, work);
    assert!(app.loading.is_empty(), "still loading: {:?}", app.loading);
    assert!(
        !matches!(app.status, Some(Status::Error(_))),
        "status: {:?}",
        app.status
    );
    app
}

fn press(app: &mut App, src: &dyn Source, keys: &[KeyCode]) {
    for k in keys {
        let work = events::handle_key(app, common::key(*k));
        settle(app, src, work);
    }
}

/// The screen without its first and last rows (tab bar and status line
/// name the source and the run's label, which differ between sources).
fn body(screen: &str) -> String {
    let lines: Vec<&str> = screen.lines().collect();
    lines[1..lines.len() - 1].join("\n")
}

#[test]
fn every_view_from_the_database_matches_the_result_files() {
    let fx = fixture();
    let (db, _) = published(&[HALF, FULL]);
    let started = Instant::now();
    let src = source::open(&SourceSpec::Database(db.url.clone())).expect("open database");
    assert!(
        src.describe().starts_with("database host 127.0.0.1 port ")
            || !db.url.contains("127.0.0.1")
    );
    let mut app = loaded(src.as_ref());
    eprintln!(
        "listed and loaded two runs from PostgreSQL in {:?}",
        started.elapsed()
    );
    let files = source::open(&SourceSpec::Results(fx.root.clone())).expect("open results");
    let mut from_files = loaded(files.as_ref());

    // The newest run is open and the older one is the baseline, as for files.
    assert_eq!(app.current.as_ref().unwrap().run_id(), FULL);
    assert_eq!(app.baseline.as_ref().unwrap().run_id(), HALF);
    assert_eq!(app.current.as_ref().unwrap().customers.len(), 4_338);

    // Overview: the spec's Champions figures, and the same screen as files.
    for (w, h) in SIZES {
        let screen = render(&app, w, h);
        let champions = line_with(&screen, "Champions ");
        assert!(champions.contains(" 632 "), "{w}x{h}: {champions}");
        assert!(champions.contains("48.7%"), "{w}x{h}: {champions}");
        assert!(champions.contains("4,339,953.67"), "{w}x{h}: {champions}");
        for needle in ["as-of 2011-12-10", "541,909", "397,884", "135,080", "8,905"] {
            assert!(
                screen.contains(needle),
                "{w}x{h}: no {needle:?} in\n{screen}"
            );
        }
        assert_eq!(
            body(&screen),
            body(&render(&from_files, w, h)),
            "overview {w}x{h}"
        );
    }
    // Grid, distributions and customers: the same screens as from files.
    for view in ['2', '3', '4'] {
        press(&mut app, src.as_ref(), &[KeyCode::Char(view)]);
        press(&mut from_files, files.as_ref(), &[KeyCode::Char(view)]);
        for (w, h) in SIZES {
            assert_eq!(
                body(&render(&app, w, h)),
                body(&render(&from_files, w, h)),
                "view {view} at {w}x{h}"
            );
        }
    }

    // Runs view: both runs listed, newest first, with the status `rfm runs`
    // shows for them (published, not the report's succeeded).
    press(&mut app, src.as_ref(), &[KeyCode::Char('5')]);
    let screen = render(&app, 160, 48);
    assert!(screen.contains("Runs (2)"), "{screen}");
    assert!(!screen.contains("succeeded"), "{screen}");
    let row_of = |id: &str| {
        screen
            .lines()
            .position(|l| l.contains(id) && l.contains("published"))
            .unwrap_or_else(|| panic!("{id} not listed in\n{screen}"))
    };
    assert!(row_of(FULL) < row_of(HALF), "{screen}");
    let lines: Vec<&str> = screen.lines().collect();
    assert!(lines[row_of(FULL)].contains("4,338"), "{screen}");
    assert!(lines[row_of(HALF)].contains("3,220"), "{screen}");

    // Movement between the two runs equals the result files' movement...
    let movement = app.movement.clone().expect("movement");
    assert_eq!(Some(&movement), from_files.movement.as_ref());
    // ...and the read side's movement of the same two runs in the database.
    let runs = rfm_runs::DatabaseSource::connect(&db.url).unwrap();
    let load = |id: &str| rfm_runs::RunSource::results(&runs, Some(id)).unwrap();
    let moves = rfm_runs::movement(&load(HALF).customers, &load(FULL).customers).unwrap();
    let slot = |s: Option<rfm_core::Segment>| s.map_or(analysis::ABSENT, analysis::segment_index);
    let mut cells = 0;
    for m in &moves {
        assert_eq!(
            movement.customers[slot(m.from)][slot(m.to)],
            m.customers,
            "{:?} → {:?}",
            m.from,
            m.to
        );
        cells += movement.customers[slot(m.from)][slot(m.to)];
    }
    let all: u64 = movement.customers.iter().flatten().sum();
    assert_eq!(cells, all, "every customer is in one flow of the diff");
    press(&mut from_files, files.as_ref(), &[KeyCode::Char('5')]);
    let movement_panel = |screen: &str| {
        screen
            .lines()
            .skip_while(|l| !l.contains("Movement "))
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
    };
    let db_screen = render(&app, 160, 48);
    let file_screen = render(&from_files, 160, 48);
    let (db_panel, file_panel) = (movement_panel(&db_screen), movement_panel(&file_screen));
    assert!(db_panel.len() > 10, "{db_screen}");
    // Same matrix and flows; only the runs' labels (title, status line) differ.
    let inner = |p: &[String]| p[1..p.len() - 1].to_vec();
    assert_eq!(
        inner(&db_panel),
        inner(&file_panel),
        "{db_screen}\n{file_screen}"
    );

    // A customer's detail.
    press(&mut app, src.as_ref(), &[KeyCode::Char('/')]);
    for c in "12347".chars() {
        press(&mut app, src.as_ref(), &[KeyCode::Char(c)]);
    }
    press(&mut app, src.as_ref(), &[KeyCode::Enter, KeyCode::Enter]);
    assert!(app.customers.detail);
    let run = app.current.as_ref().unwrap();
    let c = run
        .customers
        .iter()
        .find(|c| c.customer_id == "12347")
        .expect("12347");
    assert_eq!(
        (
            c.recency,
            c.frequency,
            c.monetary_text().as_str(),
            c.rfm_score()
        ),
        (3, 7, "4310.00", "555".to_string())
    );
    for (w, h) in SIZES {
        let screen = render(&app, w, h);
        assert!(screen.contains("Customer 12347 · Champions"), "{screen}");
        assert!(screen.contains("R 5 · F 5 · M 5"), "{screen}");
        assert!(screen.contains("R = 5 and F ≥ 4"), "{screen}");
        assert!(
            screen.contains("4,310.00") && screen.contains("Iceland"),
            "{screen}"
        );
    }
}

#[test]
fn an_empty_database_says_so_and_r_shows_runs_published_since() {
    let fx = fixture();
    let db = testing::database();
    let src = source::open(&SourceSpec::Database(db.url.clone())).expect("connect");
    let mut app = App::new(src.describe(), false);
    let work = app.start();
    settle(&mut app, src.as_ref(), work);
    let screen = render(&app, 120, 24);
    assert!(screen.contains("published run yet"), "{screen}");
    assert!(
        screen.contains("Nothing to show: the database at host "),
        "{screen}"
    );

    // A run is published meanwhile (a running one is not listed).
    let mut store = Store::connect(&db.url).unwrap();
    let report = common::read_report(&fx.full).unwrap();
    let run = store
        .begin_run(&report, &rfm_store::Lease::with_defaults("test"))
        .unwrap();
    let mut running = report.clone();
    running.run_id = "still-running".into();
    store
        .begin_run(&running, &rfm_store::Lease::with_defaults("test"))
        .unwrap();
    press(
        &mut app,
        src.as_ref(),
        &[KeyCode::Char('5'), KeyCode::Char('R')],
    );
    assert!(app.runs.is_empty());
    store.publish(run, &report, &fx.full_result).unwrap();
    press(&mut app, src.as_ref(), &[KeyCode::Char('R')]);
    assert_eq!(app.runs.len(), 1);
    assert_eq!(app.current.as_ref().unwrap().customers.len(), 4_338);
    let screen = render(&app, 160, 48);
    assert!(screen.contains("Runs (1)"), "{screen}");
    assert!(!screen.contains("still-running"), "{screen}");
}

/// Waits for the loader's next message.
fn next(loader: &Loader) -> Loaded {
    loader
        .wait(Duration::from_secs(30))
        .expect("the loader answered within 30 s")
}

#[test]
fn a_lost_connection_is_shown_in_the_status_line_and_retried() {
    let (db, _) = published(&[FULL]);
    let src = source::open(&SourceSpec::Database(db.url.clone())).expect("connect");
    let describe = src.describe();
    let loader = Loader::spawn_with(
        src,
        RetryPolicy {
            first: Duration::from_millis(100),
            max: Duration::from_millis(400),
        },
    );
    let mut app = App::new(describe, true);
    let mut pending = 0;
    for c in app.start() {
        loader.send(c);
        pending += 1;
    }
    while pending > 0 {
        pending -= 1;
        for c in app.apply(next(&loader)) {
            loader.send(c);
            pending += 1;
        }
    }
    assert_eq!(app.current.as_ref().unwrap().customers.len(), 4_338);

    // The database goes away: no new connections, the dashboard's one killed.
    let killed = db.cut_off();
    assert!(killed >= 1, "the dashboard's connection was terminated");

    // Opening the run again meets the lost connection: reported, retried.
    let entry = app.runs[0].clone();
    loader.send(app.load(&entry, Role::Current));
    let mut retries = 0;
    while retries < 3 {
        match next(&loader) {
            loaded @ Loaded::Retrying { .. } => {
                retries += 1;
                app.apply(loaded);
            }
            other => panic!("expected a retry while the database is away, got {other:?}"),
        }
        for (w, h) in SIZES {
            let screen = render(&app, w, h);
            let status = screen.lines().last().unwrap();
            assert!(status.contains("connection lost: retry "), "{status}");
            if w >= 160 {
                assert!(status.contains("127.0.0.1"), "{status}");
            }
            // The views stay: the run loaded before is still shown.
            assert!(
                line_with(&screen, "Champions ").contains(" 632 "),
                "{screen}"
            );
        }
    }

    // The database is back: the retry succeeds and the message goes.
    db.reopen();
    let started = Instant::now();
    loop {
        match next(&loader) {
            loaded @ Loaded::Retrying { .. } => {
                app.apply(loaded);
            }
            loaded @ Loaded::Run { .. } => {
                app.apply(loaded);
                break;
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no recovery");
    }
    assert!(app.connection_lost.is_none());
    assert!(app.loading.is_empty(), "{:?}", app.loading);
    assert_eq!(app.current.as_ref().unwrap().customers.len(), 4_338);
    let status = render(&app, 80, 24).lines().last().unwrap().to_string();
    assert!(status.contains("4,338 customers"), "{status}");
}

#[test]
fn failed_and_abandoned_runs_are_listed_with_their_status_and_reason() {
    let fx = fixture();
    let db = testing::database();
    let mut store = Store::connect(&db.url).unwrap();
    let report = common::read_report(&fx.full).unwrap();
    let run = store
        .begin_run(&report, &rfm_store::Lease::with_defaults("test"))
        .unwrap();
    store.publish(run, &report, &fx.full_result).unwrap();
    // A newer run whose owner was killed: its lease expires, and the next
    // start marks it abandoned.
    let mut killed = report.clone();
    killed.run_id = "killed-mid-run".into();
    killed.started_at = "2030-01-01T00:00:00Z".into();
    let lease = rfm_store::Lease::new(
        "rfm-coordinator",
        Duration::from_millis(100),
        Duration::from_millis(20),
    )
    .unwrap();
    store.begin_run(&killed, &lease).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let reason = store.abandon_expired().unwrap().remove(0).reason;

    let src = source::open(&SourceSpec::Database(db.url.clone())).expect("connect");
    let mut app = loaded(src.as_ref());
    assert_eq!(app.runs.len(), 2);
    assert_eq!(app.runs[0].report.status, "abandoned");
    assert_eq!(app.runs[0].report.error.as_deref(), Some(reason.as_str()));
    // Shown and compared: the latest run with results, not the abandoned one.
    assert_eq!(app.runs_selected, 1);
    assert_eq!(
        app.current.as_ref().map(|r| r.entry.report.run_id.as_str()),
        Some(report.run_id.as_str())
    );
    let screen = render(&app, 160, 48);
    assert!(
        screen.contains("newest run killed-mid-run abandoned: lease expired at"),
        "{screen}"
    );
    press(&mut app, src.as_ref(), &[KeyCode::Char('5')]);
    let screen = render(&app, 160, 48);
    let history = line_with(&screen, "2030-01-01T00:00:00Z");
    assert!(history.contains("abandoned"), "{screen}");
}
