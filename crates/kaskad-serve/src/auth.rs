//! API keys and roles. A key is `ksk_` and 32 random bytes in hex; the
//! catalog keeps only its SHA-256, so a leaked `kaskad.db` leaks no key.
//! Every `/v1` and `/v2` route states what it needs ([`Access`]); the
//! middleware answers 401 for a missing or unknown key and 403 for a role
//! that may not do it.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use kaskad_registry::Role;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::error::{ApiError, ServeError};

/// A freshly made key: shown once to its owner, stored as `hash`.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub key: String,
    pub hash: String,
}

/// Makes a key from 32 bytes of the operating system's randomness.
pub fn new_key() -> Result<NewKey, ServeError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ServeError::Random(e.to_string()))?;
    let key = format!("ksk_{}", hex(&bytes));
    Ok(NewKey {
        hash: hash_key(&key),
        key,
    })
}

/// SHA-256 of the whole key (prefix included), lowercase hex.
pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// What a route does, and so which roles may call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// GETs of the registry and model metadata: every role.
    Read,
    /// Scoring: scorer and admin.
    Score,
    /// Changes (aliases, outcomes, batches): admin only.
    Admin,
}

impl Access {
    fn allows(self, role: Role) -> bool {
        match (role, self) {
            (Role::Admin, _) => true,
            (Role::Scorer, Access::Read | Access::Score) => true,
            (Role::Viewer, Access::Read) => true,
            (Role::Scorer | Role::Viewer, _) => false,
        }
    }

    fn needs(self) -> &'static str {
        match self {
            Access::Read => "any role",
            Access::Score => "the scorer or admin role",
            Access::Admin => "the admin role",
        }
    }
}

/// The middleware in front of every `/v1` and `/v2` route.
pub(crate) async fn require(
    State((app, access)): State<(App, Access)>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let key = bearer(request.headers())?;
    let role = app
        .role_of(key)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unknown API key"))?;
    if !access.allows(role) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "a {} key may not do this; it needs {}",
                role.as_str(),
                access.needs()
            ),
        ));
    }
    Ok(next.run(request).await)
}

fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        unauthorized("missing `Authorization: Bearer KEY` (make one with `kaskad keys create`)")
    })?;
    let text = value
        .to_str()
        .map_err(|_| unauthorized("the Authorization header is not text"))?;
    match text.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") && !key.trim().is_empty() => {
            Ok(key.trim())
        }
        _ => Err(unauthorized(
            "the Authorization header must be `Bearer KEY`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_random_and_hashed_whole() {
        let a = new_key().unwrap();
        let b = new_key().unwrap();
        assert!(a.key.starts_with("ksk_"));
        assert_eq!(a.key.len(), 4 + 64);
        assert_ne!(a.key, b.key);
        assert_eq!(a.hash, hash_key(&a.key));
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn roles_nest() {
        assert!(Access::Admin.allows(Role::Admin));
        assert!(Access::Score.allows(Role::Scorer));
        assert!(!Access::Admin.allows(Role::Scorer));
        assert!(Access::Read.allows(Role::Viewer));
        assert!(!Access::Score.allows(Role::Viewer));
    }

    #[test]
    fn only_bearer_keys_are_read() {
        let mut h = HeaderMap::new();
        assert!(bearer(&h).is_err());
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(bearer(&h).is_err());
        h.insert(header::AUTHORIZATION, "Bearer ksk_1".parse().unwrap());
        assert_eq!(bearer(&h).unwrap(), "ksk_1");
    }
}
