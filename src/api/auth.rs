//! Access control: an optional API token, checked on every request but `/api/health` (always
//! public, for probes) and, when configured, `/api/status`.
//!
//! The token is accepted as `Authorization: Bearer <token>` (scripts, Prometheus) or as the
//! cookie `cav_token=<token>` (the web pages). A missing or wrong token is a 401 JSON error with
//! `WWW-Authenticate: Bearer`; nothing about the token is logged.

use std::sync::Arc;

use warp::{Filter, Rejection};

/// Who may call the API.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// `None`: no token configured, everything is open (the daemon binds to loopback by
    /// default).
    pub token: Option<Arc<str>>,
    /// `/api/status` without the token.
    pub public_status: bool,
}

/// The rejection of a request without a valid token.
#[derive(Debug)]
pub struct Unauthorized {
    pub reason: &'static str,
}

impl warp::reject::Reject for Unauthorized {}

/// Equal in constant time for equal lengths (a wrong token's timing says nothing about it).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn cookie_token(cookies: &str) -> Option<&str> {
    cookies
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == "cav_token")
        .map(|(_, v)| v)
}

impl Access {
    /// Whether a request for `path` with these headers may go on.
    pub fn check(
        &self,
        path: &str,
        authorization: Option<&str>,
        cookies: Option<&str>,
    ) -> Result<(), Unauthorized> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        if path == "/api/health" || (self.public_status && path == "/api/status") {
            return Ok(());
        }
        let given = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .or_else(|| cookies.and_then(cookie_token));
        match given {
            None => Err(Unauthorized {
                reason: "this endpoint needs the API token (Authorization: Bearer <token>)",
            }),
            Some(t) if same(t.as_bytes(), token.as_bytes()) => Ok(()),
            Some(_) => Err(Unauthorized {
                reason: "wrong API token",
            }),
        }
    }
}

/// A filter that passes authorised requests and rejects the others with [`Unauthorized`].
pub fn guard(access: Access) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::path::full()
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("cookie"))
        .and_then(
            move |path: warp::path::FullPath, auth: Option<String>, cookie: Option<String>| {
                let result = access.check(path.as_str(), auth.as_deref(), cookie.as_deref());
                async move { result.map_err(warp::reject::custom) }
            },
        )
        .untuple_one()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_token() -> Access {
        Access {
            token: Some("s3cret".into()),
            public_status: false,
        }
    }

    #[test]
    fn without_a_token_everything_is_open() {
        assert!(Access::default()
            .check("/api/activities", None, None)
            .is_ok());
    }

    #[test]
    fn the_token_comes_as_bearer_or_cookie() {
        let a = with_token();
        assert!(a.check("/api/status", Some("Bearer s3cret"), None).is_ok());
        assert!(a
            .check("/api/status", None, Some("lang=fr; cav_token=s3cret"))
            .is_ok());
        assert_eq!(
            a.check("/api/status", Some("Bearer nope"), None)
                .unwrap_err()
                .reason,
            "wrong API token"
        );
        assert!(a.check("/api/status", Some("Basic s3cret"), None).is_err());
        assert!(a.check("/metrics", None, Some("cav_token=s3cre")).is_err());
        assert!(a.check("/api/status", None, None).is_err());
    }

    #[test]
    fn health_is_always_public_and_status_when_configured() {
        let mut a = with_token();
        assert!(a.check("/api/health", None, None).is_ok());
        assert!(a.check("/api/status", None, None).is_err());
        a.public_status = true;
        assert!(a.check("/api/status", None, None).is_ok());
        assert!(a.check("/api/current-activity", None, None).is_err());
    }
}
