//! Credentials and roles. Callers send `authorization: Bearer TOKEN`
//! ([`Token`]); the coordinator resolves it to an [`Identity`] (a client by
//! name, the admin, a worker, or anyone when no credential is configured)
//! with [`Credentials`], and its services require a role of it. A worker's
//! port accepts only the [`CallSecret`] it gave the coordinator at
//! registration. Secrets are loaded from flags, variables and files by
//! [`load`].

mod credentials;
pub mod exposure;
pub mod load;
mod secret;

pub use credentials::{CredentialError, Credentials};
pub use secret::{random_hex, CallSecret, MIN_CALL_SECRET_CHARS};

use std::sync::Arc;

use tonic::metadata::MetadataValue;
use tonic::{Request, Status};

/// Metadata key carrying the token.
pub const HEADER: &str = "authorization";

/// The token a caller sends, if any.
#[derive(Clone, Default)]
pub struct Token(Option<Arc<str>>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Token(set)"
        } else {
            "Token(none)"
        })
    }
}

impl Token {
    /// `None` or an empty string: no token.
    pub fn new(token: Option<String>) -> Token {
        Token(token.filter(|t| !t.is_empty()).map(Arc::from))
    }

    /// Whether `given` is this token (in constant time); never for no token.
    pub fn matches(&self, given: &str) -> bool {
        self.0
            .as_ref()
            .is_some_and(|t| constant_time_eq(t.as_bytes(), given.as_bytes()))
    }

    /// Wraps a message into a request carrying the token.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(t) = &self.0 {
            if let Ok(value) = MetadataValue::try_from(format!("Bearer {t}")) {
                request.metadata_mut().insert(HEADER, value);
            }
        }
        request
    }
}

/// The bearer token of a call, if it has one.
pub fn bearer<T>(request: &Request<T>) -> Option<&str> {
    request
        .metadata()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Who is calling the coordinator, as its interceptor resolved the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// No credential is configured: every caller may do everything.
    Open,
    /// A client credential: `client` for `--token`, else its name in `--clients-file`.
    Client(String),
    /// The admin credential: every client call on every job.
    Admin,
    /// The worker credential: registration and heartbeats only.
    Worker,
}

/// Message of a client call made with the worker token.
const NEEDS_CLIENT: &str = "this call needs a client token (--token, RFM_TOKEN or --token-file) \
     or the admin token; the worker token only registers workers and sends heartbeats";
/// Message of a worker call made with a client or admin token.
const NEEDS_WORKER: &str = "this call needs the worker token (--worker-token, RFM_WORKER_TOKEN or \
     --worker-token-file); a client or admin token cannot register a worker";

impl Identity {
    /// The identity the interceptor put in the request (none: an
    /// uncredentialed, in-process service, i.e. [`Identity::Open`]).
    pub fn of<T>(request: &Request<T>) -> Identity {
        request
            .extensions()
            .get::<Identity>()
            .cloned()
            .unwrap_or(Identity::Open)
    }

    /// Allows clients, the admin and everyone on an open coordinator.
    pub fn require_client(&self) -> Result<(), Status> {
        match self {
            Identity::Worker => Err(Status::permission_denied(NEEDS_CLIENT)),
            _ => Ok(()),
        }
    }

    /// Allows workers and everyone on an open coordinator.
    pub fn require_worker(&self) -> Result<(), Status> {
        match self {
            Identity::Worker | Identity::Open => Ok(()),
            _ => Err(Status::permission_denied(NEEDS_WORKER)),
        }
    }

    /// The owner recorded on the jobs this identity submits (`None`: open).
    pub fn owner(&self) -> Option<String> {
        match self {
            Identity::Open => None,
            Identity::Client(name) => Some(name.clone()),
            Identity::Admin => Some("admin".into()),
            Identity::Worker => Some("worker".into()),
        }
    }

    /// Whether this identity may see and act on a job owned by `owner`.
    pub fn may_access(&self, owner: Option<&str>) -> bool {
        match self {
            Identity::Open | Identity::Admin => true,
            Identity::Client(name) => owner.is_none_or(|o| o == name),
            Identity::Worker => false,
        }
    }
}

/// Equality of two byte strings in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_required() {
        assert!(Identity::Open.require_worker().is_ok());
        assert!(Identity::Open.require_client().is_ok());
        let denied = Identity::Worker.require_client().unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(denied.message().contains("--token"));
        let denied = Identity::Client("a".into()).require_worker().unwrap_err();
        assert!(denied.message().contains("--worker-token"));
        assert!(Identity::Admin.require_worker().is_err());
    }

    #[test]
    fn clients_see_their_own_jobs() {
        let a = Identity::Client("a".into());
        assert!(a.may_access(Some("a")));
        assert!(!a.may_access(Some("b")));
        assert!(a.may_access(None));
        assert!(Identity::Admin.may_access(Some("b")));
        assert!(!Identity::Worker.may_access(None));
    }

    #[test]
    fn comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
