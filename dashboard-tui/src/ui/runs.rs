//! Runs: the run history (newest first) and the movement of customers
//! between two runs: a from → to matrix of customers or revenue at stake.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;
use rfm_core::text::escape_controls as shown;
use rfm_core::Segment;

use super::theme::Theme;
use crate::analysis::{self, Movement, Total, ABSENT, SLOTS};
use crate::app::{App, Measure};
use crate::format;

/// Two-letter codes of the segments, for matrix columns.
fn code(i: usize) -> &'static str {
    const CODES: [&str; 10] = ["CH", "LC", "PL", "NC", "PR", "NA", "AS", "AR", "CL", "HI"];
    CODES.get(i).copied().unwrap_or("gone")
}

fn row_label(i: usize) -> String {
    match Segment::ALL.get(i) {
        Some(s) => format!("{} {}", code(i), s.name()),
        None => "new in later run".into(),
    }
}

pub fn draw(frame: &mut Frame, app: &App, theme: Theme, area: Rect) {
    let history_h = (app.runs.len() as u16 + 3).clamp(4, 9).min(area.height / 2);
    let [history, movement] =
        Layout::vertical([Constraint::Length(history_h), Constraint::Min(0)]).areas(area);
    draw_history(frame, app, theme, history);
    match &app.movement {
        Some(m) => draw_movement(frame, app, m, theme, movement),
        None => {
            let text = if app.runs.len() < 2 {
                "One run only. Point --results-root at a folder holding several `rfm run --out` folders to compare runs."
            } else {
                "Select a run with ↑↓ and press c to compare it with the current run (Enter opens it as the current run)."
            };
            let p = Paragraph::new(text)
                .wrap(ratatui::widgets::Wrap { trim: true })
                .style(theme.dim())
                .block(Block::default().borders(Borders::ALL).title(" Movement "));
            frame.render_widget(p, movement);
        }
    }
}

fn draw_history(frame: &mut Frame, app: &App, theme: Theme, area: Rect) {
    let current = app.current.as_ref().map(|r| r.entry.key.as_str());
    let baseline = app.baseline.as_ref().map(|r| r.entry.key.as_str());
    let header = Row::new([
        "",
        "started",
        "status",
        "customers",
        "as-of",
        "revenue",
        "folder",
    ])
    .style(theme.header());
    let rows = app.runs.iter().map(|r| {
        let mark = if Some(r.key.as_str()) == current {
            "●"
        } else if Some(r.key.as_str()) == baseline {
            "◆"
        } else {
            " "
        };
        let rep = &r.report;
        Row::new(vec![
            Cell::from(mark),
            Cell::from(rep.started_at.clone()),
            Cell::from(Span::styled(r.status.as_str(), theme.run_status(r.status))),
            Cell::from(Line::from(format::count(rep.customers)).right_aligned()),
            Cell::from(rep.as_of.clone().unwrap_or_default()),
            Cell::from(
                Line::from(
                    rep.revenue
                        .as_deref()
                        .map(format::group)
                        .unwrap_or_default(),
                )
                .right_aligned(),
            ),
            Cell::from(shown(&r.label)),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(1),
            Constraint::Length(20),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(10),
            Constraint::Length(13),
            Constraint::Min(6),
        ],
    )
    .header(header)
    .row_highlight_style(theme.selected())
    .block(
        Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(
                format!(" Runs ({}) · ● shown · ◆ compared with ", app.runs.len()),
                theme.title(),
            ))
            .title_bottom(
                Line::from(" Enter: open · c: compare · v: customers/revenue ").right_aligned(),
            ),
    );
    let mut state = TableState::default();
    if !app.runs.is_empty() {
        state.select(Some(app.runs_selected));
    }
    frame.render_stateful_widget(table, area, &mut state);
}

fn total_text(t: Total) -> String {
    format!(
        "{} ({})",
        format::count(t.customers),
        format::money(t.revenue)
    )
}

fn draw_movement(frame: &mut Frame, app: &App, m: &Movement, theme: Theme, area: Rect) {
    let measure = app.movement_measure;
    let (from_label, to_label) = match (&app.baseline, &app.current) {
        (Some(b), Some(c)) => (shown(&b.entry.label), shown(&c.entry.label)),
        _ => (shown(&m.from_run), shown(&m.to_run)),
    };
    let block = Block::default().borders(Borders::ALL).title(Span::styled(
        format!(
            " Movement {from_label} → {to_label}: {} ",
            match measure {
                Measure::Customers => "customers",
                Measure::Revenue => "revenue at stake",
            }
        ),
        theme.title(),
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [summary, rest] =
        Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(inner);
    let lines = vec![
        Line::from(vec![
            Span::styled("left Champions ", theme.header()),
            Span::raw(total_text(m.left_champions())),
            Span::styled("  woke up ", theme.header()),
            Span::raw(total_text(m.woke_up())),
        ]),
        Line::from(vec![
            Span::styled("fell asleep ", theme.header()),
            Span::raw(total_text(m.fell_asleep())),
            Span::styled("  stayed ", theme.header()),
            Span::raw(format::count(m.stayed())),
            Span::styled("  L W F: list them", theme.dim()),
        ]),
    ];
    frame.render_widget(Paragraph::new(lines), summary);
    let (matrix, flows) = if rest.width >= 130 {
        let [a, b] = Layout::horizontal([Constraint::Length(82), Constraint::Min(0)]).areas(rest);
        (a, Some(b))
    } else {
        (rest, None)
    };
    draw_matrix(frame, m, measure, theme, matrix);
    if let Some(area) = flows {
        draw_flows(frame, m, measure, theme, area);
    }
}

fn draw_matrix(frame: &mut Frame, m: &Movement, measure: Measure, theme: Theme, area: Rect) {
    let label_w: u16 = if area.width >= 19 + 11 * 6 { 22 } else { 19 };
    let cell_w = ((area.width.saturating_sub(label_w)) / SLOTS as u16).max(3);
    let mut header = vec![Cell::from("from \\ to")];
    header.extend((0..SLOTS).map(|j| Cell::from(Line::from(code(j)).right_aligned())));
    let max = (0..SLOTS)
        .flat_map(|i| (0..SLOTS).map(move |j| (i, j)))
        .filter(|(i, j)| i != j)
        .map(|(i, j)| match measure {
            Measure::Customers => m.customers[i][j] as f64,
            Measure::Revenue => m.revenue[i][j].0 as f64,
        })
        .fold(0.0, f64::max)
        .max(1.0);
    let rows = (0..SLOTS).map(|i| {
        let mut cells = vec![Cell::from(format::fit(&row_label(i), label_w as usize))];
        for j in 0..SLOTS {
            let (text, v) = match measure {
                Measure::Customers => (
                    if m.customers[i][j] == 0 {
                        "·".to_string()
                    } else {
                        m.customers[i][j].to_string()
                    },
                    m.customers[i][j] as f64,
                ),
                Measure::Revenue => (
                    if m.customers[i][j] == 0 {
                        "·".to_string()
                    } else {
                        format::money_short(m.revenue[i][j])
                    },
                    m.revenue[i][j].0 as f64,
                ),
            };
            let style = if i == j {
                theme.dim()
            } else if v > 0.0 {
                theme.heat(v / max)
            } else {
                theme.dim()
            };
            cells.push(Cell::from(Line::from(text).right_aligned()).style(style));
        }
        Row::new(cells)
    });
    let mut widths = vec![Constraint::Length(label_w)];
    widths.extend((0..SLOTS).map(|_| Constraint::Length(cell_w.saturating_sub(1))));
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.header()))
        .column_spacing(1);
    frame.render_widget(table, area);
}

fn draw_flows(frame: &mut Frame, m: &Movement, measure: Measure, theme: Theme, area: Rect) {
    let flows = m.flows(measure == Measure::Revenue);
    let mut lines = vec![Line::from(Span::styled(
        "largest moves: customers, revenue at stake",
        theme.header(),
    ))];
    for f in flows.iter().take(area.height.saturating_sub(1) as usize) {
        let to = if f.to == ABSENT {
            "gone".to_string()
        } else {
            analysis::slot_name(f.to).to_string()
        };
        let from = if f.from == ABSENT {
            "new".to_string()
        } else {
            analysis::slot_name(f.from).to_string()
        };
        lines.push(Line::from(format!(
            "{from} → {to}: {} · {}",
            format::count(f.customers),
            format::money(f.revenue)
        )));
    }
    frame.render_widget(Paragraph::new(lines), area);
}
