//! The admin UI's security mechanics (the pages are `login.rs` and
//! `setup.rs`): who may use it, and how forms are protected.
//!
//! - **Sessions**: signing in (or setting the first password) creates a new
//!   session in the database and puts its random token in the
//!   `meteord_session` cookie (HttpOnly, SameSite=Strict, Path=/, and
//!   Secure when [`super::Options::secure_cookies`] is set or a trusted
//!   proxy took the request over https). A new token is
//!   issued at every sign-in and any session the browser had is ended, so a
//!   token planted before sign-in is worthless. Signing out ends the session
//!   in the database.
//! - **CSRF**: every form POST must carry the session's CSRF token in a
//!   `csrf` field (compared in constant time), and must not come from
//!   another site: a `Sec-Fetch-Site` other than `same-origin`/`none`, or an
//!   `Origin` that is not this UI's own, is refused — even another port of
//!   the same host (the subscriber port serves user files) is another origin.
//! - **Sign-in rate limit**: 5 failed attempts per client address (IPv6: per
//!   /64) in a sliding minute; further attempts get 429 until the window
//!   moves on. A successful sign-in clears the client's failures.
//! - **First run**: the page that sets the first password answers only to a
//!   `Host` that is an IP address or a name without dots (`localhost`), so
//!   a DNS-rebinding page cannot set the password before the owner does.
//!
//! Nothing here logs a password or token.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tracing::warn;

use super::view::{self, cookie, message, see_other, see_other_with, Flash, Layout, FLASH_COOKIE};
use super::{blocking, Admin};
use crate::node::web;
use crate::store::accounts::{Session, MIN_PASSWORD};

/// The session cookie.
pub const SESSION_COOKIE: &str = "meteord_session";
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Failed sign-ins allowed per client in [`LIMIT_WINDOW`].
pub const MAX_FAILURES: usize = 5;
pub const LIMIT_WINDOW: Duration = Duration::from_secs(60);
/// Longest password accepted (argon2 of megabytes would be a cheap DoS).
const MAX_PASSWORD: usize = 1024;
/// Password hashes (about 19 MiB of memory each) run at the same time.
pub const HASHES_AT_ONCE: usize = 2;
/// How long a password check waits for its turn before the client is told
/// to come back.
pub const HASH_WAIT: Duration = Duration::from_secs(10);

/// Recent failed sign-ins by client.
#[derive(Default)]
pub struct Limiter {
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl Limiter {
    /// IPv6 clients are counted by /64, which one host usually holds whole.
    fn key(ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
            v4 => v4,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, VecDeque<Instant>>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count an attempt from this client, before any password is hashed:
    /// false (and not counted) once it has used up its attempts. A right
    /// password clears the count ([`Limiter::clear`]), so only failures
    /// stay counted.
    pub fn begin(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() > 4096 {
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < LIMIT_WINDOW)
            });
        }
        let times = map.entry(Self::key(ip)).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= LIMIT_WINDOW)
        {
            times.pop_front();
        }
        if times.len() >= MAX_FAILURES {
            return false;
        }
        times.push_back(now);
        true
    }

    pub fn clear(&self, ip: IpAddr) {
        self.lock().remove(&Self::key(ip));
    }
}

/// A cookie's value from the request.
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// Session tokens are 64 hex digits; anything else is not looked up.
pub fn looks_like_token(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Compare secrets without an early exit.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Did this request come from a page of this UI (or straight from the
/// user, e.g. a bookmark)? Browsers say so in `Sec-Fetch-Site` and
/// `Origin`; other clients send neither.
pub fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return false;
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        return origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host));
    }
    true
}

/// The address a connection reached this UI on (a request extension set
/// by the listener).
#[derive(Clone, Copy)]
pub struct LocalAddr(pub Option<SocketAddr>);

/// May a first run answer to this `Host`? Only this machine's own names:
/// loopback addresses, `localhost`, the address the request came in on,
/// and the machine's name — so that a DNS-rebinding page (its own name,
/// pointed at this machine) cannot set the password before the owner does.
pub fn first_run_host(headers: &HeaderMap, local: Option<SocketAddr>) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return true; // HTTP/1.0 without Host: not a browser
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    if let Ok(ip) = name.parse::<IpAddr>() {
        let ip = crate::node::web::canonical(ip);
        return ip.is_loopback()
            || local.is_some_and(|l| crate::node::web::canonical(l.ip()) == ip);
    }
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" {
        return true;
    }
    crate::config::machine_name().is_some_and(|machine| {
        let machine = machine.to_ascii_lowercase();
        name == machine || name == format!("{machine}.local")
    })
}

/// Who sent a request, as far as the admin UI cares.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    /// Its address: a trusted proxy's client (TrustedProxies), else the
    /// connection's peer (unspecified when the router runs without
    /// connection info).
    pub ip: IpAddr,
    /// On this machine, and not relayed by a proxy that is not trusted.
    pub local: bool,
    /// Its cookies must be `Secure`: this UI serves TLS, or a trusted proxy
    /// took the request over https.
    pub secure: bool,
}

impl Client {
    pub fn of(parts: &Parts, admin: &Admin) -> Client {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        let config = admin.node.config.load();
        let proxies = &config.trusted_proxies;
        Client {
            ip: web::client_ip(peer, &parts.headers, proxies),
            local: web::from_this_machine(peer, &parts.headers, proxies),
            secure: admin.options.secure_cookies
                || web::forwarded_https(peer, &parts.headers, proxies),
        }
    }
}

impl FromRequestParts<Arc<Admin>> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        admin: &Arc<Admin>,
    ) -> Result<Self, Self::Rejection> {
        Ok(Client::of(parts, admin))
    }
}

/// A signed-in user, with the notice left for this page, if any.
pub struct Viewer {
    pub token: String,
    pub session: Session,
    pub flash: Option<Flash>,
    secure: bool,
}

impl Viewer {
    /// The signed-in user of this request, if any.
    pub async fn find(parts: &Parts, admin: &Admin) -> Result<Option<Viewer>, Response> {
        let Some(token) =
            read_cookie(&parts.headers, SESSION_COOKIE).filter(|t| looks_like_token(t))
        else {
            return Ok(None);
        };
        let accounts = admin.accounts()?;
        let token = token.to_string();
        let lookup = token.clone();
        let Some(session) = blocking(move || accounts.session(&lookup)).await? else {
            return Ok(None);
        };
        Ok(Some(Viewer {
            token,
            session,
            flash: read_cookie(&parts.headers, FLASH_COOKIE).and_then(Flash::decode),
            secure: Client::of(parts, admin).secure,
        }))
    }

    pub fn layout(&self, title: impl Into<String>, nav: &'static str) -> Layout {
        Layout {
            title: title.into(),
            nav,
            user: self.session.user.clone(),
            csrf: self.session.csrf.clone(),
            flash: self.flash.clone(),
            version: crate::config::VERSION,
        }
    }

    /// Render a page for this user (the notice, now shown, is dropped).
    pub fn page<T: Template>(&self, status: StatusCode, template: &T) -> Response {
        let mut response = view::render(status, template);
        if self.flash.is_some() {
            response.headers_mut().append(
                header::SET_COOKIE,
                cookie(FLASH_COOKIE, "", Some(0), self.secure),
            );
        }
        response
    }

    /// Are this user's cookies `Secure`?
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Redirect with a notice for the next page.
    pub fn redirect(&self, location: &str, flash: Flash) -> Response {
        see_other_with(location, flash, self.secure)
    }
}

impl FromRequestParts<Arc<Admin>> for Viewer {
    type Rejection = Response;

    /// Pages without a session lead to the sign-in page; anything else is
    /// refused.
    async fn from_request_parts(parts: &mut Parts, admin: &Arc<Admin>) -> Result<Self, Response> {
        if let Some(viewer) = Viewer::find(parts, admin).await? {
            return Ok(viewer);
        }
        if parts.method == Method::GET || parts.method == Method::HEAD {
            let wanted = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            let location = if wanted == "/" {
                "/login".to_string()
            } else {
                format!("/login?next={}", view::encode(&wanted))
            };
            Err(see_other(&location))
        } else {
            Err(unauthorized())
        }
    }
}

fn unauthorized() -> Response {
    message(
        StatusCode::UNAUTHORIZED,
        "Sign in first",
        "This action needs a signed-in session. Sign in and try again.",
    )
}

pub fn forbidden(text: &str) -> Response {
    message(StatusCode::FORBIDDEN, "Refused", text)
}

/// An urlencoded form body.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Option<Form> {
        serde_urlencoded::from_bytes(body).ok().map(Form)
    }

    /// The first value of a field.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A field's value, or "" when absent.
    pub fn text(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }

    /// Every value of a repeated field (checkboxes).
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Was a checkbox ticked?
    pub fn checked(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

async fn read_form(
    parts: Parts,
    body: axum::body::Body,
    admin: &Arc<Admin>,
) -> Result<Form, Response> {
    let bytes = Bytes::from_request(Request::from_parts(parts, body), admin)
        .await
        .map_err(IntoResponse::into_response)?;
    Form::parse(&bytes).ok_or_else(|| {
        message(
            StatusCode::BAD_REQUEST,
            "Bad form",
            "The form could not be read.",
        )
    })
}

/// A form POST of a signed-in user, checked for CSRF.
pub struct Action {
    pub viewer: Viewer,
    pub form: Form,
}

impl FromRequest<Arc<Admin>> for Action {
    type Rejection = Response;

    async fn from_request(request: Request, admin: &Arc<Admin>) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        let Some(viewer) = Viewer::find(&parts, admin).await? else {
            return Err(unauthorized());
        };
        if !same_origin(&parts.headers) {
            let client = Client::of(&parts, admin).ip;
            warn!(%client, path = parts.uri.path(), "admin UI: refused a cross-site form");
            return Err(forbidden("This form was sent from another site."));
        }
        let client = Client::of(&parts, admin).ip;
        let path = parts.uri.path().to_string();
        let form = read_form(parts, body, admin).await?;
        let valid = form
            .get("csrf")
            .is_some_and(|csrf| same_secret(csrf, &viewer.session.csrf));
        if !valid {
            warn!(%client, %path, "admin UI: refused a form without a valid CSRF token");
            return Err(forbidden(
                "The form's security token is missing or out of date. Reload the page and try again.",
            ));
        }
        Ok(Action { viewer, form })
    }
}

/// A form POST that needs no session (sign-in, first run), still refused
/// from other sites.
pub struct PublicForm(pub Form);

impl FromRequest<Arc<Admin>> for PublicForm {
    type Rejection = Response;

    async fn from_request(request: Request, admin: &Arc<Admin>) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        if !same_origin(&parts.headers) {
            return Err(forbidden("This form was sent from another site."));
        }
        Ok(PublicForm(read_form(parts, body, admin).await?))
    }
}

/// Where to go after signing in: a path of this UI, nothing else.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

/// Sign in: end any session the browser had, start a new one, set the
/// cookie and go on.
pub async fn start_session(
    admin: &Admin,
    client: Client,
    headers: &HeaderMap,
    user: String,
    location: &str,
    flash: Option<Flash>,
) -> Result<Response, Response> {
    let accounts = admin.accounts()?;
    let old = read_cookie(headers, SESSION_COOKIE)
        .filter(|t| looks_like_token(t))
        .map(str::to_string);
    let new = blocking(move || {
        if let Some(old) = old {
            accounts.end_session(&old)?;
        }
        accounts.create_session(&user, SESSION_TTL)
    })
    .await?;
    let secure = client.secure;
    let mut response = match flash {
        Some(flash) => see_other_with(location, flash, secure),
        None => see_other(location),
    };
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie(
            SESSION_COOKIE,
            &new.token,
            Some(SESSION_TTL.as_secs()),
            secure,
        ),
    );
    Ok(response)
}

/// Check a new password and its confirmation.
pub fn check_new_password(password: &str, again: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(format!(
            "The password needs at least {MIN_PASSWORD} characters."
        ));
    }
    if password.len() > MAX_PASSWORD {
        return Err(format!(
            "The password can have at most {MAX_PASSWORD} bytes."
        ));
    }
    if password != again {
        return Err("The two passwords differ.".into());
    }
    Ok(())
}

/// What a password check found.
pub enum Verdict {
    /// This client failed too often lately: not even checked.
    Blocked,
    Wrong,
    Right,
}

/// Check a user's password, counting attempts per client address: the
/// one path for signing in and for confirming the current password. The
/// attempt is counted before the (deliberately slow, memory-hungry) hash,
/// and only [`HASHES_AT_ONCE`] hashes run at a time, so a flood of guesses
/// costs neither memory nor more than a few attempts.
pub async fn verify_password(
    admin: &Admin,
    ip: IpAddr,
    user: &str,
    password: &str,
) -> Result<Verdict, Response> {
    if !admin.limiter.begin(ip) {
        warn!(client = %ip, "admin UI: sign-in refused, too many failed attempts");
        return Ok(Verdict::Blocked);
    }
    let right = if password.is_empty() || password.len() > MAX_PASSWORD || user.is_empty() {
        false
    } else {
        let accounts = admin.accounts()?;
        let (user, password) = (user.to_string(), password.to_string());
        admin
            .hashing(move || accounts.verify_password(&user, &password))
            .await?
    };
    if right {
        admin.limiter.clear(ip);
        Ok(Verdict::Right)
    } else {
        warn!(client = %ip, "admin UI: failed sign-in (wrong password)");
        Ok(Verdict::Wrong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn limiter_counts_failures_per_client() {
        let limiter = Limiter::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(limiter.begin(a));
        }
        assert!(!limiter.begin(a));
        assert!(limiter.begin(b));
        limiter.clear(a);
        assert!(limiter.begin(a));
        // One /64 is one client.
        let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2::ffff".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            limiter.begin(v6a);
        }
        assert!(!limiter.begin(v6b));
    }

    #[test]
    fn origins() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(same_origin(&headers(&[("host", "127.0.0.1:4672")])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:4672"),
            ("origin", "http://127.0.0.1:4672"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:4672"),
            ("origin", "http://127.0.0.1:4670"),
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:4672"),
            ("sec-fetch-site", "same-site"),
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:4672"),
            ("origin", "null"),
        ])));
    }

    #[test]
    fn first_run_hosts() {
        let local: SocketAddr = "192.168.1.5:4672".parse().unwrap();
        let host = |h: &'static str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, HeaderValue::from_static(h));
            first_run_host(&m, Some(local))
        };
        assert!(host("127.0.0.1:4672"));
        assert!(host("localhost:4672"));
        assert!(host("[::1]:4672"));
        assert!(host("192.168.1.5:4672"), "the address it came in on");
        assert!(!host("192.168.1.6:4672"));
        assert!(!host("evil"), "a name without dots is not enough");
        assert!(!host("evil.example.com:4672"));
        assert!(!host("[evil.com]:80"));
        if let Some(machine) = crate::config::machine_name() {
            let mut m = HeaderMap::new();
            m.insert(
                header::HOST,
                HeaderValue::from_str(&format!("{machine}:4672")).unwrap(),
            );
            assert!(first_run_host(&m, None));
        }
    }

    #[test]
    fn next_paths() {
        assert_eq!(safe_next(Some("/channels/x")), "/channels/x");
        assert_eq!(safe_next(Some("//evil.com")), "/");
        assert_eq!(safe_next(Some("https://evil.com")), "/");
        assert_eq!(safe_next(Some("/\\evil.com")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn secrets_and_cookies() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; meteord_session=xyz; b=2"),
        );
        assert_eq!(read_cookie(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(read_cookie(&headers, "c"), None);
    }
}
