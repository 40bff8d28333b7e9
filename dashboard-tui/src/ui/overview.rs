//! Overview of a run: the segment table, bar charts of customers and revenue
//! per segment, and the line ledger (what was read, what was excluded, why).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use ratatui::Frame;
use rfm_core::text::escape_controls as shown;

use super::theme::Theme;
use crate::app::{App, OverviewPanel};
use crate::data::RunData;
use crate::format;

/// Rows the segment table needs (header, ten segments, borders).
const TABLE_HEIGHT: u16 = 13;
const BARS_HEIGHT: u16 = 13;
const LEDGER_HEIGHT: u16 = 8;
const RULES_HEIGHT: u16 = 12;

pub fn draw(frame: &mut Frame, app: &App, run: &RunData, theme: Theme, area: Rect) {
    match run.entry.report.status {
        rfm_core::RunStatus::Succeeded => {}
        rfm_core::RunStatus::Skipped => {
            draw_skipped(frame, run, theme, area);
            return;
        }
        _ => {
            draw_failed(frame, run, theme, area);
            return;
        }
    }
    if area.width >= 150 {
        let [top, bottom] = Layout::vertical([
            Constraint::Length(TABLE_HEIGHT),
            Constraint::Length(RULES_HEIGHT.max(LEDGER_HEIGHT)),
        ])
        .areas(area);
        let [table, bars] =
            Layout::horizontal([Constraint::Length(80), Constraint::Min(0)]).areas(top);
        let [ledger, rules] =
            Layout::horizontal([Constraint::Length(80), Constraint::Min(0)]).areas(bottom);
        draw_table(frame, app, run, theme, table, None);
        draw_bars(frame, run, theme, bars, None);
        draw_ledger(frame, run, theme, ledger);
        draw_rules(frame, run, theme, rules);
    } else if area.height >= TABLE_HEIGHT + BARS_HEIGHT + LEDGER_HEIGHT {
        let [table, bars, ledger] = Layout::vertical([
            Constraint::Length(TABLE_HEIGHT),
            Constraint::Length(BARS_HEIGHT),
            Constraint::Min(0),
        ])
        .areas(area);
        draw_table(frame, app, run, theme, table, None);
        draw_bars(frame, run, theme, bars, None);
        draw_ledger(frame, run, theme, ledger);
    } else {
        let [top, ledger] =
            Layout::vertical([Constraint::Length(TABLE_HEIGHT), Constraint::Min(0)]).areas(area);
        match app.overview_panel {
            OverviewPanel::Table => {
                draw_table(frame, app, run, theme, top, Some(" b: bar charts "))
            }
            OverviewPanel::Bars => draw_bars(frame, run, theme, top, Some(" b: table ")),
        }
        draw_ledger(frame, run, theme, ledger);
    }
}

fn title(run: &RunData) -> String {
    let r = &run.entry.report;
    format!(
        " Segments · as-of {} · {} · revenue {} ",
        r.as_of.as_deref().unwrap_or("?"),
        format::counted(r.customers, "customer", "customers"),
        format::money(run.total_revenue),
    )
}

fn draw_table(
    frame: &mut Frame,
    app: &App,
    run: &RunData,
    theme: Theme,
    area: Rect,
    hint: Option<&str>,
) {
    let revenue_width = run
        .segments
        .iter()
        .map(|s| format::money(s.revenue).len())
        .max()
        .unwrap_or(7)
        .max(7) as u16;
    let header = Row::new(
        [
            "Segment", "Cust.", "%", "Revenue", "%", "avg R", "avg F", "avg M",
        ]
        .into_iter()
        .enumerate()
        .map(|(i, h)| {
            if i == 0 {
                Cell::from(h)
            } else {
                Cell::from(Line::from(h).right_aligned())
            }
        }),
    )
    .style(theme.header());
    let rows = run.segments.iter().map(|s| {
        Row::new(vec![
            Cell::from(Span::styled(s.segment.name(), theme.segment(s.segment))),
            Cell::from(Line::from(format::count(s.customers)).right_aligned()),
            Cell::from(Line::from(format::percent(&s.customers_share)).right_aligned()),
            Cell::from(Line::from(format::money(s.revenue)).right_aligned()),
            Cell::from(Line::from(format::percent(&s.revenue_share)).right_aligned()),
            Cell::from(Line::from(s.avg_recency.clone()).right_aligned()),
            Cell::from(Line::from(s.avg_frequency.clone()).right_aligned()),
            Cell::from(Line::from(format::group(&s.avg_monetary)).right_aligned()),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(19),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(revenue_width),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(5),
            Constraint::Length(9),
        ],
    )
    .header(header)
    .column_spacing(1)
    .block(with_hint(
        Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(title(run), theme.title()))
            .title_bottom(Line::from(" ↑↓ Enter: its customers ").left_aligned()),
        hint,
    ));
    let mut state = ratatui::widgets::TableState::default();
    if !run.segments.is_empty() {
        state.select(Some(app.overview_selected.min(run.segments.len() - 1)));
    }
    frame.render_stateful_widget(
        table.row_highlight_style(theme.selected()),
        area,
        &mut state,
    );
}

fn draw_bars(frame: &mut Frame, run: &RunData, theme: Theme, area: Rect, hint: Option<&str>) {
    let block = with_hint(
        Block::default().borders(Borders::ALL).title(Span::styled(
            " Customers and revenue per segment ",
            theme.title(),
        )),
        hint,
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let max_customers = run
        .segments
        .iter()
        .map(|s| s.customers)
        .max()
        .unwrap_or(1)
        .max(1);
    let revenue_of = |s: &crate::data::SegmentSummary| s.revenue.0 as f64;
    let max_revenue = run
        .segments
        .iter()
        .map(revenue_of)
        .fold(0.0f64, f64::max)
        .max(1.0);
    // name │ customers bar + count │ revenue bar + share
    let fixed = 19 + 1 + 6 + 3 + 7;
    let bar_width = (inner.width as usize).saturating_sub(fixed) / 2;
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("{:19} ", ""), theme.header()),
        Span::styled(
            format!("{:<w$}", "customers", w = bar_width + 7),
            theme.header(),
        ),
        Span::styled(" │ ", theme.dim()),
        Span::styled("revenue share", theme.header()),
    ])];
    for s in &run.segments {
        let style = theme.segment(s.segment);
        let cb = format::bar(s.customers as f64 / max_customers as f64, bar_width);
        let rb = format::bar(revenue_of(s) / max_revenue, bar_width);
        lines.push(Line::from(vec![
            Span::styled(format!("{:19} ", format::fit(s.segment.name(), 19)), style),
            Span::styled(format!("{cb:<bar_width$}"), style),
            Span::raw(format!("{:>7}", format::count(s.customers))),
            Span::styled(" │ ", theme.dim()),
            Span::styled(format!("{rb:<bar_width$}"), style),
            Span::raw(format!("{:>6}", format::percent(&s.revenue_share))),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn with_hint<'a>(block: Block<'a>, hint: Option<&'a str>) -> Block<'a> {
    match hint {
        Some(h) => block.title_bottom(Line::from(h).right_aligned()),
        None => block,
    }
}

/// The segment rules (spec §5), with each segment's R and F cells.
fn draw_rules(frame: &mut Frame, run: &RunData, theme: Theme, area: Rect) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(" Segment rules (R, F scores) ", theme.title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let lines: Vec<Line> = rfm_core::Segment::ALL
        .iter()
        .map(|s| {
            let customers = run.segment(*s).map_or(0, |r| r.customers);
            Line::from(vec![
                Span::styled(format!("{:<20}", s.name()), theme.segment(*s)),
                Span::raw(format!("{:<24}", s.rule())),
                Span::styled(
                    format!(
                        "{:>7} {}",
                        format::count(customers),
                        if customers == 1 {
                            "customer"
                        } else {
                            "customers"
                        }
                    ),
                    theme.dim(),
                ),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn draw_ledger(frame: &mut Frame, run: &RunData, theme: Theme, area: Rect) {
    let r = &run.entry.report;
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(" Lines read and excluded ", theme.title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let row = |a: &str, av: u64, b: &str, bv: u64| {
        Line::from(vec![
            Span::raw(format!("{a:<16}{:>10}", format::count(av))),
            Span::raw("    "),
            Span::raw(format!("{b:<20}{:>10}", format::count(bv))),
        ])
    };
    let mut lines = vec![
        row(
            "lines read",
            r.lines_read,
            "missing customer",
            r.excluded.missing_customer,
        ),
        row(
            "purchase lines",
            r.purchase_lines,
            "cancellation",
            r.excluded.cancellation,
        ),
        row(
            "customers",
            r.customers,
            "quantity <= 0",
            r.excluded.quantity_le_0,
        ),
        row(
            "malformed",
            r.malformed,
            "price <= 0",
            r.excluded.price_le_0,
        ),
        Line::from(format!(
            "as-of {} (purchases {} … {}) · {} input file(s) · {:.2} s",
            r.as_of.as_deref().unwrap_or("?"),
            r.first_purchase.as_deref().unwrap_or("?"),
            r.latest_purchase.as_deref().unwrap_or("?"),
            r.input.len(),
            r.seconds
        ))
        .style(theme.dim()),
    ];
    let forms: Vec<&str> = r
        .files
        .iter()
        .filter_map(|f| f.date_form.as_deref())
        .collect();
    if !forms.is_empty() {
        let mut forms = forms;
        forms.dedup();
        lines.push(Line::from(format!("dates: {}", shown(&forms.join("; ")))).style(theme.dim()));
    }
    for w in &r.warnings {
        lines.push(Line::from(format!("warning: {}", shown(w))).style(theme.error()));
    }
    if r.malformed_samples.is_empty() {
        lines.push(Line::from("no malformed lines").style(theme.dim()));
    } else {
        for s in &r.malformed_samples {
            lines.push(Line::from(format!(
                "{}:{}: {} — {}",
                shown(&s.file),
                s.line.map(|l| l.to_string()).unwrap_or_else(|| "?".into()),
                shown(&s.problem),
                shown(&s.text)
            )));
        }
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// A scheduled run that did not run: why, in its own style (not an error).
fn draw_skipped(frame: &mut Frame, run: &RunData, theme: Theme, area: Rect) {
    let r = &run.entry.report;
    let p = Paragraph::new(vec![
        Line::from(format!("Run {} skipped", shown(&r.run_id))).style(theme.skipped()),
        Line::from(shown(r.error.as_deref().unwrap_or("nothing new to read")).into_owned()),
        Line::from("Nothing was read; the previous run's results stand.").style(theme.dim()),
    ])
    .wrap(ratatui::widgets::Wrap { trim: true })
    .block(Block::default().borders(Borders::ALL));
    frame.render_widget(p, area);
}

fn draw_failed(frame: &mut Frame, run: &RunData, theme: Theme, area: Rect) {
    let r = &run.entry.report;
    let [msg, ledger] = Layout::vertical([Constraint::Length(5), Constraint::Min(0)]).areas(area);
    let p = Paragraph::new(vec![
        Line::from(format!("Run {} {}", shown(&r.run_id), r.status)).style(theme.error()),
        Line::from(shown(r.error.as_deref().unwrap_or_default()).into_owned()),
    ])
    .wrap(ratatui::widgets::Wrap { trim: true })
    .block(Block::default().borders(Borders::ALL));
    frame.render_widget(p, msg);
    draw_ledger(frame, run, theme, ledger);
}
