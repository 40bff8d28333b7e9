//! The help overlay: every key, by view, in 22 rows: it fits the body of
//! an 80×24 terminal (between the tabs and the status line).

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::theme::Theme;

const KEYS: [(&str, &str); 20] = [
    (
        "1–6, Tab",
        "switch view: Overview … Runs (1–5), Live (6 or 1 alone)",
    ),
    (
        "/",
        "search: id, segment, country, 555, r=5 f>=4 monetary>1000",
    ),
    ("? / q, Ctrl-C", "this help (any key closes it) / quit"),
    ("Overview", ""),
    ("  b", "segment table / bar charts (small screens)"),
    (
        "  ↑↓ Enter",
        "the customers of the segment under the cursor",
    ),
    ("R×F grid", ""),
    ("  v", "customers / revenue per cell"),
    ("  hjkl Enter", "move over the cells;  the cell's customers"),
    ("Distributions", ""),
    ("  h l ← →", "metric: recency, frequency, monetary"),
    (
        "  j k ↑ ↓",
        "all customers or one segment;  g: log / linear bins",
    ),
    ("Customers", ""),
    (
        "  ↑↓ jk PgUp PgDn",
        "move;  g/G: first/last;  Enter: detail (Esc closes)",
    ),
    (
        "  s  r  Esc",
        "next sort;  reverse;  clear the search, then the filter",
    ),
    ("Runs", ""),
    (
        "  ↑↓  Enter  c",
        "select a run;  open it;  compare it with the open run",
    ),
    ("  R", "reload the history (new runs), open the newest"),
    ("  v", "movement in customers / revenue at stake"),
    ("  L  W  F", "list who left Champions, woke up, fell asleep"),
];

pub fn draw(frame: &mut Frame, theme: Theme, area: Rect) {
    let rect = super::centered(area, 78, KEYS.len() as u16 + 2);
    let inner = super::popup(frame, rect, " Keys ".into(), theme);
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, what)| {
            if what.is_empty() {
                Line::from(Span::styled(*k, theme.title()))
            } else {
                Line::from(vec![
                    Span::styled(format!("{k:<18}"), theme.header()),
                    Span::raw(*what),
                ])
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}
