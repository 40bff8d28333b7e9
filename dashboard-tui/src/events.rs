//! Key handling: each key press becomes a change of [`App`] state and,
//! sometimes, work for the loader ([`Command`]).

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::app::{App, Command, MoveFilter, OverviewPanel, Role, Status, View};

/// Rows a page key moves.
const PAGE: isize = 10;

/// Applies one key press. Returns the loader work it starts.
pub fn handle_key(app: &mut App, key: KeyEvent) -> Vec<Command> {
    if key.kind == KeyEventKind::Release {
        return Vec::new();
    }
    // An error stays in the status line until the next key.
    if matches!(app.status, Some(Status::Error(_))) {
        app.status = None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        app.should_quit = true;
        return Vec::new();
    }
    if app.customers.editing {
        edit_search(app, key);
        return Vec::new();
    }
    if app.show_help {
        // Any key closes the help; keys other than these also do their usual work.
        app.show_help = false;
        if matches!(key.code, KeyCode::Esc | KeyCode::Enter | KeyCode::Char('?')) {
            return Vec::new();
        }
    }
    match key.code {
        KeyCode::Char('q') => {
            app.should_quit = true;
            return Vec::new();
        }
        KeyCode::Char('?') => {
            app.show_help = true;
            return Vec::new();
        }
        KeyCode::Char(c @ '1'..='9') => {
            if let Some(view) = app.views().get(c as usize - '1' as usize) {
                app.set_view(*view);
            }
            return Vec::new();
        }
        KeyCode::Tab | KeyCode::BackTab => {
            let views = app.views();
            let n = views.len();
            let i = views.iter().position(|v| *v == app.view).unwrap_or(0);
            let j = if key.code == KeyCode::Tab {
                (i + 1) % n
            } else {
                (i + n - 1) % n
            };
            app.set_view(views[j]);
            return Vec::new();
        }
        KeyCode::Char('/') if !app.live_only => {
            app.set_view(View::Customers);
            app.customers.detail = false;
            app.customers.editing = true;
            return Vec::new();
        }
        _ => {}
    }
    match app.view {
        View::Overview => {
            match key.code {
                KeyCode::Char('b') => {
                    app.overview_panel = match app.overview_panel {
                        OverviewPanel::Table => OverviewPanel::Bars,
                        OverviewPanel::Bars => OverviewPanel::Table,
                    }
                }
                KeyCode::Down | KeyCode::Char('j') => app.move_overview(1),
                KeyCode::Up | KeyCode::Char('k') => app.move_overview(-1),
                KeyCode::Enter => app.show_segment(),
                _ => {}
            }
            Vec::new()
        }
        View::Grid => {
            match key.code {
                KeyCode::Char('v') => app.grid_measure = app.grid_measure.toggled(),
                KeyCode::Up | KeyCode::Char('k') => app.move_grid(1, 0),
                KeyCode::Down | KeyCode::Char('j') => app.move_grid(-1, 0),
                KeyCode::Left | KeyCode::Char('h') => app.move_grid(0, -1),
                KeyCode::Right | KeyCode::Char('l') => app.move_grid(0, 1),
                KeyCode::Enter => app.show_cell(),
                _ => {}
            }
            Vec::new()
        }
        View::Distributions => {
            match key.code {
                KeyCode::Left | KeyCode::Char('h') => app.cycle_metric(false),
                KeyCode::Right | KeyCode::Char('l') => app.cycle_metric(true),
                KeyCode::Down | KeyCode::Char('j') => app.cycle_dist_segment(true),
                KeyCode::Up | KeyCode::Char('k') => app.cycle_dist_segment(false),
                KeyCode::Char('g') => app.dist.log = Some(!app.dist.log()),
                _ => {}
            }
            Vec::new()
        }
        View::Customers => {
            customers_key(app, key);
            Vec::new()
        }
        View::Runs => runs_key(app, key),
        View::Live => Vec::new(),
    }
}

fn edit_search(app: &mut App, key: KeyEvent) {
    match key.code {
        KeyCode::Enter => app.customers.editing = false,
        KeyCode::Esc => {
            app.customers.editing = false;
            app.clear_one_customer_filter();
        }
        KeyCode::Backspace => {
            app.customers.query.pop();
            app.refresh_customers();
        }
        KeyCode::Down => app.move_customer(1),
        KeyCode::Up => app.move_customer(-1),
        KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
            app.customers.query.push(c);
            app.refresh_customers();
        }
        _ => {}
    }
}

fn customers_key(app: &mut App, key: KeyEvent) {
    if app.customers.detail {
        match key.code {
            KeyCode::Esc | KeyCode::Enter | KeyCode::Backspace => app.customers.detail = false,
            KeyCode::Down | KeyCode::Char('j') => app.move_customer(1),
            KeyCode::Up | KeyCode::Char('k') => app.move_customer(-1),
            _ => {}
        }
        return;
    }
    match key.code {
        KeyCode::Down | KeyCode::Char('j') => app.move_customer(1),
        KeyCode::Up | KeyCode::Char('k') => app.move_customer(-1),
        KeyCode::PageDown => app.move_customer(PAGE),
        KeyCode::PageUp => app.move_customer(-PAGE),
        KeyCode::Home | KeyCode::Char('g') => app.move_customer(isize::MIN / 2),
        KeyCode::End | KeyCode::Char('G') => app.move_customer(isize::MAX / 2),
        KeyCode::Char('s') | KeyCode::Right | KeyCode::Char('l') => app.cycle_sort(),
        KeyCode::Char('S') | KeyCode::Char('r') => app.reverse_sort(),
        KeyCode::Enter => app.customers.detail = app.selected_customer().is_some(),
        KeyCode::Esc => app.clear_one_customer_filter(),
        _ => {}
    }
}

fn runs_key(app: &mut App, key: KeyEvent) -> Vec<Command> {
    match key.code {
        KeyCode::Down | KeyCode::Char('j') => app.move_run(1),
        KeyCode::Up | KeyCode::Char('k') => app.move_run(-1),
        KeyCode::Char('v') => app.movement_measure = app.movement_measure.toggled(),
        KeyCode::Char('L') => app.show_moved(MoveFilter::LeftChampions),
        KeyCode::Char('W') => app.show_moved(MoveFilter::WokeUp),
        KeyCode::Char('F') => app.show_moved(MoveFilter::FellAsleep),
        KeyCode::Enter => {
            if let Some(entry) = app.runs.get(app.runs_selected).cloned() {
                return vec![app.load(&entry, Role::Current)];
            }
        }
        KeyCode::Char('c') => {
            if let Some(entry) = app.runs.get(app.runs_selected).cloned() {
                return vec![app.load(&entry, Role::Baseline)];
            }
        }
        // Runs published since the start appear; the newest opens.
        KeyCode::Char('R') => return app.start(),
        _ => {}
    }
    Vec::new()
}
