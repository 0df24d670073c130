//! Channels through the API: publish, read a channel, list them, empty one.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Serialize;
use serde_json::json;

use super::ApiToken;
use crate::names::{valid_channel_name, CHANNEL_NAME_RULE};
use crate::node::web::error;
use crate::node::{Node, PublishError};
use crate::store::accounts::Scope;

pub async fn publish(
    token: ApiToken,
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !valid_channel_name(&name) {
        return error(StatusCode::BAD_REQUEST, CHANNEL_NAME_RULE);
    }
    if let Err(refused) = token.require_on(Scope::Publish, &name) {
        return refused;
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let text = if is_json {
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(serde_json::Value::Object(object)) => match object.get("text") {
                Some(serde_json::Value::String(text)) => Bytes::from(text.clone()),
                _ => return error(StatusCode::BAD_REQUEST, "expected {\"text\": \"...\"}"),
            },
            _ => return error(StatusCode::BAD_REQUEST, "expected {\"text\": \"...\"}"),
        }
    } else {
        body
    };
    let id = match node.publish(name.as_bytes(), &text).await {
        Ok(id) => id,
        Err(e @ PublishError::TooLong) => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string())
        }
        Err(e @ PublishError::BadChannel) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    (
        StatusCode::CREATED,
        Json(json!({"id": id, "channel": name})),
    )
        .into_response()
}

#[derive(Serialize)]
struct ChannelRow {
    name: String,
    messages: usize,
    subscribers: usize,
    last_id: Option<u64>,
}

pub async fn list(token: ApiToken, State(node): State<Arc<Node>>) -> Response {
    if let Err(refused) = token.require(Scope::Manage) {
        return refused;
    }
    let rows: Vec<ChannelRow> = node
        .list_channels()
        .into_iter()
        .map(|c| ChannelRow {
            name: String::from_utf8_lossy(&c.name).into_owned(),
            messages: c.messages,
            subscribers: c.subscribers,
            last_id: c.last_id,
        })
        .collect();
    Json(rows).into_response()
}

/// One channel with its cached messages: for a token that may subscribe to
/// it, or manage.
pub async fn show(
    token: ApiToken,
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
) -> Response {
    let reader = token.0.may_on(Scope::Subscribe, name.as_bytes());
    if !reader {
        if let Err(refused) = token.require(Scope::Manage) {
            return refused;
        }
    }
    let Some(summary) = node
        .list_channels()
        .into_iter()
        .find(|c| c.name.as_ref() == name.as_bytes())
    else {
        return error(StatusCode::NOT_FOUND, "no such channel");
    };
    let messages: Vec<serde_json::Value> = node
        .hub
        .messages(name.as_bytes())
        .iter()
        .map(|m| json!({"id": m.id, "text": String::from_utf8_lossy(&m.text), "ts": m.timestamp}))
        .collect();
    Json(json!({
        "name": name,
        "subscribers": summary.subscribers,
        "last_id": summary.last_id,
        "messages": messages,
    }))
    .into_response()
}

/// Who is in a channel now: for a token that may subscribe to it, or
/// manage. A channel without members answers an empty list.
pub async fn presence(
    token: ApiToken,
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
) -> Response {
    if !token.0.may_on(Scope::Subscribe, name.as_bytes()) {
        if let Err(refused) = token.require_on(Scope::Manage, &name) {
            return refused;
        }
    }
    let members = node.presence.members(&node.hub, name.as_bytes());
    let connections: usize = members.iter().map(|m| m.connections.len()).sum();
    let members: Vec<serde_json::Value> = members
        .iter()
        .map(crate::node::presence::member_detail)
        .collect();
    Json(json!({
        "channel": name,
        "count": members.len(),
        "connections": connections,
        "members": members,
    }))
    .into_response()
}

pub async fn clear(
    token: ApiToken,
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
) -> Response {
    if let Err(refused) = token.require_on(Scope::Manage, &name) {
        return refused;
    }
    match node.clear_channel(name.as_bytes()).await {
        Ok(Some(cleared)) => Json(json!({"cleared": cleared})).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such channel"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}
