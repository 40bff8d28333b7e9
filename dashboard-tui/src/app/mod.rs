//! The dashboard's state: which view is shown, what is loaded, selections,
//! search and sort. Pure data and methods, no terminal, so it is testable
//! directly; key handling lives in [`crate::events`], drawing in [`crate::ui`].

use std::sync::Arc;

use rfm_core::Segment;

use crate::analysis::{self, Metric, Movement};
use crate::data::{RunData, RunEntry};
use crate::live::{LiveSnapshot, LiveUpdate};
use crate::source::Listing;

mod customers;
pub use customers::{CustomersState, MoveFilter, SortKey};

/// The views, in tab order (number keys 1–5, then 6 for Live when a
/// coordinator is watched).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Overview,
    Grid,
    Distributions,
    Customers,
    Runs,
    /// The live coordinator's jobs and workers.
    Live,
}

impl View {
    /// The views of runs (every view but [`View::Live`]).
    pub const ALL: [View; 5] = [
        View::Overview,
        View::Grid,
        View::Distributions,
        View::Customers,
        View::Runs,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Grid => "R×F grid",
            View::Distributions => "Distributions",
            View::Customers => "Customers",
            View::Runs => "Runs",
            View::Live => "Live",
        }
    }

    pub fn index(self) -> usize {
        View::ALL
            .iter()
            .position(|v| *v == self)
            .unwrap_or(View::ALL.len())
    }
}

/// Which figure a grid or movement matrix shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    Customers,
    Revenue,
}

impl Measure {
    pub fn toggled(self) -> Measure {
        match self {
            Measure::Customers => Measure::Revenue,
            Measure::Revenue => Measure::Customers,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Measure::Customers => "customers",
            Measure::Revenue => "revenue",
        }
    }
}

/// What the upper panel of the overview shows when the screen is too small
/// for both the segment table and the bar charts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverviewPanel {
    Table,
    Bars,
}

/// The distributions view's choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DistState {
    pub metric: Metric,
    /// `None`: all customers.
    pub segment: Option<Segment>,
    /// `None`: the metric's default scale.
    pub log: Option<bool>,
}

impl DistState {
    pub fn log(&self) -> bool {
        self.log.unwrap_or(self.metric.log_by_default())
    }
}

/// Which loaded run a load fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The run the views show.
    Current,
    /// The run movement is measured from.
    Baseline,
}

/// Work for the loader thread.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    ListRuns,
    LoadRun { entry: Box<RunEntry>, role: Role },
}

/// What the loader thread sends back.
#[derive(Debug)]
pub enum Loaded {
    Runs(Result<Listing, String>),
    Run {
        role: Role,
        key: String,
        result: Result<Arc<RunData>, String>,
    },
    /// The source lost its connection; the loader retries the command
    /// (`retry 2 in 2 s: <the error, naming the server>`).
    Retrying {
        message: String,
    },
}

/// A message for the status line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Info(String),
    Error(String),
}

/// The live coordinator as last polled.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveState {
    /// The coordinator's URL.
    pub url: String,
    /// The last snapshot received (kept while the coordinator is lost).
    pub snapshot: Option<LiveSnapshot>,
    /// Why the last poll failed; cleared by the next snapshot.
    pub lost: Option<String>,
    /// Polls that failed in a row.
    pub failures: u32,
}

/// The whole state of the dashboard.
#[derive(Debug)]
pub struct App {
    pub source: String,
    pub color: bool,
    pub view: View,
    pub show_help: bool,
    pub should_quit: bool,
    pub runs: Vec<RunEntry>,
    pub runs_selected: usize,
    pub current: Option<Arc<RunData>>,
    pub baseline: Option<Arc<RunData>>,
    pub movement: Option<Movement>,
    /// What is being loaded, shown in the status line.
    pub loading: Vec<String>,
    /// The source's lost connection while the loader retries (status line).
    pub connection_lost: Option<String>,
    pub status: Option<Status>,
    pub overview_panel: OverviewPanel,
    pub grid_measure: Measure,
    /// (R, F) of the grid cell under the cursor.
    pub grid_cursor: (u8, u8),
    /// Row of the overview's segment table under the cursor.
    pub overview_selected: usize,
    pub movement_measure: Measure,
    pub dist: DistState,
    pub customers: CustomersState,
    /// The live coordinator, when one is watched.
    pub live: Option<LiveState>,
    /// Only the Live view: no runs source.
    pub live_only: bool,
}

impl App {
    pub fn new(source: String, color: bool) -> App {
        App {
            source,
            color,
            view: View::Overview,
            show_help: false,
            should_quit: false,
            runs: Vec::new(),
            runs_selected: 0,
            current: None,
            baseline: None,
            movement: None,
            loading: Vec::new(),
            connection_lost: None,
            status: None,
            overview_panel: OverviewPanel::Table,
            grid_measure: Measure::Customers,
            grid_cursor: (5, 5),
            overview_selected: 0,
            movement_measure: Measure::Customers,
            dist: DistState {
                metric: Metric::Recency,
                segment: None,
                log: None,
            },
            customers: CustomersState::default(),
            live: None,
            live_only: false,
        }
    }

    /// A dashboard watching the coordinator at `url`: an extra Live tab, or
    /// (`only`) the Live view alone when there is no runs source.
    pub fn watch_coordinator(&mut self, url: String, only: bool) {
        self.live = Some(LiveState {
            url,
            ..LiveState::default()
        });
        self.live_only = only;
        if only {
            self.view = View::Live;
        }
    }

    /// The views of the tab bar, in order.
    pub fn views(&self) -> Vec<View> {
        if self.live_only {
            return vec![View::Live];
        }
        let mut views = View::ALL.to_vec();
        if self.live.is_some() {
            views.push(View::Live);
        }
        views
    }

    /// Takes in a poll of the live coordinator.
    pub fn apply_live(&mut self, update: LiveUpdate) {
        let Some(live) = &mut self.live else { return };
        match update {
            LiveUpdate::Snapshot(snapshot) => {
                live.snapshot = Some(snapshot);
                live.lost = None;
                live.failures = 0;
            }
            LiveUpdate::Lost(message) => {
                live.lost = Some(message);
                live.failures += 1;
            }
        }
    }

    /// The first work to do: list the runs (nothing with the Live view alone).
    pub fn start(&mut self) -> Vec<Command> {
        if self.live_only {
            return Vec::new();
        }
        self.loading.push(format!("listing runs ({})", self.source));
        vec![Command::ListRuns]
    }

    /// A command to load a run, noting it in the status line.
    pub fn load(&mut self, entry: &RunEntry, role: Role) -> Command {
        let what = match role {
            Role::Current => "loading run",
            Role::Baseline => "loading run to compare with",
        };
        self.loading.push(format!("{what} {}", entry.label));
        Command::LoadRun {
            entry: Box::new(entry.clone()),
            role,
        }
    }

    /// Takes in a loader result; returns follow-up work.
    pub fn apply(&mut self, loaded: Loaded) -> Vec<Command> {
        if !matches!(loaded, Loaded::Retrying { .. }) {
            self.connection_lost = None;
        }
        match loaded {
            Loaded::Retrying { message } => {
                self.connection_lost = Some(message);
                Vec::new()
            }
            Loaded::Runs(result) => {
                self.loading.retain(|l| !l.starts_with("listing runs"));
                match result {
                    Ok(listing) => {
                        self.runs = listing.runs;
                        // Shown and compared: the two latest runs with
                        // results (a failed run has none to compare).
                        let with_results: Vec<usize> = self
                            .runs
                            .iter()
                            .enumerate()
                            .filter(|(_, r)| r.status.has_results())
                            .map(|(i, _)| i)
                            .collect();
                        let current = with_results.first().copied().unwrap_or(0);
                        self.runs_selected = current;
                        if let Some(first) = listing.skipped.first() {
                            self.status = Some(Status::Error(format!(
                                "{} run folder(s) skipped: {first}",
                                listing.skipped.len()
                            )));
                        }
                        let mut work = Vec::new();
                        if let Some(newest) = self.runs.get(current).cloned() {
                            work.push(self.load(&newest, Role::Current));
                        }
                        let previous = with_results.get(1).and_then(|&i| self.runs.get(i));
                        if let Some(previous) = previous.cloned() {
                            work.push(self.load(&previous, Role::Baseline));
                        }
                        work
                    }
                    Err(e) => {
                        self.status = Some(Status::Error(e));
                        Vec::new()
                    }
                }
            }
            Loaded::Run { role, key, result } => {
                let label = self
                    .runs
                    .iter()
                    .find(|r| r.key == key)
                    .map(|r| r.label.clone())
                    .unwrap_or(key);
                if let Some(i) = self.loading.iter().position(|l| l.ends_with(&label)) {
                    self.loading.remove(i);
                }
                match result {
                    Ok(run) => {
                        match role {
                            Role::Current => {
                                let shown = format!(
                                    "{}: {} customers, as-of {}",
                                    run.entry.label,
                                    crate::format::count(run.customers.len() as u64),
                                    run.entry.report.as_of.as_deref().unwrap_or("?")
                                );
                                self.info(self.newer_without_results().unwrap_or(shown));
                                self.current = Some(run);
                                self.customers.selected = 0;
                                self.customers.detail = false;
                                self.refresh_customers();
                            }
                            Role::Baseline => {
                                self.baseline = Some(run);
                                if self.customers.moved.is_some() {
                                    self.refresh_customers();
                                }
                            }
                        }
                        self.refresh_movement();
                    }
                    Err(e) => self.status = Some(Status::Error(e)),
                }
                Vec::new()
            }
        }
    }

    fn refresh_movement(&mut self) {
        self.movement = match (&self.baseline, &self.current) {
            (Some(from), Some(to)) if from.entry.key != to.entry.key => {
                analysis::movement(from, to)
            }
            _ => None,
        };
    }

    /// Shows an informational message, unless an error is waiting to be seen.
    /// A newer run than the one shown that has no results (failed or
    /// abandoned): said in the status line, never compared.
    fn newer_without_results(&self) -> Option<String> {
        let newest = self.runs.first()?;
        if newest.status.has_results() {
            return None;
        }
        Some(format!(
            "newest run {} {}: {} (shown: the latest with results; 5: Runs)",
            rfm_core::text::escape_controls(&newest.label),
            newest.report.status,
            rfm_core::text::escape_controls(newest.report.error.as_deref().unwrap_or("no results"))
        ))
    }

    fn info(&mut self, message: String) {
        if !matches!(self.status, Some(Status::Error(_))) {
            self.status = Some(Status::Info(message));
        }
    }

    pub fn set_view(&mut self, view: View) {
        self.view = view;
        self.show_help = false;
    }

    pub fn move_run(&mut self, delta: isize) {
        let n = self.runs.len();
        if n == 0 {
            return;
        }
        let s = self.runs_selected as isize + delta;
        self.runs_selected = s.clamp(0, n as isize - 1) as usize;
    }

    /// Cycles the distribution's segment: all, then each segment present.
    pub fn cycle_dist_segment(&mut self, forward: bool) {
        let options: Vec<Option<Segment>> = std::iter::once(None)
            .chain(
                self.current
                    .iter()
                    .flat_map(|r| r.segments.iter().map(|s| Some(s.segment))),
            )
            .collect();
        let i = options
            .iter()
            .position(|o| *o == self.dist.segment)
            .unwrap_or(0);
        let n = options.len();
        let j = if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        };
        self.dist.segment = options[j];
    }

    pub fn cycle_metric(&mut self, forward: bool) {
        let i = Metric::ALL
            .iter()
            .position(|m| *m == self.dist.metric)
            .unwrap_or(0);
        let j = if forward { (i + 1) % 3 } else { (i + 2) % 3 };
        self.dist.metric = Metric::ALL[j];
        self.dist.log = None;
    }
}
