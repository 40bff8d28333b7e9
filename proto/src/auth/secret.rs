//! A worker's call secret: 32 random bytes (hex) made before each
//! registration and given to the coordinator, the only credential the
//! worker's port accepts. Shared by the interceptor and the membership loop,
//! which swaps it at every registration.

use std::sync::{Arc, RwLock};

use tonic::{Request, Status};

use super::{bearer, constant_time_eq, Token};

/// The shortest call secret a coordinator accepts at registration.
pub const MIN_CALL_SECRET_CHARS: usize = 32;

/// `bytes` random bytes from the operating system, as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The OS generator fails only when the kernel has none: nothing works then.
    getrandom::fill(&mut buf).expect("the operating system's random generator failed");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The current call secret of a worker.
#[derive(Clone)]
pub struct CallSecret(Arc<RwLock<Arc<str>>>);

impl std::fmt::Debug for CallSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallSecret(..)")
    }
}

impl Default for CallSecret {
    fn default() -> Self {
        CallSecret(Arc::new(RwLock::new(Arc::from(random_hex(32)))))
    }
}

impl CallSecret {
    /// Makes a fresh secret, which replaces the current one, and returns it.
    pub fn renew(&self) -> String {
        let fresh = random_hex(32);
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::from(fresh.as_str());
        fresh
    }

    /// The secret of the current registration.
    pub fn current(&self) -> Arc<str> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A server interceptor admitting only calls with the current secret.
    pub fn checker(
        &self,
    ) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone + Send + Sync + 'static
    {
        let secret = self.clone();
        move |request: Request<()>| {
            let expected = secret.current();
            match bearer(&request) {
                Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => {
                    Ok(request)
                }
                _ => Err(Status::unauthenticated(
                    "this worker takes calls only from the coordinator it registered with",
                )),
            }
        }
    }

    /// The secret as the token a caller sends.
    pub fn token(&self) -> Token {
        Token::new(Some(self.current().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_current_secret_is_accepted() {
        let secret = CallSecret::default();
        let mut check = secret.checker();
        let old = secret.token();
        assert!(check(old.request(())).is_ok());
        let fresh = secret.renew();
        assert_eq!(fresh.len(), 64);
        assert!(check(old.request(())).is_err(), "the old secret is gone");
        assert!(check(Token::new(Some(fresh)).request(())).is_ok());
        let err = check(Request::new(())).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        assert_ne!(random_hex(32), random_hex(32));
    }
}
