//! Versioned schema migrations, embedded in the binary and applied on connect
//! under an advisory lock (concurrent starts apply each migration once).

use postgres::Client;

use crate::connect::Target;
use crate::error::{describe, Error, Result};

/// One schema step.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in version order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "runs",
        sql: include_str!("../migrations/0001_runs.sql"),
    },
    Migration {
        version: 2,
        name: "run leases",
        sql: include_str!("../migrations/0002_run_leases.sql"),
    },
    Migration {
        version: 3,
        name: "run cut points",
        sql: include_str!("../migrations/0003_run_cut_points.sql"),
    },
    Migration {
        version: 4,
        name: "skipped runs",
        sql: include_str!("../migrations/0004_skipped_runs.sql"),
    },
];

/// Key of the advisory lock serialising migrations (any fixed number).
const MIGRATION_LOCK: i64 = 0x0072_666d_5f6d_6967;

const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS rfm_schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// Applies the migrations the database has not seen yet.
pub fn apply(client: &mut Client, target: &Target) -> Result<()> {
    let err = |detail: String| Error::Schema {
        target: target.to_string(),
        detail,
    };
    let mut tx = client
        .transaction()
        .map_err(|e| err(format!("cannot start the migration: {}", describe(&e))))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .and_then(|_| tx.batch_execute(MIGRATIONS_TABLE))
        .map_err(|e| {
            err(format!(
                "cannot create rfm_schema_migrations: {}",
                describe(&e)
            ))
        })?;
    let current: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM rfm_schema_migrations",
            &[],
        )
        .map_err(|e| {
            err(format!(
                "cannot read rfm_schema_migrations: {}",
                describe(&e)
            ))
        })?
        .get(0);
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > known {
        return Err(err(format!(
            "the schema is at version {current} but this rfm knows versions up to {known}: use a newer rfm"
        )));
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.batch_execute(m.sql).map_err(|e| {
            err(format!(
                "migration {} ({}) failed: {}",
                m.version,
                m.name,
                describe(&e)
            ))
        })?;
        tx.execute(
            "INSERT INTO rfm_schema_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .map_err(|e| {
            err(format!(
                "cannot record migration {}: {}",
                m.version,
                describe(&e)
            ))
        })?;
    }
    tx.commit()
        .map_err(|e| err(format!("cannot commit the migrations: {}", describe(&e))))
}
