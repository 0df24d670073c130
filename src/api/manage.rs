//! Managing the server through the API (`manage` scope): stats, channel
//! rules and private channels — everything the admin UI changes about
//! channels, so that a team can script its setup.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::ApiToken;
use crate::hub::{ChannelRule, Transport};
use crate::node::stats::stats_json;
use crate::node::web::error;
use crate::node::Node;
use crate::store::accounts::Scope;

pub async fn stats(token: ApiToken, State(node): State<Arc<Node>>) -> Response {
    if let Err(refused) = token.require(Scope::Manage) {
        return refused;
    }
    Json(stats_json(&node)).into_response()
}

pub async fn rules(token: ApiToken, State(node): State<Arc<Node>>) -> Response {
    if let Err(refused) = token.require(Scope::Manage) {
        return refused;
    }
    Json(node.channel_rules()).into_response()
}

/// A rule as the API takes it (the pattern is in the path); what is left
/// out inherits the global settings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    max_messages: Option<usize>,
    max_age: Option<u64>,
    persist: Option<bool>,
    transports: Option<Vec<Transport>>,
    #[serde(default = "yes")]
    anonymous: bool,
}

fn yes() -> bool {
    true
}

/// Run a change on the blocking pool (it writes the database); its own
/// complaint is a 422, a database that cannot be reached a 503.
async fn change<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(complaint)) => Err(error(StatusCode::UNPROCESSABLE_ENTITY, &complaint)),
        Err(_) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the change could not be made",
        )),
    }
}

pub async fn put_rule(
    token: ApiToken,
    State(node): State<Arc<Node>>,
    Path(pattern): Path<String>,
    body: Result<Json<RuleBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(refused) = token.require(Scope::Manage) {
        return refused;
    }
    let Json(body) = match body {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.body_text()),
    };
    let rule = ChannelRule {
        pattern: pattern.clone(),
        max_messages: body.max_messages,
        max_age: body.max_age,
        persist: body.persist,
        transports: body.transports,
        anonymous: body.anonymous,
    };
    let saved = rule.clone();
    match change(move || node.set_channel_rule(rule)).await {
        Ok(()) => Json(saved).into_response(),
        Err(response) => response,
    }
}

pub async fn delete_rule(
    token: ApiToken,
    State(node): State<Arc<Node>>,
    Path(pattern): Path<String>,
) -> Response {
    if let Err(refused) = token.require(Scope::Manage) {
        return refused;
    }
    let target = pattern.clone();
    match change(move || node.delete_channel_rule(&target)).await {
        Ok(true) => Json(json!({"deleted": pattern})).into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, "no rule has that pattern"),
        Err(response) => response,
    }
}

pub async fn private_channels(token: ApiToken, State(node): State<Arc<Node>>) -> Response {
    if let Err(refused) = token.require(Scope::Manage) {
        return refused;
    }
    Json(json!({"patterns": node.config.load().private_channels})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateBody {
    patterns: Vec<String>,
}

/// Replace the `PrivateChannels` patterns (kept as a setting made in the
/// admin UI, in force at once).
pub async fn put_private_channels(
    token: ApiToken,
    State(node): State<Arc<Node>>,
    body: Result<Json<PrivateBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(refused) = token.require(Scope::Manage) {
        return refused;
    }
    let Json(body) = match body {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.body_text()),
    };
    if let Some(bad) = body
        .patterns
        .iter()
        .find(|p| !crate::names::valid_channel_name(p))
    {
        let complaint =
            format!("'{bad}' is not a channel name or pattern (1 to 256 bytes, no spaces)");
        return error(StatusCode::UNPROCESSABLE_ENTITY, &complaint);
    }
    let value = body.patterns.join(" ");
    let changer = node.clone();
    match change(move || changer.set_global_setting("PrivateChannels", &value)).await {
        Ok(()) => Json(json!({"patterns": node.config.load().private_channels})).into_response(),
        Err(response) => response,
    }
}
