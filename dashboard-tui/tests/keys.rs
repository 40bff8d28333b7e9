//! Key handling on the app state, without a terminal: switching views,
//! searching a customer, opening its detail, sorting, runs, quitting.

use crate::common;

use crate::common::{fixture, key, loaded_app, press, type_text};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use rfm_dashboard::app::{Command, Measure, Role, SortKey, View};
use rfm_dashboard::events::handle_key;

#[test]
fn number_keys_and_tab_switch_views() {
    let fx = fixture();
    let mut app = loaded_app(&fx.full);
    assert_eq!(app.view, View::Overview);
    for (k, v) in [
        ('2', View::Grid),
        ('3', View::Distributions),
        ('4', View::Customers),
        ('5', View::Runs),
        ('1', View::Overview),
    ] {
        press(&mut app, &fx.full, &[KeyCode::Char(k)]);
        assert_eq!(app.view, v);
    }
    press(&mut app, &fx.full, &[KeyCode::Tab]);
    assert_eq!(app.view, View::Grid);
    press(&mut app, &fx.full, &[KeyCode::BackTab, KeyCode::BackTab]);
    assert_eq!(app.view, View::Runs);
}

#[test]
fn search_opens_customer_detail() {
    let fx = fixture();
    let mut app = loaded_app(&fx.full);
    press(&mut app, &fx.full, &[KeyCode::Char('/')]);
    assert_eq!(app.view, View::Customers);
    assert!(app.customers.editing);
    // While typing, q and digits are text, not commands.
    type_text(&mut app, &fx.full, "1234");
    assert!(!app.should_quit);
    assert_eq!(app.view, View::Customers);
    type_text(&mut app, &fx.full, "7");
    assert_eq!(app.customers.query, "12347");
    assert_eq!(app.selected_customer().unwrap().customer_id, "12347");
    press(&mut app, &fx.full, &[KeyCode::Enter]);
    assert!(!app.customers.editing);
    press(&mut app, &fx.full, &[KeyCode::Enter]);
    assert!(app.customers.detail);
    let c = app.selected_customer().unwrap();
    assert_eq!((c.r, c.f, c.m, c.segment.name()), (5, 5, 5, "Champions"));
    assert_eq!(c.monetary_text(), "4310.00");
    press(&mut app, &fx.full, &[KeyCode::Esc]);
    assert!(!app.customers.detail);
    // Search by segment name narrows to that segment.
    press(&mut app, &fx.full, &[KeyCode::Char('/')]);
    for _ in 0..5 {
        press(&mut app, &fx.full, &[KeyCode::Backspace]);
    }
    type_text(&mut app, &fx.full, "can't lose");
    assert_eq!(app.customers.visible.len(), 63);
    press(&mut app, &fx.full, &[KeyCode::Esc]);
    assert_eq!(app.customers.visible.len(), 4_338);
    assert!(app.customers.query.is_empty());
    // Comparisons: R = 5 and F >= 4 is exactly the Champions (632).
    press(&mut app, &fx.full, &[KeyCode::Char('/')]);
    type_text(&mut app, &fx.full, "r=5 f>=4");
    assert_eq!(app.customers.visible.len(), 632);
    let run = app.current.clone().unwrap();
    assert!(app
        .customers
        .visible
        .iter()
        .all(|&i| run.customers[i].segment.name() == "Champions"));
    // Exact money comparison: customers who spent more than 100,000.00.
    press(&mut app, &fx.full, &[KeyCode::Esc, KeyCode::Char('/')]);
    type_text(&mut app, &fx.full, "monetary>100000");
    let expected = fx
        .full_result
        .customers
        .iter()
        .filter(|c| c.monetary.0 > 100_000 * rfm_core::money::ONE)
        .count();
    assert!(expected > 0);
    assert_eq!(app.customers.visible.len(), expected);
}

#[test]
fn sorting_cycles_and_reverses() {
    let fx = fixture();
    let mut app = loaded_app(&fx.full);
    press(&mut app, &fx.full, &[KeyCode::Char('4')]);
    let run = app.current.clone().unwrap();
    let monetary =
        |app: &rfm_dashboard::app::App, i: usize| run.customers[app.customers.visible[i]].monetary;
    assert_eq!(app.customers.sort, SortKey::Monetary);
    assert!(monetary(&app, 0) >= monetary(&app, 1));
    press(&mut app, &fx.full, &[KeyCode::Char('r')]);
    assert!(monetary(&app, 0) <= monetary(&app, 1));
    press(&mut app, &fx.full, &[KeyCode::Char('s')]);
    assert_eq!(app.customers.sort, SortKey::Country);
    press(&mut app, &fx.full, &[KeyCode::Char('s')]);
    assert_eq!(app.customers.sort, SortKey::Id);
    let first = &run.customers[app.customers.visible[0]].customer_id;
    assert_eq!(first, "12346");
    press(&mut app, &fx.full, &[KeyCode::Char('G')]);
    assert_eq!(app.customers.selected, 4_337);
    press(
        &mut app,
        &fx.full,
        &[KeyCode::Char('j'), KeyCode::Char('g')],
    );
    assert_eq!(app.customers.selected, 0);
}

#[test]
fn runs_view_opens_and_compares() {
    let fx = fixture();
    let mut app = loaded_app(&fx.root);
    assert_eq!(app.runs.len(), 2);
    assert_eq!(app.current.as_ref().unwrap().entry.label, "2011-12");
    assert_eq!(app.baseline.as_ref().unwrap().entry.label, "2011-08");
    assert!(app.movement.is_some());
    press(&mut app, &fx.root, &[KeyCode::Char('5')]);
    // Enter on the older run makes it the shown one, and c on the newer the baseline.
    let mut work = handle_key(&mut app, key(KeyCode::Down));
    assert!(work.is_empty());
    work = handle_key(&mut app, key(KeyCode::Enter));
    assert!(
        matches!(&work[..], [Command::LoadRun { role: Role::Current, entry }] if entry.label == "2011-08")
    );
    assert!(!app.loading.is_empty(), "loading shows in the status line");
    press(
        &mut app,
        &fx.root,
        &[KeyCode::Enter, KeyCode::Up, KeyCode::Char('c')],
    );
    assert_eq!(app.current.as_ref().unwrap().entry.label, "2011-08");
    assert_eq!(app.baseline.as_ref().unwrap().entry.label, "2011-12");
    assert_eq!(
        app.movement.as_ref().unwrap().to_run,
        "20110813T000000Z-half"
    );
    press(&mut app, &fx.root, &[KeyCode::Char('v')]);
    assert_eq!(app.movement_measure, Measure::Revenue);
}

#[test]
fn quit_and_help() {
    let fx = fixture();
    let mut app = loaded_app(&fx.full);
    press(&mut app, &fx.full, &[KeyCode::Char('?')]);
    assert!(app.show_help);
    press(&mut app, &fx.full, &[KeyCode::Char('x')]);
    assert!(!app.show_help);
    press(&mut app, &fx.full, &[KeyCode::Char('q')]);
    assert!(app.should_quit);
    let mut app = loaded_app(&fx.full);
    press(&mut app, &fx.full, &[KeyCode::Char('/')]);
    handle_key(
        &mut app,
        KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
    );
    assert!(app.should_quit, "Ctrl-C quits even while searching");
}

#[test]
fn overview_and_grid_lead_to_their_customers() {
    let fx = fixture();
    let mut app = loaded_app(&fx.full);
    // The overview's first row is Champions; Enter lists its 632 customers.
    press(&mut app, &fx.full, &[KeyCode::Enter]);
    assert_eq!(app.view, View::Customers);
    assert_eq!(app.customers.visible.len(), 632);
    let screen = common::render(&app, 80, 24);
    assert!(screen.contains("[Champions, Esc: all]"), "{screen}");
    press(&mut app, &fx.full, &[KeyCode::Esc]);
    assert_eq!(app.customers.visible.len(), 4_338);
    // Last row: Hibernating, 1,077.
    press(&mut app, &fx.full, &[KeyCode::Char('1')]);
    for _ in 0..12 {
        press(&mut app, &fx.full, &[KeyCode::Char('j')]);
    }
    press(&mut app, &fx.full, &[KeyCode::Enter]);
    assert_eq!(app.customers.visible.len(), 1_077);
    // Grid: from R5 F5, one left and two down is R3 F4 (Loyal Customers).
    press(
        &mut app,
        &fx.full,
        &[
            KeyCode::Char('2'),
            KeyCode::Char('h'),
            KeyCode::Down,
            KeyCode::Char('j'),
        ],
    );
    assert_eq!(app.grid_cursor, (3, 4));
    press(&mut app, &fx.full, &[KeyCode::Enter]);
    assert_eq!(app.view, View::Customers);
    assert_eq!(app.customers.query, "r=3 f=4");
    let expected = fx
        .full_result
        .customers
        .iter()
        .filter(|c| c.r == 3 && c.f == 4)
        .count();
    assert_eq!(app.customers.visible.len(), expected);
    let run = app.current.clone().unwrap();
    assert!(app
        .customers
        .visible
        .iter()
        .all(|&i| run.customers[i].segment.name() == "Loyal Customers"));
}

#[test]
fn one_esc_clears_one_thing_search_first_then_the_filter() {
    let fx = fixture();
    let mut app = loaded_app(&fx.full);
    // The Champions (the overview's first row), then a search among them.
    press(&mut app, &fx.full, &[KeyCode::Enter]);
    assert_eq!(app.customers.visible.len(), 632);
    press(&mut app, &fx.full, &[KeyCode::Char('/')]);
    type_text(&mut app, &fx.full, "monetary>10000");
    let rich = fx
        .full_result
        .customers
        .iter()
        .filter(|c| c.segment.name() == "Champions")
        .filter(|c| c.monetary > rfm_core::money::Money(10_000 * rfm_core::money::ONE))
        .count();
    assert!(rich > 0 && rich < 632);
    assert_eq!(app.customers.visible.len(), rich);
    // Esc while typing: the search goes, the segment stays.
    press(&mut app, &fx.full, &[KeyCode::Esc]);
    assert!(app.customers.query.is_empty());
    assert!(!app.customers.editing);
    assert_eq!(app.customers.visible.len(), 632);
    // The next Esc: the segment filter goes.
    press(&mut app, &fx.full, &[KeyCode::Esc]);
    assert_eq!(app.customers.visible.len(), 4_338);
}

#[test]
fn a_term_the_cli_would_refuse_is_flagged_as_text() {
    let fx = fixture();
    let mut app = loaded_app(&fx.full);
    press(&mut app, &fx.full, &[KeyCode::Char('/')]);
    type_text(&mut app, &fx.full, "spend>10");
    press(&mut app, &fx.full, &[KeyCode::Enter]);
    // Read as text, it matches nobody; the bar says why.
    assert!(app.customers.visible.is_empty());
    let screen = common::render(&app, 160, 24);
    assert!(
        screen.contains("(\"spend>10\" read as text: \"spend\" is not a field"),
        "{screen}"
    );
    // A valid query carries no such note.
    press(&mut app, &fx.full, &[KeyCode::Esc, KeyCode::Char('/')]);
    type_text(&mut app, &fx.full, "r=5 f>=4");
    press(&mut app, &fx.full, &[KeyCode::Enter]);
    assert_eq!(app.customers.visible.len(), 632);
    assert!(!common::render(&app, 160, 24).contains("read as text"));
}
