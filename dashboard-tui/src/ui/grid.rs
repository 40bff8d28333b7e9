//! The R × F grid: a 5 × 5 heatmap of customers (or revenue) per recency and
//! frequency score, each cell named by the segment it belongs to.

use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;
use rfm_core::money::Money;
use rfm_core::Segment;

use super::theme::Theme;
use crate::app::{App, Measure};
use crate::data::RunData;
use crate::format;

/// Short names for narrow cells.
fn short_name(s: Segment, width: usize) -> String {
    if s.name().chars().count() <= width {
        return s.name().to_string();
    }
    let short = match s {
        Segment::LoyalCustomers => "Loyal",
        Segment::PotentialLoyalists => "Potential L.",
        Segment::NewCustomers => "New",
        Segment::NeedAttention => "Need Attn.",
        Segment::AboutToSleep => "Abt. to Sleep",
        Segment::CantLoseThem => "Can't Lose",
        _ => s.name(),
    };
    format::fit(short, width)
}

pub fn draw(frame: &mut Frame, app: &App, run: &RunData, theme: Theme, area: Rect) {
    let measure = app.grid_measure;
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(
            format!(
                " R × F grid: {} per cell · R recency, F frequency score ",
                measure.name()
            ),
            theme.title(),
        ))
        .title_bottom(
            Line::from(format!(
                " v: show {} · arrows, Enter: list a cell's customers ",
                measure.toggled().name()
            ))
            .right_aligned(),
        );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.width < 20 || inner.height < 7 {
        return;
    }
    let label_w: u16 = 4;
    let cell_w = (inner.width - label_w) / 5;
    let cell_h = ((inner.height - 1) / 5).max(1);
    // Column header.
    for f in 1..=5u16 {
        let x = inner.x + label_w + (f - 1) * cell_w;
        let rect = Rect::new(x, inner.y, cell_w, 1);
        frame.render_widget(
            Paragraph::new(format!("F {f}"))
                .alignment(Alignment::Center)
                .style(theme.header()),
            rect,
        );
    }
    let grid = &run.grid;
    let total_customers: u64 = grid.customers.iter().flatten().sum();
    let total_revenue = run.total_revenue.0;
    let max = match measure {
        Measure::Customers => grid.customers.iter().flatten().copied().max().unwrap_or(1) as f64,
        Measure::Revenue => grid
            .revenue
            .iter()
            .flatten()
            .map(|m| m.0 as f64)
            .fold(0.0, f64::max),
    }
    .max(1.0);
    for (row, r) in (1..=5u8).rev().enumerate() {
        let y = inner.y + 1 + row as u16 * cell_h;
        // The label sits on the line of the segment names.
        let pad = (cell_h as usize).saturating_sub(3) / 2;
        let label = Rect::new(inner.x, y + pad as u16, label_w, 1);
        frame.render_widget(
            Paragraph::new(format!("R {r}")).style(theme.header()),
            label.intersection(inner),
        );
        for f in 1..=5u8 {
            let (ri, fi) = (r as usize - 1, f as usize - 1);
            let count = grid.customers[ri][fi];
            let revenue: Money = grid.revenue[ri][fi];
            let (value, fraction, share) = match measure {
                Measure::Customers => (
                    format::count(count),
                    count as f64 / max,
                    format::ratio_percent(count as i128, total_customers as i128),
                ),
                Measure::Revenue => {
                    let exact = format::money(revenue);
                    let text = if exact.chars().count() < cell_w as usize {
                        exact
                    } else {
                        format::money_short(revenue)
                    };
                    (
                        text,
                        revenue.0 as f64 / max,
                        format::ratio_percent(revenue.0, total_revenue),
                    )
                }
            };
            let seg = Segment::of(r, f);
            let x = inner.x + label_w + (f as u16 - 1) * cell_w;
            let rect = Rect::new(x, y, cell_w, cell_h);
            let inner_w = cell_w.saturating_sub(1) as usize;
            let mut lines = vec![
                Line::from(Span::styled(
                    short_name(seg, inner_w),
                    if theme.color {
                        theme.heat(fraction)
                    } else {
                        theme.segment(seg)
                    },
                )),
                Line::from(value),
                Line::from(share),
            ];
            lines.truncate(cell_h as usize);
            for _ in 0..pad {
                lines.insert(0, Line::from(""));
            }
            let style = if app.grid_cursor == (r, f) {
                theme.selected()
            } else {
                theme.heat(fraction)
            };
            let p = Paragraph::new(lines)
                .alignment(Alignment::Center)
                .style(style);
            frame.render_widget(
                p,
                Rect::new(rect.x, rect.y, rect.width.saturating_sub(1), rect.height),
            );
        }
    }
}
