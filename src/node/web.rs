//! What the HTTP front ends (subscriber port, API, admin UI) share:
//! serving one connection with hyper, JSON errors, the client's address,
//! bearer tokens and their check, and the HSTS header.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tokio_util::sync::CancellationToken;
use tower_http::set_header::SetResponseHeaderLayer;

use super::Node;
use crate::store::accounts::TokenRights;

/// The largest request head the HTTP front ends read.
pub const MAX_HEAD: usize = 64 * 1024;

/// Serve HTTP/1.1 on one connection with `router` until the client leaves,
/// or shutdown comes and its current answer is done (a few seconds at most).
pub async fn serve_http<I>(io: I, router: axum::Router, shutdown: &CancellationToken)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    let service = hyper_util::service::TowerToHyperService::new(router);
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .max_buf_size(MAX_HEAD)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
        }
    }
}

/// A JSON error body: `{"error": "..."}`.
pub fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

pub fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

/// The client's address, for logs and the admin UI.
#[derive(Clone, Copy)]
pub struct PeerAddr(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<PeerAddr>()
            .copied()
            .unwrap_or(PeerAddr(None)))
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// What an API token made in the admin UI may do (`None`: it is not one).
/// Checked against the database off the async threads; the error is the
/// answer to give when no check was possible.
pub async fn token_rights(
    node: &Arc<Node>,
    token: String,
) -> Result<Option<TokenRights>, Response> {
    let Some(accounts) = node.accounts.clone() else {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable, so no token can be checked",
        ));
    };
    tokio::task::spawn_blocking(move || accounts.check_token(&token))
        .await
        .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "token check failed"))?
        .map_err(|e| {
            tracing::error!("checking an API token: {e}");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is unavailable",
            )
        })
}

/// An IPv4 address as itself, even when it arrives IPv4-mapped on an IPv6
/// socket (`::ffff:10.0.0.1`).
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn trusted(ip: IpAddr, proxies: &[ipnet::IpNet]) -> bool {
    proxies.iter().any(|net| net.contains(&ip))
}

/// The last value of a header that may be given several times or as a
/// list (`a, b`).
fn last_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect()
}

/// Who a request comes from. A trusted proxy (TrustedProxies) speaks for
/// its client in `X-Forwarded-For`: the last address there that is not a
/// trusted proxy itself. Anyone else's forwarding headers are ignored.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, proxies: &[ipnet::IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if !trusted(peer, proxies) {
        return peer;
    }
    for entry in last_values(headers, "x-forwarded-for").iter().rev() {
        match entry.parse::<IpAddr>().map(canonical) {
            Ok(ip) if trusted(ip, proxies) => continue,
            Ok(ip) => return ip,
            // Not an address: believe nothing further along.
            Err(_) => break,
        }
    }
    peer
}

/// Did a trusted proxy take this request over https (`X-Forwarded-Proto`)?
pub fn forwarded_https(peer: IpAddr, headers: &HeaderMap, proxies: &[ipnet::IpNet]) -> bool {
    trusted(canonical(peer), proxies)
        && last_values(headers, "x-forwarded-proto")
            .last()
            .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// Does a request come from this machine, and not through a proxy that
/// could be relaying someone else? (A proxy on this machine that is not a
/// trusted one makes every client look local.)
pub fn from_this_machine(peer: IpAddr, headers: &HeaderMap, proxies: &[ipnet::IpNet]) -> bool {
    let relayed = ["x-forwarded-for", "forwarded", "x-real-ip"]
        .iter()
        .any(|h| headers.contains_key(*h));
    if relayed && !trusted(canonical(peer), proxies) {
        return false;
    }
    client_ip(peer, headers, proxies).is_loopback()
}

/// Sets Strict-Transport-Security on a connection's answers: only over TLS,
/// and only with a max-age configured (HSTSMaxAge).
pub fn hsts_layer(tls: bool, max_age: u64) -> SetResponseHeaderLayer<Option<HeaderValue>> {
    let value = (tls && max_age > 0)
        .then(|| HeaderValue::from_str(&format!("max-age={max_age}")).ok())
        .flatten();
    SetResponseHeaderLayer::if_not_present(header::STRICT_TRANSPORT_SECURITY, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn forwarded_addresses_only_from_trusted_proxies() {
        let proxies: Vec<ipnet::IpNet> = vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let xff = headers(&[("x-forwarded-for", "203.0.113.9, 10.1.2.3")]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &xff, &proxies),
            ip("203.0.113.9")
        );
        assert_eq!(client_ip(ip("192.0.2.1"), &xff, &proxies), ip("192.0.2.1"));
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &xff, &proxies),
            ip("203.0.113.9")
        );
        let spoof = headers(&[("x-forwarded-for", "203.0.113.9, junk")]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &spoof, &proxies),
            ip("127.0.0.1")
        );
        assert_eq!(client_ip(ip("127.0.0.1"), &xff, &[]), ip("127.0.0.1"));
        let https = headers(&[("x-forwarded-proto", "https")]);
        assert!(forwarded_https(ip("127.0.0.1"), &https, &proxies));
        assert!(!forwarded_https(ip("192.0.2.1"), &https, &proxies));
        // A local proxy that is not trusted: its clients are not local.
        assert!(from_this_machine(ip("127.0.0.1"), &HeaderMap::new(), &[]));
        assert!(!from_this_machine(ip("127.0.0.1"), &xff, &[]));
        assert!(!from_this_machine(ip("127.0.0.1"), &xff, &proxies));
        let local = headers(&[("x-forwarded-for", "127.0.0.1")]);
        assert!(from_this_machine(ip("127.0.0.1"), &local, &proxies));
        assert!(!from_this_machine(
            ip("192.0.2.1"),
            &HeaderMap::new(),
            &proxies
        ));
    }
}
