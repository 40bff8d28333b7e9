//! Parsing the database URL, connecting with a timeout, and connection
//! failures turned into messages that name the server and what to check.

use std::str::FromStr;
use std::time::Duration;

use postgres::config::Host;
use postgres::error::SqlState;
use postgres::{Client, Config, NoTls};

use crate::error::{describe, Error, Result};

/// How long a connection attempt may take when the URL does not say.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The server a store talks to, for messages (never the password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "host {} port {} (database {:?}, user {:?})",
            self.host, self.port, self.database, self.user
        )
    }
}

/// Parses the URL and fills in the defaults rfm relies on.
pub fn parse(url: &str) -> Result<(Config, Target)> {
    let mut config = Config::from_str(url).map_err(|e| Error::Url {
        detail: describe(&e),
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("rfm");
    }
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => match config.get_hostaddrs().first() {
            Some(a) => a.to_string(),
            None => "localhost".to_string(),
        },
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config
        .get_user()
        .map(str::to_string)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_default();
    let database = config
        .get_dbname()
        .map(str::to_string)
        .unwrap_or_else(|| user.clone());
    Ok((
        config,
        Target {
            host,
            port,
            database,
            user,
        },
    ))
}

/// Opens a connection, or says why not and what to check.
pub fn open(config: &Config, target: &Target) -> Result<Client> {
    config.connect(NoTls).map_err(|e| {
        let code = e.as_db_error().map(|d| d.code().clone());
        let hint = match code {
            Some(c) if c == SqlState::INVALID_PASSWORD || c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
                format!(
                    "check the user name and password in --database-url / DATABASE_URL, and pg_hba.conf on {}",
                    target.host
                )
            }
            Some(c) if c == SqlState::INVALID_CATALOG_NAME => format!(
                "create the database (createdb -h {} -p {} {}) or fix its name in --database-url / DATABASE_URL",
                target.host, target.port, target.database
            ),
            Some(_) => "check the server's log and the role's privileges".to_string(),
            None => format!(
                "check that PostgreSQL is running and accepts connections on {}:{} \
                 (listen_addresses, firewall) and that the host and port in --database-url / DATABASE_URL are right",
                target.host, target.port
            ),
        };
        Error::Connect {
            target: target.to_string(),
            detail: describe(&e),
            hint,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_host_port_database_and_user_but_never_the_password() {
        let (config, t) = parse("postgresql://alice:s3cret@db.example:6543/rfm").unwrap();
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.database.as_str(),
                t.user.as_str()
            ),
            ("db.example", 6543, "rfm", "alice")
        );
        assert_eq!(config.get_connect_timeout(), Some(&DEFAULT_CONNECT_TIMEOUT));
        assert!(!t.to_string().contains("s3cret"));
        let (config, t) = parse("host=h user=u dbname=d connect_timeout=2").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("h", 5432));
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(2)));
        assert!(matches!(
            parse("postgresql://h:notaport/d"),
            Err(Error::Url { .. })
        ));
    }
}
