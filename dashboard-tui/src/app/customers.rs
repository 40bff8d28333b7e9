//! The customer table's state: sort, search, segment and movement filters,
//! selection; and the App methods that keep the filtered list up to date.

use std::collections::HashMap;

use rfm_core::Segment;

use super::{App, Status, View};
use crate::analysis;
use crate::data::Customer;

/// Columns the customer table can be sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Id,
    Segment,
    Score,
    Recency,
    Frequency,
    Monetary,
    Country,
}

impl SortKey {
    pub const ALL: [SortKey; 7] = [
        SortKey::Id,
        SortKey::Segment,
        SortKey::Score,
        SortKey::Recency,
        SortKey::Frequency,
        SortKey::Monetary,
        SortKey::Country,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SortKey::Id => "id",
            SortKey::Segment => "segment",
            SortKey::Score => "RFM",
            SortKey::Recency => "recency",
            SortKey::Frequency => "frequency",
            SortKey::Monetary => "monetary",
            SortKey::Country => "country",
        }
    }

    fn next(self) -> SortKey {
        let i = SortKey::ALL.iter().position(|k| *k == self).unwrap_or(0);
        SortKey::ALL[(i + 1) % SortKey::ALL.len()]
    }

    fn compare(self, a: &Customer, b: &Customer) -> std::cmp::Ordering {
        let by = match self {
            SortKey::Id => std::cmp::Ordering::Equal,
            SortKey::Segment => {
                analysis::segment_index(a.segment).cmp(&analysis::segment_index(b.segment))
            }
            SortKey::Score => (a.r, a.f, a.m).cmp(&(b.r, b.f, b.m)),
            SortKey::Recency => a.recency.cmp(&b.recency),
            SortKey::Frequency => a.frequency.cmp(&b.frequency),
            SortKey::Monetary => a.monetary.cmp(&b.monetary),
            SortKey::Country => a.country.cmp(&b.country),
        };
        by.then_with(|| a.customer_id.cmp(&b.customer_id))
    }
}

/// Customers picked by how they moved since the compared run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoveFilter {
    /// Champions in the compared run, in another segment now.
    LeftChampions,
    /// In a dormant segment in the compared run, in an active one now.
    WokeUp,
    /// In an active segment in the compared run, in a dormant one now.
    FellAsleep,
}

impl MoveFilter {
    pub fn name(self) -> &'static str {
        match self {
            MoveFilter::LeftChampions => "left Champions",
            MoveFilter::WokeUp => "woke up",
            MoveFilter::FellAsleep => "fell asleep",
        }
    }

    fn matches(self, was: Segment, now: Segment) -> bool {
        use crate::analysis::{ACTIVE, DORMANT};
        match self {
            MoveFilter::LeftChampions => was == Segment::Champions && now != Segment::Champions,
            MoveFilter::WokeUp => DORMANT.contains(&was) && ACTIVE.contains(&now),
            MoveFilter::FellAsleep => ACTIVE.contains(&was) && DORMANT.contains(&now),
        }
    }
}

/// The customer table: sort, search and selection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomersState {
    pub sort: SortKey,
    pub descending: bool,
    pub query: String,
    /// Typing into the search box.
    pub editing: bool,
    /// Indices into the run's customers, filtered and sorted.
    pub visible: Vec<usize>,
    /// Position in `visible`.
    pub selected: usize,
    /// The detail of the selected customer is open.
    pub detail: bool,
    /// Only customers who moved this way since the compared run.
    pub moved: Option<MoveFilter>,
    /// Only customers of this segment.
    pub segment: Option<Segment>,
}

impl Default for CustomersState {
    fn default() -> Self {
        CustomersState {
            sort: SortKey::Monetary,
            descending: true,
            query: String::new(),
            editing: false,
            visible: Vec::new(),
            selected: 0,
            detail: false,
            moved: None,
            segment: None,
        }
    }
}

impl App {
    /// Recomputes the filtered, sorted customer list after a change of run,
    /// query or sort; keeps the selected customer when it is still listed.
    pub fn refresh_customers(&mut self) {
        let Some(run) = self.current.clone() else {
            self.customers.visible.clear();
            return;
        };
        let keep = self.selected_customer().map(|c| c.customer_id.clone());
        let q = self.customers.query.trim().to_lowercase();
        let earlier: Option<HashMap<&str, Segment>> = match (&self.customers.moved, &self.baseline)
        {
            (Some(_), Some(b)) => Some(
                b.customers
                    .iter()
                    .map(|c| (c.customer_id.as_str(), c.segment))
                    .collect(),
            ),
            _ => None,
        };
        let moved = self.customers.moved;
        let segment = self.customers.segment;
        let query = rfm_runs::Query::lenient(&q);
        let mut visible: Vec<usize> = run
            .customers
            .iter()
            .enumerate()
            .filter(|(_, c)| match (moved, &earlier) {
                (Some(m), Some(e)) => e
                    .get(c.customer_id.as_str())
                    .is_some_and(|was| m.matches(*was, c.segment)),
                (Some(_), None) => false,
                _ => true,
            })
            .filter(|(_, c)| segment.is_none_or(|s| c.segment == s))
            .filter(|(_, c)| query.matches(c))
            .map(|(i, _)| i)
            .collect();
        let key = self.customers.sort;
        let desc = self.customers.descending;
        visible.sort_by(|&a, &b| {
            let o = key.compare(&run.customers[a], &run.customers[b]);
            if desc {
                o.reverse()
            } else {
                o
            }
        });
        // An exact id match goes first, so searching an id finds it at once.
        if !q.is_empty() {
            if let Some(p) = visible
                .iter()
                .position(|&i| run.customers[i].customer_id.to_lowercase() == q)
            {
                let i = visible.remove(p);
                visible.insert(0, i);
            }
        }
        self.customers.visible = visible;
        self.customers.selected = keep
            .and_then(|id| {
                self.customers
                    .visible
                    .iter()
                    .position(|&i| run.customers[i].customer_id == id)
            })
            .unwrap_or(0);
        if !q.is_empty() {
            self.customers.selected = 0;
        }
        if self.customers.visible.is_empty() {
            self.customers.detail = false;
        }
    }

    /// Index of the selected customer in the run's customers.
    pub fn selected_index(&self) -> Option<usize> {
        self.customers.visible.get(self.customers.selected).copied()
    }

    pub fn selected_customer(&self) -> Option<&Customer> {
        let run = self.current.as_ref()?;
        let i = *self.customers.visible.get(self.customers.selected)?;
        run.customers.get(i)
    }

    /// Clears one thing (what Esc does): the search when there is one, else
    /// the segment or movement filter.
    pub fn clear_one_customer_filter(&mut self) {
        if !self.customers.query.is_empty() {
            self.customers.query.clear();
        } else {
            self.customers.moved = None;
            self.customers.segment = None;
        }
        self.refresh_customers();
    }

    /// Shows one segment's customers (the segment under the overview's cursor).
    pub fn show_segment(&mut self) {
        let Some(seg) = self
            .current
            .as_ref()
            .and_then(|r| r.segments.get(self.overview_selected))
            .map(|s| s.segment)
        else {
            return;
        };
        self.customers.query.clear();
        self.customers.moved = None;
        self.customers.segment = Some(seg);
        self.customers.detail = false;
        self.refresh_customers();
        self.set_view(View::Customers);
    }

    /// Shows the customers of the grid cell under the cursor, as a search.
    pub fn show_cell(&mut self) {
        let (r, f) = self.grid_cursor;
        self.customers.query = format!("r={r} f={f}");
        self.customers.moved = None;
        self.customers.segment = None;
        self.customers.detail = false;
        self.refresh_customers();
        self.set_view(View::Customers);
    }

    pub fn move_overview(&mut self, delta: isize) {
        let n = self.current.as_ref().map_or(0, |r| r.segments.len());
        if n > 0 {
            let s = self.overview_selected as isize + delta;
            self.overview_selected = s.clamp(0, n as isize - 1) as usize;
        }
    }

    /// Moves the grid cursor: `dr` along R (up is +1), `df` along F.
    pub fn move_grid(&mut self, dr: i8, df: i8) {
        let (r, f) = self.grid_cursor;
        self.grid_cursor = (
            (r as i8 + dr).clamp(1, 5) as u8,
            (f as i8 + df).clamp(1, 5) as u8,
        );
    }

    /// Shows the customers who moved this way, in the customer table.
    pub fn show_moved(&mut self, filter: MoveFilter) {
        if self.movement.is_none() {
            self.status = Some(Status::Error(
                "no run to compare with: select one in Runs (5) and press c".into(),
            ));
            return;
        }
        self.customers.moved = Some(filter);
        self.customers.segment = None;
        self.customers.query.clear();
        self.customers.detail = false;
        self.refresh_customers();
        self.set_view(View::Customers);
    }

    pub fn cycle_sort(&mut self) {
        self.customers.sort = self.customers.sort.next();
        self.customers.descending = !matches!(
            self.customers.sort,
            SortKey::Id | SortKey::Segment | SortKey::Country
        );
        self.refresh_customers();
    }

    pub fn reverse_sort(&mut self) {
        self.customers.descending = !self.customers.descending;
        self.refresh_customers();
    }

    /// Moves the customer selection by `delta` rows, clamped.
    pub fn move_customer(&mut self, delta: isize) {
        let n = self.customers.visible.len();
        if n == 0 {
            return;
        }
        let s = self.customers.selected as isize + delta;
        self.customers.selected = s.clamp(0, n as isize - 1) as usize;
    }
}
