//! The customers a request selects: filters (`q` searches ids, `where` is a
//! query in the selection language of `rfm customers --where` and the
//! terminal dashboard's search ([`rfm_runs::query`]), `segment`, `country`,
//! `r`/`f`/`m` scores), one sort column (`sort=monetary`, `-` in
//! front for descending; ties by customer id, so every order is total and
//! the same every time) and a page (`page` from 1, `size` up to
//! [`MAX_SIZE`]). Each column's order is computed once per run
//! ([`crate::data::Loaded::order`]); a page is one walk along it.

use std::cmp::Ordering;

use rfm_core::Segment;
use rfm_runs::query::Query;
use rfm_runs::Customer;

use crate::params::Params;

/// Customers per page unless `size` says otherwise.
pub const DEFAULT_SIZE: usize = 50;
/// The largest page.
pub const MAX_SIZE: usize = 1000;

/// The sortable columns, as named in `sort=` and in the JSON.
pub const COLUMNS: [&str; 11] = [
    "customer_id",
    "recency",
    "frequency",
    "monetary",
    "first_purchase",
    "last_purchase",
    "country",
    "r",
    "f",
    "m",
    "segment",
];

/// A parameter that cannot be used: 400, with this message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadParam(pub String);

/// What a request asks of the customers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    /// Lower-case text the customer id must contain.
    pub q: Option<String>,
    /// A query of the selection language, as given and parsed.
    pub query: Option<(String, Query)>,
    pub segment: Option<Segment>,
    /// Exact country.
    pub country: Option<String>,
    pub r: Option<u8>,
    pub f: Option<u8>,
    pub m: Option<u8>,
    /// Index in [`COLUMNS`], and descending.
    pub sort: (usize, bool),
    /// From 1.
    pub page: usize,
    pub size: usize,
}

fn score(p: &Params, key: &str) -> Result<Option<u8>, BadParam> {
    p.get(key)
        .map(|v| match v.parse::<u8>() {
            Ok(s @ 1..=5) => Ok(s),
            _ => Err(BadParam(format!("{key}={v:?}: a score is 1 to 5"))),
        })
        .transpose()
}

fn whole(p: &Params, key: &str, default: usize, max: usize) -> Result<usize, BadParam> {
    match p.get(key) {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(BadParam(format!(
                "{key}={v:?}: expected a whole number from 1 to {max}"
            ))),
        },
    }
}

impl Selection {
    pub fn parse(p: &Params) -> Result<Selection, BadParam> {
        let segment = p
            .get("segment")
            .map(|s| {
                Segment::from_name(s).ok_or_else(|| {
                    BadParam(format!(
                        "segment={s:?} is not a segment; the segments are {}",
                        Segment::ALL.map(Segment::name).join(", ")
                    ))
                })
            })
            .transpose()?;
        let sort = match p.get("sort") {
            None => (0, false),
            Some(s) => {
                let (name, desc) = match s.strip_prefix('-') {
                    Some(n) => (n, true),
                    None => (s, false),
                };
                let i = COLUMNS.iter().position(|c| *c == name).ok_or_else(|| {
                    BadParam(format!(
                        "sort={s:?}: sort by one of {} (a leading - sorts descending)",
                        COLUMNS.join(", ")
                    ))
                })?;
                (i, desc)
            }
        };
        let query = p
            .get("where")
            .filter(|w| !w.trim().is_empty())
            .map(|w| {
                Query::parse(w)
                    .map(|q| (w.to_string(), q))
                    .map_err(|e| BadParam(format!("where={w:?}: {e}")))
            })
            .transpose()?;
        Ok(Selection {
            q: p.get("q").map(str::to_lowercase),
            query,
            segment,
            country: p.get("country").map(str::to_string),
            r: score(p, "r")?,
            f: score(p, "f")?,
            m: score(p, "m")?,
            sort,
            page: whole(p, "page", 1, usize::MAX)?,
            size: whole(p, "size", DEFAULT_SIZE, MAX_SIZE)?,
        })
    }

    /// Whether customer `c` is kept; `q` is checked against `ids` (from
    /// [`crate::data::Loaded::matching`]) when given.
    fn keeps(&self, c: &Customer, ids: Option<bool>) -> bool {
        ids.unwrap_or(true)
            && self.segment.is_none_or(|s| c.segment == s)
            && self.r.is_none_or(|r| c.r == r)
            && self.f.is_none_or(|f| c.f == f)
            && self.m.is_none_or(|m| c.m == m)
            && self.country.as_deref().is_none_or(|k| c.country == k)
            && self
                .q
                .as_deref()
                .is_none_or(|q| contains_lower(&c.customer_id, q))
            && self.query.as_ref().is_none_or(|(_, q)| q.matches(c))
    }

    /// The query string of this selection with `page` and `sort` replaced
    /// (`sort`: a column, `-column` for descending).
    pub fn pairs(&self, page: usize, sort: &str) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        let mut push = |k: &'static str, s: Option<String>| {
            if let Some(s) = s {
                v.push((k, s));
            }
        };
        push("q", self.q.clone());
        push("where", self.query.as_ref().map(|(w, _)| w.clone()));
        push("segment", self.segment.map(|s| s.name().to_string()));
        push("country", self.country.clone());
        push("r", self.r.map(|x| x.to_string()));
        push("f", self.f.map(|x| x.to_string()));
        push("m", self.m.map(|x| x.to_string()));
        push(
            "sort",
            Some(sort.to_string()).filter(|s| s != "customer_id"),
        );
        push("page", Some(page.to_string()).filter(|p| p != "1"));
        push(
            "size",
            Some(self.size.to_string()).filter(|s| *s != DEFAULT_SIZE.to_string()),
        );
        v
    }

    /// The sort parameter as given (`-monetary`).
    pub fn sort_param(&self) -> String {
        format!(
            "{}{}",
            if self.sort.1 { "-" } else { "" },
            COLUMNS[self.sort.0]
        )
    }
}

/// Whether `text` contains `lower` (already lower case), ignoring case.
fn contains_lower(text: &str, lower: &str) -> bool {
    if text.is_ascii() && lower.is_ascii() {
        text.as_bytes()
            .windows(lower.len().max(1))
            .any(|w| w.eq_ignore_ascii_case(lower.as_bytes()))
            || lower.is_empty()
    } else {
        text.to_lowercase().contains(lower)
    }
}

/// The order of two customers by column `col` (ties by id).
pub fn compare(col: usize, a: &Customer, b: &Customer) -> Ordering {
    let o = match col {
        1 => a.recency.cmp(&b.recency),
        2 => a.frequency.cmp(&b.frequency),
        3 => a.monetary.cmp(&b.monetary),
        4 => a.first_purchase.cmp(&b.first_purchase),
        5 => a.last_purchase.cmp(&b.last_purchase),
        6 => a.country.cmp(&b.country),
        7 => a.r.cmp(&b.r),
        8 => a.f.cmp(&b.f),
        9 => a.m.cmp(&b.m),
        10 => a.segment.name().cmp(b.segment.name()),
        _ => Ordering::Equal,
    };
    o.then_with(|| a.customer_id.cmp(&b.customer_id))
}

/// A numeric key of column `col` whose order is the column's order (for
/// every column but the id and the country).
pub fn numeric_key(col: usize) -> Option<fn(&Customer) -> i128> {
    Some(match col {
        1 => |c: &Customer| i128::from(c.recency),
        2 => |c: &Customer| i128::from(c.frequency),
        3 => |c: &Customer| c.monetary.0,
        4 => |c: &Customer| i128::from(c.first_purchase),
        5 => |c: &Customer| i128::from(c.last_purchase),
        7 => |c: &Customer| i128::from(c.r),
        8 => |c: &Customer| i128::from(c.f),
        9 => |c: &Customer| i128::from(c.m),
        10 => |c: &Customer| {
            // The rank of the segment's name among the names.
            let name = c.segment.name();
            Segment::ALL.iter().filter(|s| s.name() < name).count() as i128
        },
        _ => return None,
    })
}

/// One page of the selected customers.
pub struct Page<'a> {
    /// How many customers the filters keep.
    pub total: usize,
    pub rows: Vec<&'a Customer>,
}

impl Page<'_> {
    /// How many pages the selection has (at least 1).
    pub fn pages(&self, size: usize) -> usize {
        self.total.div_ceil(size).max(1)
    }
}

/// The customers' indexes in the selection's order: `order` is the
/// ascending order of the sort column (`None`: kept order, by id), walked
/// backwards for a descending sort (ties by id make it the exact reverse).
fn walk<'a>(
    n: usize,
    order: Option<&'a [u32]>,
    desc: bool,
) -> Box<dyn Iterator<Item = usize> + 'a> {
    match (order, desc) {
        (None, false) => Box::new(0..n),
        (None, true) => Box::new((0..n).rev()),
        (Some(o), false) => Box::new(o.iter().map(|&i| i as usize)),
        (Some(o), true) => Box::new(o.iter().rev().map(|&i| i as usize)),
    }
}

/// Every customer the filters keep, in the selection's order (`order`: see
/// [`crate::data::Loaded::order`]).
pub fn all<'a>(
    customers: &'a [Customer],
    order: Option<&[u32]>,
    ids: Option<&[bool]>,
    sel: &Selection,
) -> Vec<&'a Customer> {
    walk(customers.len(), order, sel.sort.1)
        .filter(|&i| ids.is_none_or(|m| m[i]))
        .map(|i| &customers[i])
        .filter(|c| sel.keeps(c, ids.map(|_| true)))
        .collect()
}

/// The selection's page: one walk in the sort column's order, counting the
/// kept customers and taking those of the page.
/// `ids`: the id search's matches, from [`crate::data::Loaded::matching`].
pub fn page<'a>(
    customers: &'a [Customer],
    order: Option<&[u32]>,
    ids: Option<&[bool]>,
    sel: &Selection,
) -> Page<'a> {
    let start = (sel.page - 1).saturating_mul(sel.size);
    let end = start.saturating_add(sel.size);
    let mut total = 0;
    let mut rows = Vec::new();
    for i in walk(customers.len(), order, sel.sort.1) {
        if ids.is_some_and(|m| !m[i]) {
            continue;
        }
        let c = &customers[i];
        if sel.keeps(c, ids.map(|_| true)) {
            if total >= start && total < end {
                rows.push(c);
            }
            total += 1;
        }
    }
    Page { total, rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked() {
        let p = |q: &str| Selection::parse(&Params::parse(Some(q)));
        let s = p("segment=champions&sort=-monetary&page=3&size=10&r=5").unwrap();
        assert_eq!(s.segment, Some(Segment::Champions));
        assert_eq!(s.sort, (3, true));
        assert_eq!((s.page, s.size, s.r), (3, 10, Some(5)));
        assert!(p("page=0").unwrap_err().0.contains("page=\"0\""));
        assert!(p("size=1001").is_err());
        assert!(p("r=6").is_err());
        assert!(p("sort=bogus").unwrap_err().0.contains("monetary"));
        assert!(p("segment=Nobody").unwrap_err().0.contains("Champions"));
        let w = p("where=r%3D5+f%3E%3D4").unwrap();
        assert_eq!(w.query.as_ref().unwrap().0, "r=5 f>=4");
        assert!(p("where=bogus%3C3").unwrap_err().0.contains("bogus<3"));
        assert!(p("where=").unwrap().query.is_none());
        assert!(contains_lower("AbC12", "bc1"));
        assert!(!contains_lower("AbC12", "x"));
    }
}
