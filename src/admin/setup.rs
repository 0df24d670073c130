//! The first run: setting the admin password (`GET`/`POST /setup`), after
//! which the first user is signed in.
//!
//! From this machine that is all it takes. From any other address the page
//! also asks for the setup code the server made at start (in its log, its
//! tray menu, `setup-code` in the data directory, and the `.deb`'s
//! post-install message): whoever reaches the page first on a network must
//! also be able to read this machine.

use std::sync::Arc;

use askama::Template;
use axum::extract::{FromRequest, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use tracing::{info, warn};

use super::security::{
    check_new_password, first_run_host, forbidden, start_session, Client, LocalAddr, PublicForm,
};
use super::view::{self, see_other, Flash};
use super::Admin;
use crate::store::accounts::MIN_PASSWORD;
use crate::store::setup_code;

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    version: &'static str,
    username: String,
    min_password: usize,
    /// Ask for the setup code (the client is not on this machine).
    needs_code: bool,
    error: Option<String>,
}

fn setup_form(
    status: StatusCode,
    username: String,
    needs_code: bool,
    error: Option<String>,
) -> Response {
    view::render(
        status,
        &SetupPage {
            version: crate::config::VERSION,
            username,
            min_password: MIN_PASSWORD,
            needs_code,
            error,
        },
    )
}

/// Why a first run may not go on, if it may not: the password is set, or
/// the request is not addressed to this machine by one of its own names.
async fn refusal(admin: &Admin, parts: &Parts) -> Option<Response> {
    match admin.has_users().await {
        Ok(true) => return Some(see_other("/login")),
        Ok(false) => {}
        Err(response) => return Some(response),
    }
    let local = parts.extensions.get::<LocalAddr>().and_then(|l| l.0);
    if !first_run_host(&parts.headers, local) {
        return Some(forbidden(
            "The first password can only be set when the admin UI is opened by this machine's \
             address or name (such as http://127.0.0.1:4672/ or http://localhost:4672/).",
        ));
    }
    None
}

pub async fn setup_page(State(admin): State<Arc<Admin>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    if let Some(response) = refusal(&admin, &parts).await {
        return response;
    }
    let client = Client::of(&parts, &admin);
    setup_form(StatusCode::OK, "admin".into(), !client.local, None)
}

pub async fn setup(State(admin): State<Arc<Admin>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Some(response) = refusal(&admin, &parts).await {
        return match admin.has_users().await {
            Ok(true) => forbidden("The admin password is already set. Sign in instead."),
            _ => response,
        };
    }
    let client = Client::of(&parts, &admin);
    let headers = parts.headers.clone();
    let form = match PublicForm::from_request(Request::from_parts(parts, body), &admin).await {
        Ok(PublicForm(form)) => form,
        Err(response) => return response,
    };
    let needs_code = !client.local;
    let username = form.text("username").trim().to_string();
    let refuse = |error: String| {
        setup_form(
            StatusCode::UNPROCESSABLE_ENTITY,
            username.clone(),
            needs_code,
            Some(error),
        )
    };
    if needs_code {
        // Guesses count like wrong passwords: a few a minute per client.
        if !admin.limiter.begin(client.ip) {
            warn!(client = %client.ip, "admin UI: first run refused, too many wrong setup codes");
            return refuse("Too many wrong setup codes from your address. Wait a minute.".into());
        }
        let code = admin.node.setup_code();
        let given = form.text("setup_code");
        if !code.is_some_and(|code| setup_code::matches(&code, given)) {
            warn!(client = %client.ip, "admin UI: first run from another machine with a wrong setup code");
            return refuse(
                "That setup code is not right. It is in the server's log, its tray menu and the \
                 file setup-code in its data directory."
                    .into(),
            );
        }
    }
    if username.is_empty()
        || username.chars().count() > 64
        || username
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return refuse("The user name is 1 to 64 characters, without spaces.".into());
    }
    if let Err(error) = check_new_password(form.text("password"), form.text("password2")) {
        return refuse(error);
    }
    let accounts = match admin.accounts() {
        Ok(accounts) => accounts,
        Err(response) => return response,
    };
    let (user, password) = (username.clone(), form.text("password").to_string());
    let created = match admin
        .hashing(move || accounts.create_first_user(&user, &password))
        .await
    {
        Ok(created) => created,
        Err(response) => return response,
    };
    if !created {
        return see_other("/login");
    }
    admin
        .has_users
        .store(true, std::sync::atomic::Ordering::Release);
    admin.node.finish_setup();
    admin.limiter.clear(client.ip);
    info!(client = %client.ip, user = %username, "admin UI: admin password set (first run)");
    start_session(
        &admin,
        client,
        &headers,
        username,
        "/",
        Some(Flash::ok(
            "The admin password is set and you are signed in. Welcome to meteord.",
        )),
    )
    .await
    .unwrap_or_else(|r| r)
}
