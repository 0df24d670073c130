//! From a subscription request to the node's access decision
//! (`node/access.rs`): the token (`?token=` on any subscription URL, an
//! `Authorization: Bearer` header, or a WebSocket command's `"token"`) and,
//! for the authorize callback, the browser's cookies.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};

use crate::hub::unix_now;
use crate::node::access::{Credentials, Granted};
use crate::node::web::bearer;

/// The `token` parameter of a query string, if any.
pub fn query_token(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .map(str::to_string)
}

/// What a subscriber brings: `token` as given in its URL (or command),
/// else its bearer header; its cookies for the authorize callback.
pub fn credentials(
    token: Option<String>,
    headers: &HeaderMap,
    host_id: Option<&str>,
    peer: Option<SocketAddr>,
) -> Credentials {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Credentials {
        token: token.filter(|t| !t.is_empty()).or_else(|| bearer(headers)),
        cookie: text(header::COOKIE),
        authorization: text(header::AUTHORIZATION),
        host_id: host_id.map(str::to_string),
        ip: peer.map(|p| p.ip()),
    }
}

/// When the token that granted a subscription stops being valid (its
/// `exp`, with the clock skew allowed), as the hub counts time.
pub fn expiry(granted: &Granted) -> Option<Instant> {
    let expires = granted.expires? + crate::jwt::LEEWAY;
    let left = expires.saturating_sub(unix_now());
    Some(Instant::now() + Duration::from_secs(left))
}

#[cfg(test)]
mod tests {
    use super::query_token;

    #[test]
    fn tokens_in_query_strings() {
        assert_eq!(query_token(Some("a=1&token=mtd_x")), Some("mtd_x".into()));
        assert_eq!(query_token(Some("token=t")), Some("t".into()));
        assert_eq!(query_token(Some("tokens=t")), None);
        assert_eq!(query_token(None), None);
    }
}
