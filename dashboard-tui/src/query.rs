//! The customer search: words match the id, segment or country (or the
//! three-digit RFM score), and comparisons filter on a metric or a score:
//! `r=5`, `f>=4`, `recency<30`, `monetary>1000`. All terms must match.

use rfm_core::money::{self, Money};

use crate::data::Customer;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    R,
    F,
    M,
    Recency,
    Frequency,
    Monetary,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Op::Eq => o == Equal,
            Op::Lt => o == Less,
            Op::Le => o != Greater,
            Op::Gt => o == Greater,
            Op::Ge => o != Less,
        }
    }
}

/// One search term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Term {
    /// Lower-case text.
    Text(String),
    Whole {
        field: Field,
        op: Op,
        value: i64,
    },
    Money {
        op: Op,
        value: Money,
    },
}

fn field(name: &str) -> Option<Field> {
    Some(match name {
        "r" => Field::R,
        "f" => Field::F,
        "m" => Field::M,
        "recency" | "rec" => Field::Recency,
        "frequency" | "freq" => Field::Frequency,
        "monetary" | "mon" => Field::Monetary,
        _ => return None,
    })
}

fn comparison(token: &str) -> Option<Term> {
    const OPS: [(&str, Op); 6] = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("=", Op::Eq),
        (":", Op::Eq),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let (at, sym, op) = OPS
        .iter()
        .filter_map(|(sym, op)| token.find(sym).map(|at| (at, *sym, *op)))
        .min_by_key(|(at, sym, _)| (*at, std::cmp::Reverse(sym.len())))?;
    let field = field(&token[..at])?;
    let value = &token[at + sym.len()..];
    match field {
        Field::Monetary => Some(Term::Money {
            op,
            value: money::parse_price(value.as_bytes(), b'.')?,
        }),
        _ => Some(Term::Whole {
            field,
            op,
            value: value.parse().ok()?,
        }),
    }
}

/// Splits a query into terms; a token that is not a valid comparison is text.
pub fn parse(query: &str) -> Vec<Term> {
    query
        .split_whitespace()
        .map(|t| t.to_lowercase())
        .map(|t| comparison(&t).unwrap_or(Term::Text(t)))
        .collect()
}

fn term_matches(term: &Term, c: &Customer) -> bool {
    match term {
        Term::Text(t) => {
            c.customer_id.to_lowercase().contains(t.as_str())
                || c.segment.name().to_lowercase().contains(t.as_str())
                || c.country.to_lowercase().contains(t.as_str())
                || c.rfm_score() == *t
        }
        Term::Whole { field, op, value } => {
            let v: i128 = match field {
                Field::R => c.r as i128,
                Field::F => c.f as i128,
                Field::M => c.m as i128,
                Field::Recency => c.recency as i128,
                Field::Frequency => c.frequency as i128,
                Field::Monetary => return false,
            };
            op.holds(v.cmp(&(*value as i128)))
        }
        Term::Money { op, value } => op.holds(c.monetary.cmp(value)),
    }
}

/// Whether a customer matches every term.
pub fn matches(terms: &[Term], c: &Customer) -> bool {
    terms.iter().all(|t| term_matches(t, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_comparisons_and_text() {
        assert_eq!(
            parse("r=5 F>=4 can't"),
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
            parse("monetary>1000.5"),
            vec![Term::Money {
                op: Op::Gt,
                value: money::parse_price(b"1000.5", b'.').unwrap()
            }]
        );
        assert_eq!(
            parse("recency<=30")[0],
            Term::Whole {
                field: Field::Recency,
                op: Op::Le,
                value: 30
            }
        );
        // Not a field, or not a number: plain text.
        assert_eq!(parse("x=1"), vec![Term::Text("x=1".into())]);
        assert_eq!(parse("r=five"), vec![Term::Text("r=five".into())]);
    }
}
