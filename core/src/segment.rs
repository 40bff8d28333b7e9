//! The ten RFM segments and the R × F table that assigns them (spec §5).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Segment {
    Champions,
    LoyalCustomers,
    PotentialLoyalists,
    NewCustomers,
    Promising,
    NeedAttention,
    AboutToSleep,
    AtRisk,
    CantLoseThem,
    Hibernating,
}

impl Segment {
    pub const ALL: [Segment; 10] = [
        Segment::Champions,
        Segment::LoyalCustomers,
        Segment::PotentialLoyalists,
        Segment::NewCustomers,
        Segment::Promising,
        Segment::NeedAttention,
        Segment::AboutToSleep,
        Segment::AtRisk,
        Segment::CantLoseThem,
        Segment::Hibernating,
    ];

    /// The segment's place in [`ALL`](Self::ALL).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The segment of an R and an F score (1–5 each).
    pub fn of(r: u8, f: u8) -> Segment {
        use Segment::*;
        match (r, f) {
            (5, 1) => NewCustomers,
            (5, 2 | 3) => PotentialLoyalists,
            (5, _) => Champions,
            (4, 1) => Promising,
            (4, 2 | 3) => PotentialLoyalists,
            (4, _) => LoyalCustomers,
            (3, 1 | 2) => AboutToSleep,
            (3, 3) => NeedAttention,
            (3, _) => LoyalCustomers,
            (_, 1 | 2) => Hibernating,
            (_, 3 | 4) => AtRisk,
            _ => CantLoseThem,
        }
    }

    pub fn name(self) -> &'static str {
        use Segment::*;
        match self {
            Champions => "Champions",
            LoyalCustomers => "Loyal Customers",
            PotentialLoyalists => "Potential Loyalists",
            NewCustomers => "New Customers",
            Promising => "Promising",
            NeedAttention => "Need Attention",
            AboutToSleep => "About to Sleep",
            AtRisk => "At Risk",
            CantLoseThem => "Can't Lose Them",
            Hibernating => "Hibernating",
        }
    }

    /// Looks a segment up by its name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Segment> {
        Segment::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The rule that places a customer in this segment, in words.
    pub fn rule(self) -> &'static str {
        use Segment::*;
        match self {
            Champions => "R = 5 and F ≥ 4",
            LoyalCustomers => "R in 3–4 and F ≥ 4",
            PotentialLoyalists => "R in 4–5 and F in 2–3",
            NewCustomers => "R = 5 and F = 1",
            Promising => "R = 4 and F = 1",
            NeedAttention => "R = 3 and F = 3",
            AboutToSleep => "R = 3 and F in 1–2",
            AtRisk => "R ≤ 2 and F in 3–4",
            CantLoseThem => "R ≤ 2 and F = 5",
            Hibernating => "R ≤ 2 and F ≤ 2",
        }
    }
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_segment_is_at_its_index() {
        for (i, seg) in Segment::ALL.into_iter().enumerate() {
            assert_eq!(seg.index(), i, "{seg:?}");
        }
    }

    #[test]
    fn table_matches_the_spec() {
        let rows = [
            (
                5,
                [
                    "New Customers",
                    "Potential Loyalists",
                    "Potential Loyalists",
                    "Champions",
                    "Champions",
                ],
            ),
            (
                4,
                [
                    "Promising",
                    "Potential Loyalists",
                    "Potential Loyalists",
                    "Loyal Customers",
                    "Loyal Customers",
                ],
            ),
            (
                3,
                [
                    "About to Sleep",
                    "About to Sleep",
                    "Need Attention",
                    "Loyal Customers",
                    "Loyal Customers",
                ],
            ),
            (
                2,
                [
                    "Hibernating",
                    "Hibernating",
                    "At Risk",
                    "At Risk",
                    "Can't Lose Them",
                ],
            ),
            (
                1,
                [
                    "Hibernating",
                    "Hibernating",
                    "At Risk",
                    "At Risk",
                    "Can't Lose Them",
                ],
            ),
        ];
        for (r, names) in rows {
            for (f, name) in names.iter().enumerate() {
                assert_eq!(
                    Segment::of(r, f as u8 + 1).name(),
                    *name,
                    "r={r} f={}",
                    f + 1
                );
            }
        }
        for s in Segment::ALL {
            assert_eq!(Segment::from_name(s.name()), Some(s));
        }
    }
}
