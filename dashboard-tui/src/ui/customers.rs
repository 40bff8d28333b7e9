//! Customers: a sortable, searchable table, and the detail of one customer
//! that explains its scores (metrics, ranks, the value and rank range of each
//! score, the segment rule, its segment in the compared run).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;
use rfm_core::text::escape_controls as shown;

use super::theme::Theme;
use crate::analysis;
use crate::app::{App, SortKey};
use crate::data::RunData;
use crate::format;

pub fn draw(frame: &mut Frame, app: &App, run: &RunData, theme: Theme, area: Rect) {
    let [search, table] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    draw_search(frame, app, run, theme, search);
    draw_table(frame, app, run, theme, table);
    if app.customers.detail {
        if let Some(i) = app.selected_index() {
            draw_detail(frame, app, run, i, theme, area);
        }
    }
}

fn draw_search(frame: &mut Frame, app: &App, run: &RunData, theme: Theme, area: Rect) {
    let st = &app.customers;
    let arrow = if st.descending { "↓" } else { "↑" };
    let mut spans = vec![];
    if let Some(m) = st.moved {
        let since = app
            .baseline
            .as_ref()
            .map_or("?", |b| b.entry.label.as_str());
        spans.push(Span::styled(
            format!("[{} since {since}, Esc: all] ", m.name()),
            theme.emphasis(),
        ));
    }
    if let Some(seg) = st.segment {
        spans.push(Span::styled(
            format!("[{}, Esc: all] ", seg.name()),
            theme.segment(seg),
        ));
    }
    if st.editing {
        spans.push(Span::styled(format!("/{}▏", st.query), theme.selected()));
    } else if !st.query.is_empty() {
        spans.push(Span::styled(format!("/{}", st.query), theme.emphasis()));
        // A term `rfm customers --where` would refuse is searched as text here: say so.
        if let Err(e) = rfm_runs::Query::parse(&st.query) {
            spans.push(Span::styled(
                format!(" ({:?} read as text: {})", e.term, e.reason),
                theme.dim(),
            ));
        }
    } else {
        spans.push(Span::styled("/ search", theme.dim()));
    }
    spans.push(Span::raw(format!(
        "  {} of {} · by {} {arrow} · s: sort · r: reverse · Enter: detail",
        format::count(st.visible.len() as u64),
        format::count(run.customers.len() as u64),
        st.sort.name(),
    )));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn header_cell(app: &App, key: SortKey, text: &str) -> String {
    if app.customers.sort == key {
        let arrow = if app.customers.descending {
            "↓"
        } else {
            "↑"
        };
        format!("{text}{arrow}")
    } else {
        text.to_string()
    }
}

fn draw_table(frame: &mut Frame, app: &App, run: &RunData, theme: Theme, area: Rect) {
    let st = &app.customers;
    let block = Block::default().borders(Borders::TOP | Borders::BOTTOM);
    let inner = block.inner(area);
    let page = inner.height.saturating_sub(1).max(1) as usize;
    let start = if st.selected < page {
        0
    } else {
        st.selected + 1 - page
    };
    let right = |text: String| Cell::from(Line::from(text).right_aligned());
    let header = Row::new(vec![
        Cell::from(header_cell(app, SortKey::Id, "id")),
        Cell::from(header_cell(app, SortKey::Segment, "segment")),
        Cell::from(header_cell(app, SortKey::Score, "RFM")),
        right(header_cell(app, SortKey::Recency, "recency")),
        right(header_cell(app, SortKey::Frequency, "freq")),
        right(header_cell(app, SortKey::Monetary, "monetary")),
        Cell::from(header_cell(app, SortKey::Country, "country")),
    ])
    .style(theme.header());
    let rows = st.visible.iter().skip(start).take(page).filter_map(|&i| {
        let c = run.customers.get(i)?;
        Some(Row::new(vec![
            Cell::from(shown(&c.customer_id)),
            Cell::from(Span::styled(
                c.segment.name().to_string(),
                theme.segment(c.segment),
            )),
            Cell::from(c.rfm_score()),
            Cell::from(Line::from(c.recency.to_string()).right_aligned()),
            Cell::from(Line::from(c.frequency.to_string()).right_aligned()),
            Cell::from(Line::from(format::money(c.monetary)).right_aligned()),
            Cell::from(shown(&c.country)),
        ]))
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(10),
            Constraint::Length(19),
            Constraint::Length(4),
            Constraint::Length(8),
            Constraint::Length(5),
            Constraint::Length(12),
            Constraint::Min(8),
        ],
    )
    .header(header)
    .row_highlight_style(theme.selected())
    .block(block);
    let mut state = TableState::default();
    if !st.visible.is_empty() {
        state.select(Some(st.selected.saturating_sub(start)));
    }
    frame.render_stateful_widget(table, area, &mut state);
}

fn range<T: ToString>(b: Option<(T, T)>) -> String {
    match b {
        Some((lo, hi)) => format!("{} – {}", lo.to_string(), hi.to_string()),
        None => "—".into(),
    }
}

fn draw_detail(
    frame: &mut Frame,
    app: &App,
    run: &RunData,
    index: usize,
    theme: Theme,
    area: Rect,
) {
    let Some(c) = run.customers.get(index) else {
        return;
    };
    let n = run.customers.len();
    let rank = |v: &Vec<u32>| v.get(index).map_or(0, |r| *r as u64);
    let rect = super::centered(area, 78, 20);
    let inner = super::popup(
        frame,
        rect,
        format!(
            " Customer {} · {} ",
            shown(&c.customer_id),
            c.segment.name()
        ),
        theme,
    );
    let cp = &run.cut_points;
    let mark = |k: u8, score: u8| if k == score { "▶" } else { " " };
    let mut lines = vec![
        Line::from(format!(
            "{} · first purchase {} · last {}",
            shown(&c.country),
            rfm_core::date::format_timestamp(c.first_purchase),
            rfm_core::date::format_timestamp(c.last_purchase)
        )),
        Line::from(vec![
            Span::styled("recency ", theme.header()),
            Span::raw(format!("{}  ", format::counted(c.recency, "day", "days"))),
            Span::styled("frequency ", theme.header()),
            Span::raw(format!(
                "{}  ",
                format::counted(c.frequency, "invoice", "invoices")
            )),
            Span::styled("monetary ", theme.header()),
            Span::raw(format::money(c.monetary)),
        ]),
        Line::from(vec![
            Span::raw("scores "),
            Span::styled(
                format!("R {} · F {} · M {}  (RFM {})", c.r, c.f, c.m, c.rfm_score()),
                theme.emphasis(),
            ),
            Span::styled(earlier(app, run, &c.customer_id), theme.dim()),
        ]),
        Line::from(vec![
            Span::raw(format!("ranks of {}: ", format::count(n as u64))),
            Span::styled(
                format!(
                    "R {} · F {} · M {}",
                    format::count(rank(&run.ranks.recency)),
                    format::count(rank(&run.ranks.frequency)),
                    format::count(rank(&run.ranks.monetary)),
                ),
                theme.emphasis(),
            ),
            Span::styled("  (score k = k-th fifth)", theme.dim()),
        ]),
        Line::from(Span::styled(
            "score  recency (days)     frequency       monetary                  ranks",
            theme.header(),
        )),
    ];
    for k in (1..=5u8).rev() {
        let i = k as usize - 1;
        let money_range = cp.monetary[i].map(|(lo, hi)| (format::money(lo), format::money(hi)));
        lines.push(Line::from(vec![
            Span::raw(format!("  {k}   ")),
            Span::styled(
                format!("{}{:<16}", mark(k, c.r), range(cp.recency[i])),
                if k == c.r {
                    theme.emphasis()
                } else {
                    theme.dim()
                },
            ),
            Span::styled(
                format!("{}{:<14}", mark(k, c.f), range(cp.frequency[i])),
                if k == c.f {
                    theme.emphasis()
                } else {
                    theme.dim()
                },
            ),
            Span::styled(
                format!("{}{:<25}", mark(k, c.m), range(money_range)),
                if k == c.m {
                    theme.emphasis()
                } else {
                    theme.dim()
                },
            ),
            Span::styled(
                analysis::bucket_ranks(n, k)
                    .map(|(lo, hi)| {
                        format!("{}–{}", format::count(lo as u64), format::count(hi as u64))
                    })
                    .unwrap_or_default(),
                theme.dim(),
            ),
        ]));
    }
    lines.push(Line::from(Span::styled(
        "(values and ranks of each score in this run; ▶ = this customer; ties by id)",
        theme.dim(),
    )));
    lines.push(Line::from(vec![
        Span::raw("segment "),
        Span::styled(c.segment.name().to_string(), theme.segment(c.segment)),
        Span::raw(format!(
            ": {}  (here R = {}, F = {})",
            c.segment.rule(),
            c.r,
            c.f
        )),
    ]));
    lines.push(Line::from(Span::styled(
        "The segment depends on R and F only; M ranks spend. Esc: close · ↑↓: next customer",
        theme.dim(),
    )));
    frame.render_widget(
        Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: false }),
        inner,
    );
}

/// The customer's segment in the compared run, as a note.
fn earlier(app: &App, run: &RunData, id: &str) -> String {
    let Some(base) = app
        .baseline
        .as_ref()
        .filter(|b| b.entry.key != run.entry.key)
    else {
        return String::new();
    };
    match base.customers.iter().find(|c| c.customer_id == id) {
        Some(was) => format!(
            "  · was {} ({}) in {}",
            was.segment.name(),
            was.rfm_score(),
            base.entry.label
        ),
        None => format!("  · not in {}", base.entry.label),
    }
}
