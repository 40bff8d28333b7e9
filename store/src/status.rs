//! A run's status in `rfm_runs.status`, as a type: `running` while its owner
//! works on it, then `published`, `failed` or `abandoned` (its owner stopped
//! renewing its lease). Only `published` runs can be the latest.

use postgres::types::{FromSql, Type};

/// The status of a run row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// In progress; its owner renews its lease.
    Running,
    /// Its result is loaded; the latest published run is the one readers see.
    Published,
    /// It ended with an error (including an interrupt).
    Failed,
    /// Its owner stopped renewing its lease (killed, or lost the database).
    Abandoned,
}

impl RunStatus {
    /// Every status, in the order of a run's life.
    pub const ALL: [RunStatus; 4] = [
        RunStatus::Running,
        RunStatus::Published,
        RunStatus::Failed,
        RunStatus::Abandoned,
    ];

    /// The value stored in `rfm_runs.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Published => "published",
            RunStatus::Failed => "failed",
            RunStatus::Abandoned => "abandoned",
        }
    }

    /// The status stored as `text`, if it is one.
    pub fn parse(text: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// True once the run can no longer change.
    pub fn is_final(self) -> bool {
        self != RunStatus::Running
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'a> FromSql<'a> for RunStatus {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<RunStatus, Box<dyn std::error::Error + Sync + Send>> {
        let text = <&str as FromSql>::from_sql(ty, raw)?;
        RunStatus::parse(text).ok_or_else(|| format!("unknown run status {text:?}").into())
    }

    fn accepts(ty: &Type) -> bool {
        <&str as FromSql>::accepts(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::RunStatus;

    #[test]
    fn statuses_round_trip_through_their_text() {
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(RunStatus::parse("succeeded"), None);
    }
}
