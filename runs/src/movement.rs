//! Segment movement between two runs, the same computation for every
//! source: customers joined on id, counted and their revenue summed exactly
//! per (segment in the first run, segment in the second run). Revenue is
//! each customer's monetary as published (2 decimals, what `customers.csv`
//! and the database's views hold), summed in [`Money`] and rounded only when
//! shown.

use std::collections::{BTreeMap, HashMap};

use rfm_core::money::Money;
use rfm_core::Segment;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::error::{Error, Result};
use crate::model::Customer;

/// Customers moving from one segment to another between two runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    /// Segment in the first run; `None` for customers new in the second.
    pub from: Option<Segment>,
    /// Segment in the second run; `None` for customers absent from it.
    pub to: Option<Segment>,
    pub customers: u64,
    /// Their revenue in the first run (exact).
    pub revenue_from: Money,
    /// Their revenue in the second run (exact).
    pub revenue_to: Money,
}

impl Serialize for Move {
    /// Segment names (or null) and revenue with 2 decimals.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Move", 5)?;
        st.serialize_field("from", &self.from.map(Segment::name))?;
        st.serialize_field("to", &self.to.map(Segment::name))?;
        st.serialize_field("customers", &self.customers)?;
        st.serialize_field("revenue_from", &self.revenue_from.to_fixed(2))?;
        st.serialize_field("revenue_to", &self.revenue_to.to_fixed(2))?;
        st.end()
    }
}

/// The movement from run `a`'s customers to run `b`'s, ordered by `from`
/// then `to` (absent first, then segment names in byte order).
pub fn movement(a: &[Customer], b: &[Customer]) -> Result<Vec<Move>> {
    type Key = (Option<&'static str>, Option<&'static str>);
    let in_b: HashMap<&str, &Customer> = b.iter().map(|c| (c.customer_id.as_str(), c)).collect();
    let in_a: HashMap<&str, &Customer> = a.iter().map(|c| (c.customer_id.as_str(), c)).collect();
    let mut groups: BTreeMap<Key, Move> = BTreeMap::new();
    let mut add = |from: Option<&Customer>, to: Option<&Customer>| -> Result<()> {
        let (sa, sb) = (from.map(|c| c.segment), to.map(|c| c.segment));
        let g = groups
            .entry((sa.map(Segment::name), sb.map(Segment::name)))
            .or_insert_with(|| Move {
                from: sa,
                to: sb,
                customers: 0,
                revenue_from: Money::ZERO,
                revenue_to: Money::ZERO,
            });
        g.customers += 1;
        let overflow = || Error::Overflow {
            what: format!(
                "the revenue of the customers moving from {} to {}",
                sa.map_or("(new)", Segment::name),
                sb.map_or("(gone)", Segment::name)
            ),
        };
        g.revenue_from = g
            .revenue_from
            .checked_add(from.map_or(Money::ZERO, |c| c.monetary))
            .ok_or_else(overflow)?;
        g.revenue_to = g
            .revenue_to
            .checked_add(to.map_or(Money::ZERO, |c| c.monetary))
            .ok_or_else(overflow)?;
        Ok(())
    };
    for c in a {
        add(Some(c), in_b.get(c.customer_id.as_str()).copied())?;
    }
    for d in b
        .iter()
        .filter(|d| !in_a.contains_key(d.customer_id.as_str()))
    {
        add(None, Some(d))?;
    }
    Ok(groups.into_values().collect())
}
