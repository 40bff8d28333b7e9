//! Errors of the store: each names the server and says what to check.

/// A result with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL cannot be parsed.
    #[error(
        "invalid database URL: {detail} (expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE)"
    )]
    Url { detail: String },
    /// `sslmode` / `sslrootcert` in the URL cannot be used.
    #[error("database URL: {detail}")]
    TlsSettings { detail: String },
    /// The server cannot be reached or refuses the login.
    #[error("cannot connect to PostgreSQL at {target}: {detail}; {hint}")]
    Connect {
        target: String,
        detail: String,
        hint: String,
        /// Whether trying again later may succeed: the server cannot be
        /// reached yet, is starting up, or refuses the login (a database
        /// container still initialising); not a TLS or URL mistake.
        transient: bool,
    },
    /// A schema migration failed or the schema is newer than this program.
    #[error("database schema on {target}: {detail}")]
    Schema { target: String, detail: String },
    /// A statement failed (including a connection lost mid-way).
    #[error("PostgreSQL at {target}: {action} failed: {detail}")]
    Query {
        target: String,
        action: String,
        detail: String,
        #[source]
        source: postgres::Error,
    },
    /// A run id that is not in the database.
    #[error("no run {run_id:?} in the database at {target} (see `rfm runs`)")]
    UnknownRun { target: String, run_id: String },
    /// A run that cannot change state (e.g. publishing a failed run).
    #[error("run {run_id} is {status}, not running: it cannot be {action}")]
    NotRunning {
        run_id: String,
        status: String,
        action: String,
    },
}

impl Error {
    pub(crate) fn query(target: &str, action: &str, source: postgres::Error) -> Error {
        Error::Query {
            target: target.to_string(),
            action: action.to_string(),
            detail: describe(&source),
            source,
        }
    }

    /// True when the connection to the server was lost or closed: the server
    /// ended the session (SQLSTATE 57P…, 08…), the client saw it closed, or a
    /// statement failed on the socket (`Connection reset by peer`).
    pub fn is_connection_lost(&self) -> bool {
        match self {
            Error::Query { source, .. } => {
                let code = source.code().map(|c| c.code()).unwrap_or("");
                source.is_closed()
                    || code.starts_with("57P")
                    || code.starts_with("08")
                    || has_io_cause(source)
            }
            Error::Connect { .. } => true,
            _ => false,
        }
    }

    /// Whether a failed connection may succeed if tried again later (see
    /// [`Error::Connect`]'s `transient`).
    pub fn is_transient_connect(&self) -> bool {
        matches!(
            self,
            Error::Connect {
                transient: true,
                ..
            }
        )
    }
}

/// Whether an I/O error is among the causes of `e`.
fn has_io_cause(e: &postgres::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.is::<std::io::Error>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// The server's message (with detail and hint) or the client-side cause.
pub(crate) fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(d) = db.detail() {
            s.push_str(&format!("; {d}"));
        }
        if let Some(h) = db.hint() {
            s.push_str(&format!("; hint: {h}"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(&format!(": {c}"));
        }
        src = cause.source();
    }
    s
}
