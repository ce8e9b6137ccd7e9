//! Bearer-token authentication.
//!
//! Presented tokens are compared by their SHA-256 digests in constant time, against every
//! configured token without stopping at a match, so neither the length nor the position of a
//! secret leaks through timing. Secrets never reach a log line.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::config::Token;

/// The accepted tokens, kept only as digests.
pub struct Authenticator {
    tokens: Vec<(Arc<str>, [u8; 32])>,
}

/// Why a request was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Bearer …` header.
    Missing,
    /// A bearer token that matches none.
    Wrong,
}

impl Authenticator {
    /// An authenticator for `tokens`; with none, every request is let in.
    pub fn new(tokens: &[Token]) -> Self {
        Authenticator {
            tokens: tokens
                .iter()
                .map(|t| (Arc::from(t.name.as_str()), digest(t.secret())))
                .collect(),
        }
    }

    /// Whether requests must present a token.
    pub fn required(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The name of the token the request presents, `Ok(None)` when auth is off.
    pub fn check(&self, headers: &HeaderMap) -> Result<Option<Arc<str>>, Denied> {
        if !self.required() {
            return Ok(None);
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
            .ok_or(Denied::Missing)?;
        let presented = digest(presented);
        let mut found = None;
        for (name, expected) in &self.tokens {
            if constant_time_eq(&presented, expected) {
                found = Some(Arc::clone(name));
            }
        }
        found.map(Some).ok_or(Denied::Wrong)
    }
}

fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        let (challenge, message) = match self {
            Denied::Missing => (
                r#"Bearer realm="datamcp""#,
                "authentication required: send the header 'Authorization: Bearer <token>' with a token from the server's [[server.tokens]] or DATAMCP_AUTH_TOKEN",
            ),
            Denied::Wrong => (
                r#"Bearer realm="datamcp", error="invalid_token", error_description="the token is not valid""#,
                "the bearer token is not valid: check the token the server was configured with",
            ),
        };
        let mut response = (StatusCode::UNAUTHORIZED, message).into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("header"),
        );
        headers
    }

    #[test]
    fn the_right_token_names_its_holder_and_others_are_told_apart() {
        let auth = Authenticator::new(&[
            Token::new("alice", "alice-secret-0123456789"),
            Token::new("bob", "bob-secret-0123456789"),
        ]);
        let name = auth.check(&headers("Bearer bob-secret-0123456789"));
        assert_eq!(name.expect("accepted").as_deref(), Some("bob"));
        assert_eq!(
            auth.check(&headers("bearer  alice-secret-0123456789 "))
                .expect("accepted")
                .as_deref(),
            Some("alice")
        );
        assert_eq!(auth.check(&HeaderMap::new()), Err(Denied::Missing));
        assert_eq!(
            auth.check(&headers("Basic YWxpY2U6eA==")),
            Err(Denied::Missing)
        );
        assert_eq!(
            auth.check(&headers("Bearer alice-secret")),
            Err(Denied::Wrong)
        );
    }

    #[test]
    fn without_tokens_everyone_is_let_in() {
        let auth = Authenticator::new(&[]);
        assert!(!auth.required());
        assert_eq!(auth.check(&HeaderMap::new()), Ok(None));
    }
}
