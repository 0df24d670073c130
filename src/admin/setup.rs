//! The first run: setting the admin password (`GET`/`POST /setup`), after
//! which the first user is signed in.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tracing::info;

use super::security::{
    check_new_password, forbidden, host_is_local_name, start_session, ClientIp, PublicForm,
};
use super::view::{self, see_other, Flash};
use super::{blocking, Admin};
use crate::store::accounts::MIN_PASSWORD;

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    version: &'static str,
    username: String,
    min_password: usize,
    error: Option<String>,
}

fn setup_form(status: StatusCode, username: String, error: Option<String>) -> Response {
    view::render(
        status,
        &SetupPage {
            version: env!("CARGO_PKG_VERSION"),
            username,
            min_password: MIN_PASSWORD,
            error,
        },
    )
}

fn local_host_only() -> Response {
    forbidden(
        "The first password can only be set when the admin UI is opened by IP address \
         (such as http://127.0.0.1:4672/) or as localhost.",
    )
}

pub async fn setup_page(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Response {
    match admin.has_users().await {
        Ok(true) => return see_other("/login"),
        Ok(false) => {}
        Err(response) => return response,
    }
    if !host_is_local_name(&headers) {
        return local_host_only();
    }
    setup_form(StatusCode::OK, "admin".into(), None)
}

pub async fn setup(
    State(admin): State<Arc<Admin>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PublicForm(form): PublicForm,
) -> Response {
    match admin.has_users().await {
        Ok(true) => {
            return forbidden("The admin password is already set. Sign in instead.");
        }
        Ok(false) => {}
        Err(response) => return response,
    }
    if !host_is_local_name(&headers) {
        return local_host_only();
    }
    let username = form.text("username").trim().to_string();
    if username.is_empty()
        || username.chars().count() > 64
        || username
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return setup_form(
            StatusCode::UNPROCESSABLE_ENTITY,
            username,
            Some("The user name is 1 to 64 characters, without spaces.".into()),
        );
    }
    if let Err(error) = check_new_password(form.text("password"), form.text("password2")) {
        return setup_form(StatusCode::UNPROCESSABLE_ENTITY, username, Some(error));
    }
    let accounts = match admin.accounts() {
        Ok(accounts) => accounts,
        Err(response) => return response,
    };
    let (user, password) = (username.clone(), form.text("password").to_string());
    let created = match blocking(move || accounts.create_first_user(&user, &password)).await {
        Ok(created) => created,
        Err(response) => return response,
    };
    if !created {
        return see_other("/login");
    }
    admin
        .has_users
        .store(true, std::sync::atomic::Ordering::Release);
    info!(client = %ip, user = %username, "admin UI: admin password set (first run)");
    start_session(
        &admin,
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
