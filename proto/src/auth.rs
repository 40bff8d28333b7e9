//! An optional shared token on every port: clients send it as
//! `authorization: Bearer TOKEN`; servers started with a token refuse calls
//! without it (UNAUTHENTICATED).

use std::sync::Arc;

use tonic::metadata::MetadataValue;
use tonic::{Request, Status};

/// Metadata key carrying the token.
pub const HEADER: &str = "authorization";

/// The shared token, if the cluster uses one.
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

    /// A server interceptor admitting only calls with this token.
    pub fn checker(
        &self,
    ) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone + Send + Sync + 'static
    {
        let expected = self.0.clone();
        move |request: Request<()>| {
            let Some(expected) = &expected else {
                return Ok(request);
            };
            let given = request
                .metadata()
                .get(HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            match given {
                Some(t) if constant_time_eq(t.as_bytes(), expected.as_bytes()) => Ok(request),
                Some(_) => Err(Status::unauthenticated(
                    "the token is not valid: use the cluster's --token (or RFM_TOKEN)",
                )),
                None => Err(Status::unauthenticated(
                    "this cluster requires a token: pass --token or set RFM_TOKEN",
                )),
            }
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked() {
        let token = Token::new(Some("s3cret".into()));
        let mut check = token.checker();
        let with = token.request(());
        assert!(check(with).is_ok());
        let err = check(Request::new(())).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        let wrong = Token::new(Some("guess".into())).request(());
        assert!(check(wrong).unwrap_err().message().contains("not valid"));
        let mut open = Token::new(None).checker();
        assert!(open(Request::new(())).is_ok());
    }
}
