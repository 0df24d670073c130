//! The admin web UI, on its own listener (127.0.0.1:4672 by default).
//!
//! Server-rendered pages (askama templates in `ui/templates`) with a little
//! hand-written JavaScript and CSS (`ui/static`, built into the binary).
//!
//! | route | does |
//! |---|---|
//! | `GET /setup`, `POST /setup` | first run: set the admin password (then logged in) |
//! | `GET /login`, `POST /login` | sign in (5 failures per client per minute, then 429) |
//! | `POST /logout` | end the session |
//! | `GET /` | dashboard; `GET /live` streams a stats sample every second (SSE) |
//! | `GET /channels` | channels, with search (`?q=`); `?open=<name>` goes to one |
//! | `GET /channels/{name}` | cached messages, members present, subscribers, publish form |
//! | `POST /channels/{name}/publish`, `/clear`, `/kick` | publish, empty the cache, drop a subscriber |
//! | `GET /channel-settings`, `POST /channel-settings`, `POST /channel-settings/delete` | channel rules |
//! | `GET /settings`, `POST /settings`, `POST /settings/reset` | global settings |
//! | `GET /tokens`, `POST /tokens`, `POST /tokens/{id}/revoke`, `POST /password` | API tokens, password |
//! | `GET /webhooks`, `POST /webhooks/retry`, `POST /webhooks/test` | webhook deliveries, dead letters, a test event |
//! | `POST /publishing` | pause or resume publishing |
//! | `POST /update/check`, `POST /update/install`, `POST /update/rollback` | look for an update; install it and restart; go back to the kept version |
//! | `GET /static/{file}` | CSS, JavaScript, icon |
//!
//! Security: see `security.rs`. Every page but the login, first-run and
//! static ones needs a session; every form POST carries the session's CSRF
//! token and must come from this origin.
//!
//! One file per page: `dashboard.rs`, `channels.rs`, `channel_settings.rs`,
//! `settings.rs`, `tokens.rs`, `webhooks.rs`, `login.rs`, `setup.rs`, plus the dashboard's
//! actions (`appliance.rs`) and live figures (`live.rs`).

mod appliance;
mod certificate;
mod channel_settings;
mod channels;
mod dashboard;
pub mod legacy;
mod live;
mod login;
mod security;
mod settings;
mod setup;
mod tokens;
mod view;
mod webhooks;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use rust_embed::RustEmbed;
use tokio::net::TcpListener;

use serde::Deserialize;

use crate::node::listen::{self, accept_loop};
use crate::node::web::{hsts_layer, serve_http};
use crate::node::{Node, MAX_TEXT};

/// The admin UI's static files.
#[derive(RustEmbed)]
#[folder = "ui/static/"]
struct UiStatic;

/// Choices about how the admin UI runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Mark cookies `Secure` (when the UI is reached over https, e.g.
    /// behind a TLS-terminating proxy).
    pub secure_cookies: bool,
}

/// The admin UI's state: the server's, plus its own.
pub(crate) struct Admin {
    node: Arc<Node>,
    options: Options,
    limiter: security::Limiter,
    live: live::Live,
    /// Set once an admin password exists (it is never removed).
    has_users: AtomicBool,
    /// Where this UI listens, when known.
    local_addr: Option<SocketAddr>,
    /// Turns to compute a password hash (see [`security::verify_password`]).
    hashes: tokio::sync::Semaphore,
}

impl Admin {
    fn new(node: Arc<Node>, options: Options, local_addr: Option<SocketAddr>) -> Admin {
        Admin {
            node,
            options,
            limiter: security::Limiter::default(),
            live: live::Live::new(),
            has_users: AtomicBool::new(false),
            local_addr,
            hashes: tokio::sync::Semaphore::new(security::HASHES_AT_ONCE),
        }
    }

    /// Hash or check a password off the async threads, at most
    /// [`security::HASHES_AT_ONCE`] at a time: each takes about 19 MiB.
    async fn hashing<T, E>(
        &self,
        work: impl FnOnce() -> Result<T, E> + Send + 'static,
    ) -> Result<T, Response>
    where
        T: Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let turn = tokio::time::timeout(security::HASH_WAIT, self.hashes.acquire()).await;
        let Ok(Ok(_turn)) = turn else {
            let mut response = view::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy",
                "Too many sign-ins are being checked right now. Try again in a few seconds.",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return Err(response);
        };
        blocking(work).await
    }

    /// Has an admin password been set? (Cached once true.)
    async fn has_users(&self) -> Result<bool, Response> {
        if self.has_users.load(Ordering::Acquire) {
            return Ok(true);
        }
        let accounts = self.accounts()?;
        let has = blocking(move || accounts.has_users()).await?;
        if has {
            self.has_users.store(true, Ordering::Release);
        }
        Ok(has)
    }

    // A ready error page, as axum handlers return.
    #[allow(clippy::result_large_err)]
    fn accounts(&self) -> Result<Arc<crate::store::accounts::Accounts>, Response> {
        self.node.accounts.clone().ok_or_else(|| {
            view::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Database unavailable",
                "The admin UI keeps its password and sessions in the server's database, \
                 which could not be opened. The log says why.",
            )
        })
    }
}

/// Run database work off the async threads; a database error becomes a
/// 503 page (and a log line).
async fn blocking<T, E>(work: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, Response>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            tracing::error!("admin UI: database error: {e}");
            Err(view::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Database error",
                "The server's database could not be read or written. The log says why.",
            ))
        }
        Err(_) => Err(view::message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error",
            "The request could not be completed.",
        )),
    }
}

/// Run a settings change on the blocking pool: `Err` is the change's own
/// complaint (shown by the form); the outer `Err` a failure to run it.
async fn run<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<Result<T, String>, Response> {
    blocking(move || Ok::<_, std::convert::Infallible>(work())).await
}

/// `?edit=<key>`: the entry whose form a settings page opens.
#[derive(Deserialize)]
pub struct EditQuery {
    edit: Option<String>,
}

/// The admin routes, with default options.
pub fn router(node: Arc<Node>) -> Router {
    router_with(node, Options::default())
}

/// The admin routes.
pub fn router_with(node: Arc<Node>, options: Options) -> Router {
    app(Arc::new(Admin::new(node, options, None)))
}

fn app(admin: Arc<Admin>) -> Router {
    // A published message may be MAX_TEXT bytes; form encoding can triple it.
    let body_limit = 3 * MAX_TEXT + 64 * 1024;
    Router::new()
        .route("/", get(dashboard::page))
        .route("/live", get(live::stream))
        .route("/setup", get(setup::setup_page).post(setup::setup))
        .route("/login", get(login::login_page).post(login::login))
        .route("/logout", post(login::logout))
        .route("/channels", get(channels::list))
        .route("/channels/{name}", get(channels::detail))
        .route("/channels/{name}/publish", post(channels::publish))
        .route("/channels/{name}/clear", post(channels::clear))
        .route("/channels/{name}/kick", post(channels::kick))
        .route(
            "/channel-settings",
            get(channel_settings::rules_page).post(channel_settings::save_rule),
        )
        .route(
            "/channel-settings/delete",
            post(channel_settings::delete_rule),
        )
        .route(
            "/settings",
            get(settings::settings_page).post(settings::save_setting),
        )
        .route("/settings/reset", post(settings::reset_setting))
        .route(
            "/tokens",
            get(tokens::tokens_page).post(tokens::create_token),
        )
        .route("/tokens/{id}/revoke", post(tokens::revoke_token))
        .route("/tokens/secret", post(tokens::generate_secret))
        .route("/password", post(tokens::change_password))
        .route("/webhooks", get(webhooks::page))
        .route("/webhooks/retry", post(webhooks::retry))
        .route("/webhooks/test", post(webhooks::test))
        .route("/publishing", post(appliance::set_publishing))
        .route("/update/check", post(appliance::check))
        .route("/update/install", post(appliance::install))
        .route("/update/rollback", post(appliance::rollback))
        .route("/static/{*path}", get(static_file))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(admin.clone(), first_run))
        .layer(middleware::from_fn(security_headers))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(admin)
}

/// Serve the admin UI until shutdown.
pub async fn serve(listener: TcpListener, node: Arc<Node>) {
    serve_with(listener, node, Options::default()).await
}

/// Serve the admin UI with these options until shutdown; over TLS (with
/// `Secure` cookies) when the server has a certificate.
pub async fn serve_with(listener: TcpListener, node: Arc<Node>, options: Options) {
    let tls = node.tls.clone();
    let options = Options {
        secure_cookies: options.secure_cookies || tls.is_some(),
    };
    let admin = Arc::new(Admin::new(
        node.clone(),
        options,
        listener.local_addr().ok(),
    ));
    tokio::spawn(live::sample(admin.clone()));
    let app = app(admin);
    accept_loop("admin", listener, node, move |tcp, peer, node| {
        let app = app.clone();
        let tls = tls.clone();
        async move {
            let local = tcp.local_addr().ok();
            let Some(conn) = listen::open(tcp, peer, tls.as_ref(), &node).await else {
                return;
            };
            let hsts_max_age = node.config.load().hsts_max_age;
            let app = app
                .layer(Extension(ConnectInfo(peer)))
                .layer(Extension(security::LocalAddr(local)))
                .layer(hsts_layer(conn.is_tls(), hsts_max_age));
            serve_http(conn, app, &node.shutdown).await;
        }
    })
    .await
}

/// Until an admin password exists, every page leads to the first-run page.
async fn first_run(State(admin): State<Arc<Admin>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path.starts_with("/static/") || path == "/setup" {
        return next.run(request).await;
    }
    match admin.has_users().await {
        Ok(true) => next.run(request).await,
        Ok(false) => view::see_other("/setup"),
        Err(response) => response,
    }
}

/// Headers on every answer: no framing, no sniffing, scripts and styles
/// only from this origin, pages not cached.
async fn security_headers(request: Request, next: Next) -> Response {
    let is_static = request.uri().path().starts_with("/static/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not no-referrer: with it, browsers send `Origin: null` on form posts.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !is_static && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn not_found() -> Response {
    view::message(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page in the admin UI.",
    )
}

/// A file of `ui/static`, revalidated by its hash.
async fn static_file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some(file) = UiStatic::get(&path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let etag = format!(
        "\"{}\"",
        file.metadata
            .sha256_hash()
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let cache = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, "no-cache".to_string()),
    ];
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    let content_type = match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    (
        [(header::CONTENT_TYPE, content_type.to_string())],
        cache,
        file.data.into_owned(),
    )
        .into_response()
}
