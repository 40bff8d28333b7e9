//! A run's status, one type for `run.json` and the run database: a run is
//! `running` while its owner works on it, then `succeeded` (its files were
//! written) or `failed`; in the database a succeeded run is `published`, and
//! one whose owner stopped renewing its lease is `abandoned`. A scheduled
//! run that found nothing new to read is `skipped` (in both). Serialised
//! (serde, and the database's text column) as the lowercase name.

/// The status of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// In progress; in the database, its owner renews its lease.
    Running,
    /// Its result was computed and its files written (`run.json` only).
    Succeeded,
    /// Its result is loaded; the latest published run is the one readers see.
    Published,
    /// It ended with an error (including an interrupt).
    Failed,
    /// Its owner stopped renewing its lease (killed, or lost the database).
    Abandoned,
    /// A scheduled run that did not run: nothing changed since the last
    /// successful one (the reason is the report's `error`).
    Skipped,
}

impl RunStatus {
    /// Every status a run row of the database can have, in the order of a
    /// run's life.
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Running,
        RunStatus::Published,
        RunStatus::Failed,
        RunStatus::Abandoned,
        RunStatus::Skipped,
    ];

    /// Every status a run report (`run.json`) can have.
    pub const REPORTED: [RunStatus; 4] = [
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Skipped,
    ];

    /// The status as text (`run.json`, `rfm_runs.status`).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Published => "published",
            RunStatus::Failed => "failed",
            RunStatus::Abandoned => "abandoned",
            RunStatus::Skipped => "skipped",
        }
    }

    /// The database status stored as `text`, if it is one of [`RunStatus::ALL`].
    pub fn parse(text: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The report status written as `text`, if it is one of [`RunStatus::REPORTED`].
    pub fn parse_reported(text: &str) -> Option<RunStatus> {
        RunStatus::REPORTED.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether a run with this status has results to read (its files were
    /// written, or it was published).
    pub fn has_results(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::Published)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<str> for RunStatus {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for RunStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(feature = "sql")]
impl<'a> postgres_types::FromSql<'a> for RunStatus {
    /// A database status (one of [`RunStatus::ALL`]).
    fn from_sql(
        ty: &postgres_types::Type,
        raw: &'a [u8],
    ) -> Result<RunStatus, Box<dyn std::error::Error + Sync + Send>> {
        let text = <&str as postgres_types::FromSql>::from_sql(ty, raw)?;
        RunStatus::parse(text).ok_or_else(|| format!("unknown run status {text:?}").into())
    }

    fn accepts(ty: &postgres_types::Type) -> bool {
        <&str as postgres_types::FromSql>::accepts(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::RunStatus;

    #[test]
    fn statuses_round_trip_through_their_text() {
        for s in RunStatus::ALL.into_iter().chain(RunStatus::REPORTED) {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            let back: RunStatus = serde_json::from_value(s.as_str().into()).unwrap();
            assert_eq!(back, s);
        }
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
        }
        for s in RunStatus::REPORTED {
            assert_eq!(RunStatus::parse_reported(s.as_str()), Some(s));
        }
        // A report's status is not a database status, nor the reverse.
        assert_eq!(RunStatus::parse("succeeded"), None);
        assert_eq!(RunStatus::parse_reported("published"), None);
    }
}
