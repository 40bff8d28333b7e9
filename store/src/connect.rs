//! Parsing the database URL, connecting with a timeout, and connection
//! failures turned into messages that name the server and what to check.
//!
//! A connection that goes silent (a partition, a host that vanished) is
//! closed by the kernel in bounded time, so no call waits for as long as the
//! link is dead: TCP keepalive probes an idle connection and
//! `TCP_USER_TIMEOUT` bounds how long sent data may stay unacknowledged.
//! The libpq parameters `keepalives`, `keepalives_idle`,
//! `keepalives_interval`, `keepalives_retries` and `tcp_user_timeout` in the
//! URL take precedence over these defaults.
//!
//! TLS follows libpq's `sslmode` and `sslrootcert` (see [`crate::tls`]).

use std::str::FromStr;
use std::time::Duration;

use postgres::config::Host;
use postgres::error::SqlState;
use postgres::{Client, Config};

use crate::error::{describe, Error, Result};
use crate::tls::{self, Connector, SslMode, TlsParams};

/// How long a connection attempt may take when the URL does not say.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Silence on a connection after which the first keepalive probe is sent.
pub const DEFAULT_KEEPALIVES_IDLE: Duration = Duration::from_secs(10);
/// Time between keepalive probes.
pub const DEFAULT_KEEPALIVES_INTERVAL: Duration = Duration::from_secs(5);
/// Unanswered probes after which the connection is closed.
pub const DEFAULT_KEEPALIVES_RETRIES: u32 = 3;
/// How long sent data (a COPY's rows, a statement) may stay unacknowledged
/// before the connection is closed; on Linux it also ends a connection whose
/// keepalive probes go unanswered this long. With the keepalive defaults, a
/// dead link is given up after about 25 s whatever the connection was doing.
pub const DEFAULT_TCP_USER_TIMEOUT: Duration = Duration::from_secs(25);

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

/// Everything needed to (re)open a connection: the parsed URL, its TLS
/// session maker, and the server's description for messages.
#[derive(Clone)]
pub(crate) struct Endpoint {
    config: Config,
    tls: TlsParams,
    connector: Connector,
    pub target: Target,
}

/// Parses the URL (its TLS parameters too, reading `sslrootcert`) and fills
/// in the defaults rfm relies on.
pub(crate) fn parse(url: &str) -> Result<Endpoint> {
    let (rest, tls) = tls::split(url)?;
    let (mut config, target) = parse_without_tls(&rest)?;
    config.ssl_mode(tls.mode.on_the_wire());
    let connector = Connector::new(&tls)?;
    Ok(Endpoint {
        config,
        tls,
        connector,
        target,
    })
}

fn parse_without_tls(url: &str) -> Result<(Config, Target)> {
    let mut config = Config::from_str(url).map_err(|e| Error::Url {
        detail: describe(&e),
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("rfm");
    }
    bound_dead_links(&mut config, url);
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

/// Sets the keepalive and `TCP_USER_TIMEOUT` defaults for every parameter
/// the URL does not set itself (`keepalives=0` turns keepalive off).
fn bound_dead_links(config: &mut Config, url: &str) {
    if !names_parameter(url, "keepalives") {
        config.keepalives(true);
    }
    if !names_parameter(url, "keepalives_idle") {
        config.keepalives_idle(DEFAULT_KEEPALIVES_IDLE);
    }
    if !names_parameter(url, "keepalives_interval") {
        config.keepalives_interval(DEFAULT_KEEPALIVES_INTERVAL);
    }
    if !names_parameter(url, "keepalives_retries") {
        config.keepalives_retries(DEFAULT_KEEPALIVES_RETRIES);
    }
    if !names_parameter(url, "tcp_user_timeout") {
        config.tcp_user_timeout(DEFAULT_TCP_USER_TIMEOUT);
    }
}

/// Whether `url` sets parameter `key`, as `?key=` / `&key=` of a
/// `postgresql://` URL or `key=` (spaces allowed around `=`) of a
/// `key=value` string.
fn names_parameter(url: &str, key: &str) -> bool {
    url.match_indices(key).any(|(at, _)| {
        let before = url[..at].chars().next_back();
        let starts_a_parameter = match before {
            None | Some('?' | '&') => true,
            Some(c) => c.is_whitespace(),
        };
        starts_a_parameter && url[at + key.len()..].trim_start().starts_with('=')
    })
}

/// Opens a connection, or says why not and what to check.
pub(crate) fn open(endpoint: &Endpoint) -> Result<Client> {
    let target = &endpoint.target;
    endpoint
        .config
        .connect(endpoint.connector.clone())
        .map_err(|e| Error::Connect {
            target: target.to_string(),
            detail: describe(&e),
            hint: hint(&e, endpoint),
            transient: transient(&e),
        })
}

/// Whether a failed connection may succeed later: the server cannot be
/// reached (yet), is starting up or full, or refuses the login (a database
/// container still initialising its user). A TLS failure is a setting to fix.
fn transient(e: &postgres::Error) -> bool {
    if tls::rustls_cause(e).is_some() {
        return false;
    }
    let text = describe(e);
    if text.contains("server does not support TLS") || text.contains("no hostname provided for TLS")
    {
        return false;
    }
    match e.as_db_error().map(|d| d.code().clone()) {
        None => true,
        Some(c) => {
            c == SqlState::CANNOT_CONNECT_NOW
                || c == SqlState::TOO_MANY_CONNECTIONS
                || c == SqlState::INVALID_PASSWORD
                || (c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                    && !text.contains("no encryption"))
        }
    }
}

/// What to check after a failed connection.
fn hint(e: &postgres::Error, endpoint: &Endpoint) -> String {
    let target = &endpoint.target;
    let mode = endpoint.tls.mode.as_str();
    let ca = endpoint
        .tls
        .root_cert
        .as_ref()
        .map_or("the CA file".to_string(), |p| {
            format!("sslrootcert={}", p.display())
        });
    if let Some(tls_error) = tls::rustls_cause(e) {
        return match tls_error {
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            ) => format!(
                "the server's certificate does not name the host {:?} (sslmode={mode} checks it): \
                 connect by a name the certificate holds, or use sslmode=verify-ca to check the CA only",
                target.host
            ),
            rustls::Error::InvalidCertificate(_) => format!(
                "the server's certificate is not accepted by {ca} (sslmode={mode}): \
                 give the CA that signed the server's certificate in sslrootcert=PATH"
            ),
            _ => format!(
                "the TLS handshake with {} failed (sslmode={mode}): check the server's ssl settings \
                 (ssl_cert_file, ssl_min_protocol_version)",
                target.host
            ),
        };
    }
    let text = describe(e);
    if text.contains("server does not support TLS") {
        return format!(
            "sslmode={mode} needs TLS but the server at {}:{} does not offer it: \
             turn ssl on in its postgresql.conf, or use sslmode=prefer / disable on a trusted network",
            target.host, target.port
        );
    }
    if text.contains("no hostname provided for TLS") {
        return "TLS needs a host name: give host= (not only hostaddr=) in --database-url / DATABASE_URL"
            .to_string();
    }
    let code = e.as_db_error().map(|d| d.code().clone());
    match code {
        Some(c)
            if endpoint.tls.mode == SslMode::Disable
                && c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                && describe(e).contains("no encryption") =>
        {
            format!(
                "the server at {} requires TLS for this connection (pg_hba.conf hostssl) and \
                 sslmode=disable turns it off: use sslmode=verify-full with sslrootcert=PATH \
                 (or sslmode=require)",
                target.host
            )
        }
        Some(c)
            if c == SqlState::INVALID_PASSWORD
                || c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_host_port_database_and_user_but_never_the_password() {
        let (config, t) =
            parse_without_tls("postgresql://alice:s3cret@db.example:6543/rfm").unwrap();
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
        let (config, t) = parse_without_tls("host=h user=u dbname=d connect_timeout=2").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("h", 5432));
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(2)));
        assert!(matches!(
            parse("postgresql://h:notaport/d"),
            Err(Error::Url { .. })
        ));
    }

    #[test]
    fn a_dead_link_is_given_up_in_bounded_time_unless_the_url_says_otherwise() {
        let (config, _) = parse_without_tls("postgresql://alice@db.example/rfm").unwrap();
        assert!(config.get_keepalives());
        assert_eq!(config.get_keepalives_idle(), DEFAULT_KEEPALIVES_IDLE);
        assert_eq!(
            config.get_keepalives_interval(),
            Some(DEFAULT_KEEPALIVES_INTERVAL)
        );
        assert_eq!(
            config.get_keepalives_retries(),
            Some(DEFAULT_KEEPALIVES_RETRIES)
        );
        assert_eq!(
            config.get_tcp_user_timeout(),
            Some(&DEFAULT_TCP_USER_TIMEOUT)
        );
        let probing =
            DEFAULT_KEEPALIVES_IDLE + DEFAULT_KEEPALIVES_INTERVAL * DEFAULT_KEEPALIVES_RETRIES;
        assert!(probing.max(DEFAULT_TCP_USER_TIMEOUT) <= Duration::from_secs(30));

        let (config, _) = parse_without_tls(
            "postgresql://alice@db.example/rfm?keepalives_idle=60&keepalives_interval=7\
             &keepalives_retries=9&tcp_user_timeout=0",
        )
        .unwrap();
        assert_eq!(config.get_keepalives_idle(), Duration::from_secs(60));
        assert_eq!(
            config.get_keepalives_interval(),
            Some(Duration::from_secs(7))
        );
        assert_eq!(config.get_keepalives_retries(), Some(9));
        assert_eq!(
            config.get_tcp_user_timeout(),
            None,
            "tcp_user_timeout=0 is the system's default, as in libpq"
        );

        let (config, _) =
            parse_without_tls("host=h user=u dbname=d keepalives = 0 tcp_user_timeout=90").unwrap();
        assert!(!config.get_keepalives());
        assert_eq!(
            config.get_tcp_user_timeout(),
            Some(&Duration::from_secs(90))
        );
        assert_eq!(config.get_keepalives_idle(), DEFAULT_KEEPALIVES_IDLE);
    }
}
