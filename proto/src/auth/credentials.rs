//! The coordinator's credentials: client tokens by name, the admin token and
//! the worker token. Its interceptor resolves each call's token to an
//! [`Identity`], comparing it with every credential in constant time, and
//! puts it in the request's extensions.

use std::sync::Arc;

use tonic::{Request, Status};

use super::{bearer, constant_time_eq, Identity};

/// Why a set of credentials is refused.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(
        "the same token is given for {first} and {second}: each role needs a token of its own"
    )]
    Shared { first: String, second: String },
    #[error("two client credentials are named {0:?} in --clients-file")]
    DuplicateName(String),
}

/// Every credential the coordinator accepts.
#[derive(Clone, Default)]
pub struct Credentials {
    entries: Vec<(Identity, Box<str>)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who: Vec<&Identity> = self.entries.iter().map(|(i, _)| i).collect();
        write!(f, "Credentials({who:?})")
    }
}

fn describe(identity: &Identity) -> String {
    match identity {
        Identity::Client(name) if name == "client" => "the client token (--token)".into(),
        Identity::Client(name) => format!("client {name:?}"),
        Identity::Admin => "the admin token".into(),
        Identity::Worker => "the worker token".into(),
        Identity::Open => "nobody".into(),
    }
}

impl Credentials {
    /// Adds a credential; a token or a client name given twice is refused.
    pub fn add(&mut self, identity: Identity, token: &str) -> Result<(), CredentialError> {
        for (other, known) in &self.entries {
            if known.as_ref() == token {
                return Err(CredentialError::Shared {
                    first: describe(other),
                    second: describe(&identity),
                });
            }
            if let (Identity::Client(a), Identity::Client(b)) = (other, &identity) {
                if a == b {
                    return Err(CredentialError::DuplicateName(a.clone()));
                }
            }
        }
        self.entries.push((identity, token.into()));
        Ok(())
    }

    /// No credential at all: every caller may do everything.
    pub fn is_open(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a client credential (`--token` or `--clients-file`) is set.
    pub fn has_client(&self) -> bool {
        self.entries
            .iter()
            .any(|(i, _)| matches!(i, Identity::Client(_)))
    }

    /// Whether the worker credential is set.
    pub fn has_worker(&self) -> bool {
        self.entries.iter().any(|(i, _)| *i == Identity::Worker)
    }

    /// The identity of a call bearing `given` (every credential is
    /// compared, so the time does not tell which one matched).
    pub fn resolve(&self, given: Option<&str>) -> Result<Identity, Status> {
        if self.is_open() {
            return Ok(Identity::Open);
        }
        let Some(given) = given else {
            return Err(Status::unauthenticated(
                "this coordinator requires a token: clients pass --token, RFM_TOKEN or \
                 --token-file; workers --worker-token, RFM_WORKER_TOKEN or --worker-token-file",
            ));
        };
        let mut found = None;
        for (identity, token) in &self.entries {
            if constant_time_eq(given.as_bytes(), token.as_bytes()) {
                found = Some(identity);
            }
        }
        found.cloned().ok_or_else(|| {
            Status::unauthenticated(
                "the token is not valid on this coordinator: check --token (RFM_TOKEN) or \
                 --worker-token (RFM_WORKER_TOKEN)",
            )
        })
    }

    /// A server interceptor resolving every call's identity into its
    /// extensions (unknown tokens are UNAUTHENTICATED).
    pub fn interceptor(
        self,
    ) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone + Send + Sync + 'static
    {
        let credentials = Arc::new(self);
        move |mut request: Request<()>| {
            let identity = credentials.resolve(bearer(&request))?;
            request.extensions_mut().insert(identity);
            Ok(request)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Token;

    fn credentials() -> Credentials {
        let mut c = Credentials::default();
        c.add(Identity::Client("client".into()), "client-token-0123")
            .unwrap();
        c.add(Identity::Client("bob".into()), "bob-token-0123456")
            .unwrap();
        c.add(Identity::Admin, "admin-token-01234").unwrap();
        c.add(Identity::Worker, "worker-token-0123").unwrap();
        c
    }

    #[test]
    fn tokens_resolve_to_identities() {
        let mut check = credentials().interceptor();
        let who = |r: Result<Request<()>, Status>| Identity::of(&r.unwrap());
        let call = |t: &str| Token::new(Some(t.into())).request(());
        assert_eq!(
            who(check(call("bob-token-0123456"))),
            Identity::Client("bob".into())
        );
        assert_eq!(who(check(call("admin-token-01234"))), Identity::Admin);
        assert_eq!(who(check(call("worker-token-0123"))), Identity::Worker);
        let err = check(call("guess")).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        assert!(err.message().contains("not valid"));
        let err = check(Request::new(())).unwrap_err();
        assert!(err.message().contains("requires a token"));
        let mut open = Credentials::default().interceptor();
        assert_eq!(who(open(Request::new(()))), Identity::Open);
    }

    #[test]
    fn one_token_for_two_roles_is_refused() {
        let mut c = credentials();
        let err = c.add(Identity::Worker, "admin-token-01234").unwrap_err();
        assert!(err.to_string().contains("the admin token"), "{err}");
        let err = c
            .add(Identity::Client("bob".into()), "another-token-0123")
            .unwrap_err();
        assert!(err.to_string().contains("\"bob\""), "{err}");
    }
}
