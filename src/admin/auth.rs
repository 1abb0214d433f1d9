//! Bearer-token authentication and the read/write split of the admin API.
//!
//! Tokens come from `[admin] tokens_file`, compiled with the config (only the sha256 of each
//! secret is kept) and swapped with it, so a reload that adds or revokes a token applies to the
//! next call. The presented token is hashed and compared with every configured digest in
//! constant time, without stopping at a match: neither the secret's bytes nor the position of
//! the matching token show in the timing.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AdminState, ApiError};
use crate::rules::{AdminRole, AdminToken};

/// What a token may do.
pub type Role = AdminRole;

/// The authenticated caller of an admin call: its token's name (the audit log's "who").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

/// POST calls that change nothing and so need only a read token: a what-if re-evaluation
/// takes a draft as its body (too large and structured for a query string) but only reads.
pub const READ_ONLY_POSTS: &[&str] = &["/admin/shadow/whatif"];

/// The role a call needs: reading for GET and HEAD (which never change state) and the
/// [`READ_ONLY_POSTS`], writing for everything else.
pub fn needed_role(method: &Method, path: &str) -> Role {
    let read_only_post = method == Method::POST && READ_ONLY_POSTS.contains(&path);
    if method == Method::GET || method == Method::HEAD || read_only_post {
        Role::Read
    } else {
        Role::Write
    }
}

/// Find the caller among `tokens` from the request's `Authorization` header.
pub fn authenticate(headers: &HeaderMap, tokens: &[AdminToken]) -> Result<Caller, ApiError> {
    if tokens.is_empty() {
        return Err(ApiError::Unauthorized(
            "no admin tokens are configured: set [admin] tokens_file (see config/example.toml); \
             until then only /metrics answers"
                .into(),
        ));
    }
    let presented = bearer(headers).ok_or_else(|| {
        ApiError::Unauthorized("missing header Authorization: Bearer <token>".into())
    })?;
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let mut found: Option<&AdminToken> = None;
    for token in tokens {
        let equal: bool = token.secret_sha256.ct_eq(&digest).into();
        if equal && found.is_none() {
            found = Some(token);
        }
    }
    found
        .map(|t| Caller {
            name: t.name.clone(),
            role: t.role,
        })
        .ok_or_else(|| ApiError::Unauthorized("unknown admin token".into()))
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive), if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(char::is_whitespace)?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Middleware on every `/admin/*` route: 401 without a valid token, 403 when a read token
/// calls a write; the caller goes into the request's extensions for the handlers.
pub async fn require_token(
    State(state): State<Arc<AdminState>>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let snapshot = state.live.load();
    let caller = authenticate(request.headers(), &snapshot.rules.admin.tokens)?;
    drop(snapshot);
    if needed_role(request.method(), request.uri().path()) == Role::Write
        && caller.role != Role::Write
    {
        let action = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or("this call")
            .to_owned();
        return Err(ApiError::Forbidden {
            name: caller.name,
            action,
        });
    }
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn token(name: &str, secret: &str, role: Role) -> AdminToken {
        AdminToken {
            name: name.into(),
            role,
            secret_sha256: Sha256::digest(secret.as_bytes()).into(),
        }
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn finds_the_token_by_its_secret() {
        let tokens = [
            token("ops", "write-secret-1", Role::Write),
            token("viewer", "read-secret-1", Role::Read),
        ];
        let caller = authenticate(&headers("Bearer read-secret-1"), &tokens).unwrap();
        assert_eq!(caller.name, "viewer");
        assert_eq!(caller.role, Role::Read);
        let caller = authenticate(&headers("bearer   write-secret-1 "), &tokens).unwrap();
        assert_eq!(caller.name, "ops");
        for bad in [
            "Bearer write-secret-2",
            "Bearer",
            "Basic write-secret-1",
            "write-secret-1",
        ] {
            let err = authenticate(&headers(bad), &tokens).unwrap_err();
            assert_eq!(err.status(), 401, "{bad}");
        }
        assert_eq!(
            authenticate(&HeaderMap::new(), &tokens)
                .unwrap_err()
                .status(),
            401
        );
    }

    #[test]
    fn without_tokens_everything_is_refused_with_a_hint() {
        let err = authenticate(&headers("Bearer anything"), &[]).unwrap_err();
        assert_eq!(err.status(), 401);
        assert!(err.to_string().contains("tokens_file"), "{err}");
    }

    #[test]
    fn only_get_head_and_the_what_if_are_reads() {
        assert_eq!(needed_role(&Method::GET, "/admin/status"), Role::Read);
        assert_eq!(needed_role(&Method::HEAD, "/admin/status"), Role::Read);
        assert_eq!(
            needed_role(&Method::POST, "/admin/shadow/whatif"),
            Role::Read
        );
        for m in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            assert_eq!(needed_role(&m, "/admin/rollout"), Role::Write);
        }
        for m in [Method::PUT, Method::DELETE, Method::PATCH] {
            assert_eq!(needed_role(&m, "/admin/shadow/whatif"), Role::Write);
        }
        assert_eq!(
            needed_role(&Method::POST, "/admin/shadow/whatif/x"),
            Role::Write
        );
    }
}
