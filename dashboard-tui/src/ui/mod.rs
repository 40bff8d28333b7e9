//! Drawing: the tab bar, the current view, the status line and the help
//! overlay. Every function takes the state by reference and draws into a
//! [`Frame`]; nothing here changes state.

mod customers;
mod distributions;
mod grid;
mod help;
mod live;
mod overview;
mod runs;
pub mod theme;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;
use rfm_core::text::escape_controls as shown;

use crate::app::{App, Status, View};
use theme::Theme;

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let theme = Theme::new(app.color);
    let [tabs, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_tabs(frame, app, theme, tabs);
    match &app.current {
        _ if app.view == View::Live => match &app.live {
            Some(state) => live::draw(frame, state, theme, body),
            None => draw_waiting(frame, app, theme, body),
        },
        Some(run) if app.view != View::Runs => match app.view {
            View::Overview => overview::draw(frame, app, run, theme, body),
            View::Grid => grid::draw(frame, app, run, theme, body),
            View::Distributions => distributions::draw(frame, app, run, theme, body),
            View::Customers => customers::draw(frame, app, run, theme, body),
            View::Runs | View::Live => {}
        },
        _ if app.view == View::Runs => runs::draw(frame, app, theme, body),
        _ => draw_waiting(frame, app, theme, body),
    }
    draw_status(frame, app, theme, status);
    if app.show_help {
        help::draw(frame, theme, body);
    }
}

fn draw_tabs(frame: &mut Frame, app: &App, theme: Theme, area: Rect) {
    let mut spans = Vec::new();
    for (i, v) in app.views().iter().enumerate() {
        let text = format!(" {} {} ", i + 1, v.title());
        let style = if *v == app.view {
            theme.active_tab()
        } else {
            theme.dim()
        };
        spans.push(Span::styled(text, style));
    }
    let used: usize = spans.iter().map(|s| s.width()).sum();
    if let Some(run) = &app.current {
        let id = format!(" run {}", shown(run.run_id()));
        if used + id.chars().count() <= area.width as usize {
            let pad = area.width as usize - used - id.chars().count();
            spans.push(Span::raw(" ".repeat(pad)));
            spans.push(Span::styled(id, theme.title()));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_waiting(frame: &mut Frame, app: &App, theme: Theme, area: Rect) {
    let text = if !app.loading.is_empty() {
        "Loading…".to_string()
    } else if let Some(Status::Error(e)) = &app.status {
        format!("Nothing to show: {e}")
    } else {
        "No run loaded.".to_string()
    };
    let p = Paragraph::new(text)
        .style(theme.dim())
        .wrap(Wrap { trim: true })
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(app.source.clone()),
        );
    frame.render_widget(p, area);
}

fn draw_status(frame: &mut Frame, app: &App, theme: Theme, area: Rect) {
    let hint = " ?:help  q:quit";
    let live_lost = app.live.as_ref().and_then(|l| {
        l.lost
            .as_ref()
            .map(|e| format!("coordinator lost: retry {} in 1 s: {e}", l.failures))
    });
    let (text, style) = if let Some(lost) = &app.connection_lost {
        (format!("connection lost: {lost}"), theme.error())
    } else if let Some(lost) = live_lost {
        (lost, theme.error())
    } else if !app.loading.is_empty() {
        (format!("⏳ {}…", app.loading.join(", ")), theme.info())
    } else {
        match &app.status {
            Some(Status::Error(e)) => (format!("error: {}", shown(e)), theme.error()),
            Some(Status::Info(i)) => (shown(i).into_owned(), theme.info()),
            None => match (&app.live, app.live_only) {
                (Some(l), true) => (format!("coordinator {}", l.url), theme.dim()),
                _ => (app.source.clone(), theme.dim()),
            },
        }
    };
    let width = area.width as usize;
    let room = width.saturating_sub(hint.chars().count());
    let text = crate::format::fit(&text, room);
    let pad = room.saturating_sub(text.chars().count());
    let line = Line::from(vec![
        Span::styled(text, style),
        Span::raw(" ".repeat(pad)),
        Span::styled(hint, theme.dim()),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

/// A rectangle of at most `width` × `height` centred in `area`.
pub(crate) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// Clears `area` and draws a bordered popup block there; returns its inside.
pub(crate) fn popup(frame: &mut Frame, area: Rect, title: String, theme: Theme) -> Rect {
    frame.render_widget(Clear, area);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(title, theme.title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    inner
}
