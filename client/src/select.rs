//! Which customers `rfm customers` and `rfm export` take: `--segment` and
//! `--where` (the query language of [`rfm_runs::query`], the dashboard's
//! search), both must match. A bad segment name or query term is a usage
//! error naming it.

use anyhow::Result;
use rfm_core::Segment;
use rfm_runs::{Customer, Query};

use crate::cli::SelectArgs;
use crate::exit::UsageError;

/// A parsed selection.
pub struct Selection {
    segment: Option<Segment>,
    query: Query,
}

impl Selection {
    pub fn of(args: &SelectArgs) -> Result<Selection> {
        let segment = args.segment.as_deref().map(segment_named).transpose()?;
        let query = match args.query.as_deref() {
            Some(text) => Query::parse(text)
                .map_err(|e| UsageError(format!("invalid option --where: {e}")))?,
            None => Query::default(),
        };
        Ok(Selection { segment, query })
    }

    /// Whether nothing is filtered.
    pub fn is_all(&self) -> bool {
        self.segment.is_none() && self.query.is_empty()
    }

    pub fn matches(&self, c: &Customer) -> bool {
        self.segment.is_none_or(|s| c.segment == s) && self.query.matches(c)
    }
}

fn segment_named(name: &str) -> Result<Segment> {
    Segment::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Segment::ALL.iter().map(|s| s.name()).collect();
        UsageError(format!(
            "invalid option --segment: {name:?} is not a segment; choose one of {}",
            names.join(", ")
        ))
        .into()
    })
}
