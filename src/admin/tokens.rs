//! API tokens, the secret of signed subscribe tokens, and the admin
//! password (`/tokens`, `POST /tokens/secret`, `POST /password`).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tracing::info;

use super::security::{self, verify_password, Action, Client, Verdict, Viewer};
use super::view::{self, Flash, Layout};
use super::{blocking, Admin};
use crate::config::Source;
use crate::store::accounts::{Scope, MIN_PASSWORD};

struct TokenRow {
    id: i64,
    name: String,
    created: u64,
    last_used: Option<u64>,
    scopes: String,
    channels: String,
}

/// Where subscribe tokens' keys stand.
struct SigningState {
    /// Where TokenSecret comes from, if it is set ("config file line 3"…).
    secret_from: Option<String>,
    public_key_file: Option<String>,
    /// A secret just generated, shown this once.
    new_secret: Option<String>,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    layout: Layout,
    tokens: Vec<TokenRow>,
    /// A token just made: (name, secret), shown this once.
    new_token: Option<(String, String)>,
    token_name: String,
    token_channels: String,
    token_error: Option<String>,
    password_error: Option<String>,
    min_password: usize,
    subscriber_port: u16,
    scopes: [&'static str; 3],
    signing: SigningState,
}

impl TokensPage {
    fn utc(&self, ts: impl view::UnixTime) -> String {
        view::utc(ts.unix())
    }
}

async fn tokens_view(admin: &Admin, viewer: &Viewer) -> Result<TokensPage, Response> {
    let accounts = admin.accounts()?;
    let tokens = blocking(move || accounts.tokens()).await?;
    Ok(TokensPage {
        layout: viewer.layout("API tokens and password", "tokens"),
        tokens: tokens
            .into_iter()
            .map(|t| TokenRow {
                id: t.id,
                name: t.name,
                created: t.created,
                last_used: t.last_used,
                scopes: t
                    .scopes
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                channels: t.channels.join(" "),
            })
            .collect(),
        new_token: None,
        token_name: String::new(),
        token_channels: "*".into(),
        token_error: None,
        password_error: None,
        min_password: MIN_PASSWORD,
        subscriber_port: admin.node.config.load().subscriber_port,
        scopes: Scope::ALL.map(Scope::name),
        signing: signing_state(admin),
    })
}

fn signing_state(admin: &Admin) -> SigningState {
    let config = admin.node.config.load();
    let secret_from = config
        .settings
        .iter()
        .find(|s| s.key == "TokenSecret" && s.mode.is_none() && !s.raw.trim().is_empty())
        .map(|s| match s.source {
            Source::Ui => "set in this admin UI".to_string(),
            ref other => other.to_string(),
        });
    SigningState {
        secret_from,
        public_key_file: config
            .token_public_key_file
            .as_ref()
            .map(|p| p.display().to_string()),
        new_secret: None,
    }
}

/// `POST /tokens/secret`: make a new TokenSecret (kept as a setting of the
/// admin UI) and show it once. Tokens signed with the old one stop working.
pub async fn generate_secret(
    State(admin): State<Arc<Admin>>,
    Action { viewer, .. }: Action,
) -> Response {
    let secret = crate::store::accounts::random_secret();
    let node = admin.node.clone();
    let value = secret.clone();
    match super::run(move || node.set_global_setting("TokenSecret", &value)).await {
        Err(response) => response,
        Ok(Err(error)) => viewer.redirect("/tokens", Flash::error(error)),
        Ok(Ok(())) => {
            info!(user = %viewer.session.user, "admin UI: generated a new token secret");
            let mut page = match tokens_view(&admin, &viewer).await {
                Ok(page) => page,
                Err(response) => return response,
            };
            page.signing.new_secret = Some(secret);
            // Rendered here rather than redirected, so the secret is shown
            // once and stored nowhere else.
            viewer.page(StatusCode::OK, &page)
        }
    }
}

pub async fn tokens_page(State(admin): State<Arc<Admin>>, viewer: Viewer) -> Response {
    match tokens_view(&admin, &viewer).await {
        Ok(page) => viewer.page(StatusCode::OK, &page),
        Err(response) => response,
    }
}

pub async fn create_token(
    State(admin): State<Arc<Admin>>,
    Action { viewer, form }: Action,
) -> Response {
    let name = form.text("name").trim().to_string();
    let channels_text = form.get("channels").unwrap_or("*").trim().to_string();
    // The page's form says which scopes it ticked; a form without the
    // checkboxes (a script) makes a token with every scope.
    let scopes: Vec<Scope> = if form.checked("scoped") {
        form.all("scopes").filter_map(Scope::from_name).collect()
    } else {
        Scope::ALL.to_vec()
    };
    let channels: Vec<String> = channels_text
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let problem = if name.is_empty() || name.chars().count() > 100 {
        Some("Give the token a name of 1 to 100 characters, such as the program that will use it.")
    } else if scopes.is_empty() {
        Some("Give the token at least one scope.")
    } else if channels.is_empty() || !channels.iter().all(|c| crate::names::valid_channel_name(c)) {
        Some("Channels are names or * patterns separated by spaces (* alone: every channel).")
    } else {
        None
    };
    if let Some(problem) = problem {
        let mut page = match tokens_view(&admin, &viewer).await {
            Ok(page) => page,
            Err(response) => return response,
        };
        page.token_name = name;
        page.token_channels = channels_text;
        page.token_error = Some(problem.into());
        return viewer.page(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    let accounts = match admin.accounts() {
        Ok(accounts) => accounts,
        Err(response) => return response,
    };
    let label = name.clone();
    let made = blocking(move || accounts.create_scoped_token(&label, &scopes, &channels));
    let (id, token) = match made.await {
        Ok(made) => made,
        Err(response) => return response,
    };
    info!(user = %viewer.session.user, token_id = id, name = %name, "admin UI: created an API token");
    let mut page = match tokens_view(&admin, &viewer).await {
        Ok(page) => page,
        Err(response) => return response,
    };
    page.new_token = Some((name, token));
    // Rendered here rather than redirected, so the secret is never stored.
    viewer.page(StatusCode::OK, &page)
}

pub async fn revoke_token(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<i64>,
    Action { viewer, .. }: Action,
) -> Response {
    let accounts = match admin.accounts() {
        Ok(accounts) => accounts,
        Err(response) => return response,
    };
    let flash = match blocking(move || accounts.revoke_token(id)).await {
        Err(response) => return response,
        Ok(true) => {
            info!(user = %viewer.session.user, token_id = id, "admin UI: revoked an API token");
            Flash::ok("The token is revoked; requests using it are refused from now on.")
        }
        Ok(false) => Flash::warn("That token was already revoked."),
    };
    viewer.redirect("/tokens", flash)
}

pub async fn change_password(
    State(admin): State<Arc<Admin>>,
    client: Client,
    headers: HeaderMap,
    Action { viewer, form }: Action,
) -> Response {
    let fail = |error: String| async {
        match tokens_view(&admin, &viewer).await {
            Ok(mut page) => {
                page.password_error = Some(error);
                viewer.page(StatusCode::UNPROCESSABLE_ENTITY, &page)
            }
            Err(response) => response,
        }
    };
    if let Err(error) = security::check_new_password(form.text("password"), form.text("password2"))
    {
        return fail(error).await;
    }
    let user = viewer.session.user.clone();
    match verify_password(&admin, client.ip, &user, form.text("current")).await {
        Err(response) => return response,
        Ok(Verdict::Blocked) => {
            return fail(
                "Too many wrong passwords from your address. Wait a minute, then try again.".into(),
            )
            .await
        }
        Ok(Verdict::Wrong) => return fail("The current password is wrong.".into()).await,
        Ok(Verdict::Right) => {}
    }
    let accounts = match admin.accounts() {
        Ok(accounts) => accounts,
        Err(response) => return response,
    };
    let new = form.text("password").to_string();
    match admin
        .hashing(move || accounts.set_password(&user, &new))
        .await
    {
        Err(response) => response,
        Ok(false) => fail("The password could not be changed.".into()).await,
        Ok(true) => {
            info!(user = %viewer.session.user, "admin UI: changed the admin password");
            // Changing the password ended every session, this one too.
            security::start_session(
                &admin,
                client,
                &headers,
                viewer.session.user.clone(),
                "/tokens",
                Some(Flash::ok(
                    "The password is changed. Other signed-in browsers were signed out.",
                )),
            )
            .await
            .unwrap_or_else(|r| r)
        }
    }
}
