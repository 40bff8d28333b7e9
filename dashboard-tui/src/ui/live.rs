//! The Live view: the coordinator's jobs (stage, tasks, bytes and lines
//! processed, retries, the memory a finished one's result holds) and its
//! workers, stale ones marked with `!` and the error style so they stand
//! out without colour too.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::theme::Theme;
use crate::app::LiveState;
use crate::format;
use crate::live::{JobRow, STALE_SECONDS};

pub fn draw(frame: &mut Frame, live: &LiveState, theme: Theme, area: Rect) {
    let Some(snapshot) = &live.snapshot else {
        let text = match &live.lost {
            Some(e) => format!("Coordinator {} not reached yet: {e}", live.url),
            None => format!("Connecting to the coordinator at {}…", live.url),
        };
        let p = Paragraph::new(text)
            .style(theme.dim())
            .wrap(ratatui::widgets::Wrap { trim: true })
            .block(Block::default().borders(Borders::ALL).title(" Live "));
        frame.render_widget(p, area);
        return;
    };
    let job_rows = snapshot.jobs.len().max(1) as u16 + 3;
    let [jobs_area, workers_area] =
        Layout::vertical([Constraint::Max(job_rows), Constraint::Min(4)]).areas(area);
    let suffix = if live.lost.is_some() {
        " (last seen; coordinator lost)"
    } else {
        ""
    };

    let header = header_row(
        &["job", "state"],
        &["tasks", "bytes", "lines", "retries", "secs", "result"],
    )
    .style(theme.header());
    let rows: Vec<Row> = snapshot.jobs.iter().map(|j| job_row(j, theme)).collect();
    let jobs = Table::new(
        rows,
        [
            Constraint::Min(12),
            Constraint::Length(9),
            Constraint::Length(11),
            Constraint::Length(13),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(6),
        ],
    )
    .header(header)
    .block(Block::default().borders(Borders::ALL).title(Span::styled(
        format!(" Jobs ({}){suffix} ", snapshot.jobs.len()),
        theme.title(),
    )));
    frame.render_widget(jobs, jobs_area);

    let stale = snapshot.workers.iter().filter(|w| w.stale()).count();
    let header = header_row(
        &["", "worker", "address", "state"],
        &["running", "slots", "heartbeat"],
    )
    .style(theme.header());
    let rows: Vec<Row> = snapshot
        .workers
        .iter()
        .map(|w| {
            let row = Row::new(vec![
                Cell::from(if w.stale() { "!" } else { " " }),
                Cell::from(w.id.clone()),
                Cell::from(w.address.clone()),
                Cell::from(w.state.clone()),
                Cell::from(Line::from(w.running_tasks.to_string()).right_aligned()),
                Cell::from(Line::from(w.slots.to_string()).right_aligned()),
                Cell::from(
                    Line::from(format!("{:.1} s ago", w.seconds_since_heartbeat)).right_aligned(),
                ),
            ]);
            if w.stale() {
                row.style(theme.error())
            } else {
                row
            }
        })
        .collect();
    let title = if stale > 0 {
        format!(
            " Workers ({}, {stale} stale: ! = no heartbeat for over {STALE_SECONDS:.0} s){suffix} ",
            snapshot.workers.len()
        )
    } else {
        format!(" Workers ({}){suffix} ", snapshot.workers.len())
    };
    let workers = Table::new(
        rows,
        [
            Constraint::Length(1),
            Constraint::Length(8),
            Constraint::Min(16),
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(5),
            Constraint::Length(11),
        ],
    )
    .header(header)
    .block(
        Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(title, theme.title())),
    );
    if snapshot.workers.is_empty() {
        let p = Paragraph::new("No worker has registered.")
            .style(theme.dim())
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" Workers (0) "),
            );
        frame.render_widget(p, workers_area);
    } else {
        frame.render_widget(workers, workers_area);
    }
}

/// A header row: `left` titles, then right-aligned ones over figures.
fn header_row(left: &[&'static str], right: &[&'static str]) -> Row<'static> {
    let cells = left.iter().map(|t| Cell::from(*t)).chain(
        right
            .iter()
            .map(|t| Cell::from(Line::from(*t).right_aligned())),
    );
    Row::new(cells.collect::<Vec<_>>())
}

fn job_row(j: &JobRow, theme: Theme) -> Row<'static> {
    let bytes = format!(
        "{}/{}",
        format::short(j.bytes_done as f64),
        format::short(j.bytes_total as f64)
    );
    let row = Row::new(vec![
        Cell::from(j.id.clone()),
        Cell::from(j.stage.clone()),
        Cell::from(Line::from(format!("{}/{}", j.tasks_done, j.tasks_total)).right_aligned()),
        Cell::from(Line::from(bytes).right_aligned()),
        Cell::from(Line::from(format::short(j.lines_done as f64)).right_aligned()),
        Cell::from(Line::from(j.retries.to_string()).right_aligned()),
        Cell::from(Line::from(format!("{:.0}", j.seconds)).right_aligned()),
        Cell::from(Line::from(result_size(j.result_bytes)).right_aligned()),
    ]);
    if !j.error.is_empty() {
        row.style(theme.error())
    } else {
        row
    }
}

/// The memory a finished job's result holds (`-` while it runs), short:
/// `4.7M` for 4.7 million bytes, as the view's other sizes.
fn result_size(bytes: u64) -> String {
    match bytes {
        0 => "-".into(),
        bytes => format::short(bytes as f64),
    }
}
