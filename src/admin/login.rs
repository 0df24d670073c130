//! Signing in and out (`GET`/`POST /login`, `POST /logout`).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use tracing::info;

use super::security::{
    read_cookie, safe_next, start_session, verify_password, Action, Client, PublicForm, Verdict,
    Viewer, SESSION_COOKIE,
};
use super::view::{self, cookie, message, see_other, Flash, FLASH_COOKIE};
use super::{blocking, Admin};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    version: &'static str,
    username: String,
    next: String,
    error: Option<String>,
    flash: Option<Flash>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn login_page(
    State(admin): State<Arc<Admin>>,
    Query(query): Query<NextQuery>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let secure = Client::of(&parts, &admin).secure;
    match Viewer::find(&parts, &admin).await {
        Ok(Some(_)) => return see_other(&safe_next(query.next.as_deref())),
        Ok(None) => {}
        Err(response) => return response,
    }
    let flash = read_cookie(&parts.headers, FLASH_COOKIE).and_then(Flash::decode);
    let mut response = view::render(
        StatusCode::OK,
        &LoginPage {
            version: crate::config::VERSION,
            username: "admin".into(),
            next: safe_next(query.next.as_deref()),
            error: None,
            flash: flash.clone(),
        },
    );
    if flash.is_some() {
        response.headers_mut().append(
            header::SET_COOKIE,
            cookie(FLASH_COOKIE, "", Some(0), secure),
        );
    }
    response
}

pub async fn login(
    State(admin): State<Arc<Admin>>,
    client: Client,
    headers: HeaderMap,
    PublicForm(form): PublicForm,
) -> Response {
    let next = safe_next(form.get("next"));
    let username = form.text("username").trim().to_string();
    let verdict = match verify_password(&admin, client.ip, &username, form.text("password")).await {
        Ok(verdict) => verdict,
        Err(response) => return response,
    };
    match verdict {
        Verdict::Blocked => {
            let mut response = message(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                "There were too many failed sign-ins from your address. Wait a minute, then try again.",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            response
        }
        Verdict::Wrong => view::render(
            StatusCode::UNAUTHORIZED,
            &LoginPage {
                version: crate::config::VERSION,
                username,
                next,
                error: Some("Wrong user name or password.".into()),
                flash: None,
            },
        ),
        Verdict::Right => {
            info!(client = %client.ip, user = %username, "admin UI: signed in");
            start_session(&admin, client, &headers, username, &next, None)
                .await
                .unwrap_or_else(|r| r)
        }
    }
}

pub async fn logout(State(admin): State<Arc<Admin>>, action: Action) -> Response {
    let viewer = action.viewer;
    let accounts = match admin.accounts() {
        Ok(accounts) => accounts,
        Err(response) => return response,
    };
    let token = viewer.token.clone();
    if let Err(response) = blocking(move || accounts.end_session(&token)).await {
        return response;
    }
    info!(user = %viewer.session.user, "admin UI: signed out");
    let mut response = viewer.redirect("/login", Flash::ok("Signed out."));
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie(SESSION_COOKIE, "", Some(0), viewer.secure()),
    );
    response
}
