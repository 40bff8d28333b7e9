//! The help overlay: every key, by view.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::theme::Theme;

const KEYS: [(&str, &str); 21] = [
    (
        "1–6, Tab",
        "switch view: Overview … Runs (1–5), Live (6 or 1 alone)",
    ),
    (
        "/",
        "search: id, segment, country, 555, r=5 f>=4 monetary>1000",
    ),
    ("?", "this help (any key closes it)"),
    ("q, Ctrl-C", "quit"),
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
        "move;  g/G: first/last;  Enter: detail;  Esc: close",
    ),
    ("  s  r", "next sort column;  reverse order"),
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
