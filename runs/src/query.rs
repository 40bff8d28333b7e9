//! The selection language of customers, one for every reader: the
//! dashboard's search box, `rfm customers --where` and `rfm export --where`.
//!
//! A query is terms separated by spaces; a customer is selected when it
//! matches **every** term ([`GRAMMAR`] shows the whole syntax):
//!
//! - a comparison `FIELD OP VALUE` on a score (`r`, `f`, `m`, 1–5), a metric
//!   (`recency` in days, `frequency` in invoices, `monetary` exact to the
//!   cent), the `segment` or the `country`: `r=5`, `f>=4`, `recency<30`,
//!   `monetary>1000`, `segment=at-risk`, `country=united-kingdom`;
//! - any other word is text, found (case-insensitively) in the customer id,
//!   the segment or the country, or equal to the three-digit RFM score
//!   (`545`).
//!
//! [`Query::parse`] refuses a term that looks like a comparison but is not
//! one (an unknown field, a value that is not a number), naming the term;
//! [`Query::lenient`] reads such a term as text instead, for a search box
//! being typed into.

use std::cmp::Ordering;

use rfm_core::money::{self, Money};
use rfm_core::Segment;

use crate::model::Customer;

/// The syntax, shown with every error.
pub const GRAMMAR: &str = "\
query  = term { ' ' term }          (a customer matches every term)
term   = FIELD OP VALUE | TEXT
FIELD  = r | f | m                  (scores 1-5)
       | recency | rec              (days since the last purchase)
       | frequency | freq           (invoices)
       | monetary | mon             (money, e.g. 1000 or 99.50)
       | segment | seg              (=, != only; e.g. segment=champions, segment=at-risk)
       | country                    (=, != only; e.g. country=united-kingdom)
OP     = = | : | != | < | <= | > | >=
TEXT   = any other word: found in the id, segment or country, or equal to the RFM score (545)
examples: 'r=5 f>=4'  'segment=champions monetary>1000'  'recency<=30 country=germany'";

/// What a comparison looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    R,
    F,
    M,
    Recency,
    Frequency,
    Monetary,
    Segment,
    Country,
}

impl Field {
    fn of(name: &str) -> Option<Field> {
        Some(match name {
            "r" => Field::R,
            "f" => Field::F,
            "m" => Field::M,
            "recency" | "rec" => Field::Recency,
            "frequency" | "freq" => Field::Frequency,
            "monetary" | "mon" => Field::Monetary,
            "segment" | "seg" => Field::Segment,
            "country" => Field::Country,
            _ => return None,
        })
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    /// Longest first where one symbol starts another.
    const SYMBOLS: [(&'static str, Op); 7] = [
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("=", Op::Eq),
        (":", Op::Eq),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];

    fn holds(self, o: Ordering) -> bool {
        match self {
            Op::Eq => o == Ordering::Equal,
            Op::Ne => o != Ordering::Equal,
            Op::Lt => o == Ordering::Less,
            Op::Le => o != Ordering::Greater,
            Op::Gt => o == Ordering::Greater,
            Op::Ge => o != Ordering::Less,
        }
    }
}

/// One term of a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Term {
    /// Lower-case text.
    Text(String),
    /// A score, recency or frequency compared with a whole number.
    Whole { field: Field, op: Op, value: i64 },
    /// Monetary compared with an exact amount.
    Money { op: Op, value: Money },
    /// In (or, with `!=`, not in) a segment.
    Segment { op: Op, value: Segment },
    /// The country, compared by its letters and digits only, ignoring case
    /// (`united-kingdom` is `United Kingdom`).
    Country { op: Op, value: String },
}

/// A term that is not valid, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid term {term:?}: {reason}\n\n{GRAMMAR}")]
pub struct QueryError {
    pub term: String,
    pub reason: String,
}

/// A parsed query: the customers matching all its terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub terms: Vec<Term>,
}

/// Letters and digits only, lower case: how segment and country values compare.
fn folded(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Reads one token: `Ok(None)` when it is plain text (no operator in it).
fn comparison(token: &str) -> Result<Option<Term>, String> {
    let Some((at, sym, op)) = Op::SYMBOLS
        .iter()
        .filter_map(|(sym, op)| token.find(sym).map(|at| (at, *sym, *op)))
        .min_by_key(|(at, sym, _)| (*at, std::cmp::Reverse(sym.len())))
    else {
        return Ok(None);
    };
    let name = &token[..at];
    let value = &token[at + sym.len()..];
    let field = Field::of(name).ok_or_else(|| {
        format!("{name:?} is not a field (r, f, m, recency, frequency, monetary, segment, country)")
    })?;
    if value.is_empty() {
        return Err(format!("no value after {sym:?}"));
    }
    let equality = || {
        if matches!(op, Op::Eq | Op::Ne) {
            Ok(())
        } else {
            Err(format!("{name} compares with = or != only"))
        }
    };
    Ok(Some(match field {
        Field::Monetary => Term::Money {
            op,
            value: money::parse_price(value.as_bytes(), b'.')
                .ok_or_else(|| format!("{value:?} is not an amount (e.g. 1000 or 99.50)"))?,
        },
        Field::Segment => {
            equality()?;
            let want = folded(value);
            let value = Segment::ALL
                .into_iter()
                .find(|s| folded(s.name()) == want)
                .ok_or_else(|| {
                    let names: Vec<&str> = Segment::ALL.iter().map(|s| s.name()).collect();
                    format!(
                        "{value:?} is not a segment; one of {} (spaces may be left out or written as - or _)",
                        names.join(", ")
                    )
                })?;
            Term::Segment { op, value }
        }
        Field::Country => {
            equality()?;
            Term::Country {
                op,
                value: folded(value),
            }
        }
        _ => Term::Whole {
            field,
            op,
            value: value
                .parse()
                .map_err(|_| format!("{value:?} is not a whole number"))?,
        },
    }))
}

impl Query {
    /// Parses a query; a term that looks like a comparison but is not a
    /// valid one is an error naming it (with the grammar).
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        let mut terms = Vec::new();
        for token in text.split_whitespace() {
            let lower = token.to_lowercase();
            match comparison(&lower) {
                Ok(Some(term)) => terms.push(term),
                Ok(None) => terms.push(Term::Text(lower)),
                Err(reason) => {
                    return Err(QueryError {
                        term: token.to_string(),
                        reason,
                    })
                }
            }
        }
        Ok(Query { terms })
    }

    /// Parses a query being typed: a term that is not a valid comparison
    /// (yet) is text.
    pub fn lenient(text: &str) -> Query {
        let terms = text
            .split_whitespace()
            .map(str::to_lowercase)
            .map(|t| match comparison(&t) {
                Ok(Some(term)) => term,
                _ => Term::Text(t),
            })
            .collect();
        Query { terms }
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether a customer matches every term.
    pub fn matches(&self, c: &Customer) -> bool {
        self.terms.iter().all(|t| t.matches(c))
    }
}

impl Term {
    /// Whether a customer matches this term.
    pub fn matches(&self, c: &Customer) -> bool {
        match self {
            Term::Text(t) => {
                c.customer_id.to_lowercase().contains(t.as_str())
                    || c.segment.name().to_lowercase().contains(t.as_str())
                    || c.country.to_lowercase().contains(t.as_str())
                    || c.rfm_score() == *t
            }
            Term::Whole { field, op, value } => {
                let v: i128 = match field {
                    Field::R => c.r.into(),
                    Field::F => c.f.into(),
                    Field::M => c.m.into(),
                    Field::Recency => c.recency.into(),
                    Field::Frequency => c.frequency.into(),
                    _ => return false,
                };
                op.holds(v.cmp(&i128::from(*value)))
            }
            Term::Money { op, value } => op.holds(c.monetary.cmp(value)),
            Term::Segment { op, value } => op.holds(c.segment.cmp(value)),
            Term::Country { op, value } => op.holds(folded(&c.country).cmp(value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(id: &str, r: u8, f: u8, monetary: &str, country: &str) -> Customer {
        Customer {
            customer_id: id.into(),
            recency: 10,
            frequency: 3,
            monetary: money::parse_price(monetary.as_bytes(), b'.').unwrap(),
            first_purchase: 0,
            last_purchase: 0,
            country: country.into(),
            r,
            f,
            m: 3,
            segment: Segment::of(r, f),
        }
    }

    #[test]
    fn parses_comparisons_and_text() {
        let q = Query::parse("r=5 F>=4 can't").unwrap();
        assert_eq!(
            q.terms,
            vec![
                Term::Whole {
                    field: Field::R,
                    op: Op::Eq,
                    value: 5
                },
                Term::Whole {
                    field: Field::F,
                    op: Op::Ge,
                    value: 4
                },
                Term::Text("can't".into()),
            ]
        );
        assert_eq!(
            Query::parse("monetary>1000.5").unwrap().terms,
            vec![Term::Money {
                op: Op::Gt,
                value: money::parse_price(b"1000.5", b'.').unwrap()
            }]
        );
        assert_eq!(
            Query::parse("recency<=30 r!=5").unwrap().terms,
            vec![
                Term::Whole {
                    field: Field::Recency,
                    op: Op::Le,
                    value: 30
                },
                Term::Whole {
                    field: Field::R,
                    op: Op::Ne,
                    value: 5
                }
            ]
        );
        assert_eq!(
            Query::parse("segment=Can't_Lose_Them seg:at-risk")
                .unwrap()
                .terms,
            vec![
                Term::Segment {
                    op: Op::Eq,
                    value: Segment::CantLoseThem
                },
                Term::Segment {
                    op: Op::Eq,
                    value: Segment::AtRisk
                }
            ]
        );
    }

    #[test]
    fn errors_name_the_term_and_show_the_grammar() {
        for (query, term, reason) in [
            ("r=5 x=1", "x=1", "\"x\" is not a field"),
            ("r=five", "r=five", "\"five\" is not a whole number"),
            ("monetary>lots", "monetary>lots", "not an amount"),
            ("f>=", "f>=", "no value"),
            ("segment=winners", "segment=winners", "not a segment"),
            ("segment>champions", "segment>champions", "= or != only"),
        ] {
            let e = Query::parse(query).unwrap_err();
            assert_eq!(e.term, term);
            assert!(e.reason.contains(reason), "{query}: {}", e.reason);
            let text = e.to_string();
            assert!(text.contains(&format!("{term:?}")), "{text}");
            assert!(text.contains("FIELD  = r | f | m"), "{text}");
        }
    }

    #[test]
    fn lenient_reads_unfinished_terms_as_text() {
        assert_eq!(Query::lenient("x=1").terms, vec![Term::Text("x=1".into())]);
        assert_eq!(Query::lenient("r=").terms, vec![Term::Text("r=".into())]);
        assert_eq!(Query::lenient("r=5"), Query::parse("r=5").unwrap());
    }

    #[test]
    fn every_term_must_match() {
        let champion = customer("12347", 5, 5, "4310.00", "Iceland");
        let sleeper = customer("12348", 3, 1, "90.50", "United Kingdom");
        let q = |text: &str| Query::parse(text).unwrap();
        assert!(q("r=5 f>=4").matches(&champion));
        assert!(!q("r=5 f>=4").matches(&sleeper));
        assert!(q("segment=champions").matches(&champion));
        assert!(q("segment!=champions").matches(&sleeper));
        assert!(q("country=united-kingdom monetary<100").matches(&sleeper));
        assert!(!q("country=united").matches(&sleeper));
        assert!(q("monetary>=4310").matches(&champion));
        assert!(!q("monetary>4310").matches(&champion));
        // Text: id, segment, country, or the RFM score.
        assert!(q("1234").matches(&champion));
        assert!(q("icel").matches(&champion));
        assert!(q("sleep").matches(&sleeper));
        assert!(q("553").matches(&champion));
        assert!(!q("55").matches(&sleeper));
        assert!(q("").matches(&sleeper));
    }
}
