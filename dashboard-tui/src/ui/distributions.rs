//! Distributions: a histogram of recency, frequency or monetary, over all
//! customers or one segment, on a linear or logarithmic scale.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;
use rfm_core::money::{self, Money};

use super::theme::Theme;
use crate::analysis::{self, Bin, Metric};
use crate::app::App;
use crate::data::{Customer, RunData};
use crate::format;

const LABEL_WIDTH: usize = 21;
const COUNT_WIDTH: usize = 8;

fn bin_label(metric: Metric, bin: &Bin, last: bool) -> String {
    match metric {
        // Half-open bins, the last one closed: [122, 156) … [1.2k, 4.3k].
        Metric::Monetary => format!(
            "[{}, {}{}",
            format::short(bin.lo),
            format::short(bin.hi),
            if last { "]" } else { ")" }
        ),
        _ => {
            let lo = bin.lo as i64;
            let hi = bin.hi as i64 - 1;
            if hi <= lo {
                format!("{lo}")
            } else {
                format!("{lo} – {hi}")
            }
        }
    }
}

/// min, median, mean and max of the metric over the chosen customers, exact.
fn summary(metric: Metric, customers: &[&Customer]) -> String {
    let n = customers.len();
    if n == 0 {
        return "no customers".into();
    }
    match metric {
        Metric::Monetary => {
            let mut v: Vec<Money> = customers.iter().map(|c| c.monetary).collect();
            v.sort_unstable();
            let sum: i128 = v.iter().map(|m| m.0).sum();
            format!(
                "min {} · median {} · mean {} · max {}",
                format::money(v[0]),
                format::money(v[(n - 1) / 2]),
                format::group(&money::div_round(sum, n as i128 * money::ONE, 2)),
                format::money(v[n - 1])
            )
        }
        _ => {
            let mut v: Vec<i128> = customers
                .iter()
                .map(|c| match metric {
                    Metric::Recency => c.recency as i128,
                    _ => c.frequency as i128,
                })
                .collect();
            v.sort_unstable();
            let sum: i128 = v.iter().sum();
            format!(
                "min {} · median {} · mean {} · max {}",
                v[0],
                v[(n - 1) / 2],
                money::div_round(sum, n as i128, 2),
                v[n - 1]
            )
        }
    }
}

pub fn draw(frame: &mut Frame, app: &App, run: &RunData, theme: Theme, area: Rect) {
    let dist = app.dist;
    let log = dist.log();
    let who = match dist.segment {
        Some(s) => s.name().to_string(),
        None => "all customers".to_string(),
    };
    let chosen: Vec<&Customer> = run
        .customers
        .iter()
        .filter(|c| dist.segment.is_none_or(|s| c.segment == s))
        .collect();
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(
            format!(
                " {} · {} ({}) · {} bins ",
                dist.metric.name(),
                who,
                format::count(chosen.len() as u64),
                if log { "log" } else { "linear" }
            ),
            theme.title(),
        ))
        .title_bottom(Line::from(" h/l: metric · j/k: segment · g: log/linear ").right_aligned());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height < 3 {
        return;
    }
    let bins = (inner.height as usize - 2).clamp(1, 30);
    let hist = analysis::metric_histogram(run, dist.metric, dist.segment, bins, log);
    let max = hist.iter().map(|b| b.count).max().unwrap_or(1).max(1);
    let bar_width = (inner.width as usize).saturating_sub(LABEL_WIDTH + COUNT_WIDTH + 2);
    let mut lines = vec![
        Line::from(summary(dist.metric, &chosen)).style(theme.emphasis()),
        Line::from(vec![
            Span::styled(format!("{:<LABEL_WIDTH$} ", "range"), theme.header()),
            Span::styled(format!("{:<bar_width$} ", "customers"), theme.header()),
        ]),
    ];
    let style = match dist.segment {
        Some(s) => theme.segment(s),
        None => theme.info(),
    };
    let n = hist.len();
    for (i, b) in hist.iter().enumerate() {
        lines.push(Line::from(vec![
            Span::raw(format!(
                "{:<LABEL_WIDTH$} ",
                format::fit(&bin_label(dist.metric, b, i + 1 == n), LABEL_WIDTH)
            )),
            Span::styled(
                format!(
                    "{:<bar_width$} ",
                    format::bar(b.count as f64 / max as f64, bar_width)
                ),
                style,
            ),
            Span::raw(format!("{:>COUNT_WIDTH$}", format::count(b.count))),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_bins_are_intervals_with_both_brackets() {
        let bin = |lo, hi| Bin { lo, hi, count: 1 };
        assert_eq!(
            bin_label(Metric::Monetary, &bin(122.0, 156.0), false),
            "[122, 156)"
        );
        assert_eq!(
            bin_label(Metric::Monetary, &bin(1200.0, 4300.0), true),
            "[1.2k, 4.3k]"
        );
        assert_eq!(bin_label(Metric::Recency, &bin(1.0, 14.0), false), "1 – 13");
        assert_eq!(bin_label(Metric::Frequency, &bin(3.0, 4.0), false), "3");
    }
}
