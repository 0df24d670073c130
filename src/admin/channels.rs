//! Channels: the list, one channel's messages and subscribers, publishing,
//! clearing a cache and dropping a subscriber.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tracing::info;

use super::legacy::{js_escape, legacy_problems};
use super::security::{Action, Viewer};
use super::view::{self, Flash, Layout};
use super::Admin;
use crate::hub::unix_now;
use crate::node::{PublishError, MAX_TEXT};

/// Rows shown at most in the channel list (search to narrow it).
const MAX_ROWS: usize = 500;
/// Cached messages shown at most on a channel's page.
const MAX_MESSAGES: usize = 200;
/// Message text shown at most, in characters.
const MAX_SHOWN: usize = 2000;

/// Channel names the UI publishes to: what ADDMESSAGE could.
fn valid_channel(name: &str) -> bool {
    crate::names::valid_channel_name(name)
}

struct ChannelRow {
    name: String,
    messages: usize,
    subscribers: usize,
    last_id: Option<u64>,
    last_time: Option<u64>,
    /// Cached messages of the last minute.
    last_minute: usize,
}

impl ChannelRow {
    fn path(&self) -> String {
        view::channel_path(&self.name)
    }
}

#[derive(Template)]
#[template(path = "channels.html")]
struct ChannelsPage {
    layout: Layout,
    query: String,
    rows: Vec<ChannelRow>,
    total: usize,
    matched: usize,
    open_error: Option<String>,
}

impl ChannelsPage {
    fn utc(&self, ts: impl view::UnixTime) -> String {
        view::utc(ts.unix())
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    open: Option<String>,
}

pub async fn list(
    State(admin): State<Arc<Admin>>,
    viewer: Viewer,
    Query(query): Query<ListQuery>,
) -> Response {
    let mut open_error = None;
    if let Some(open) = query.open.as_deref().map(str::trim) {
        if valid_channel(open) {
            return view::see_other(&view::channel_path(open));
        }
        open_error = Some("A channel name is 1 to 256 bytes, without spaces.".to_string());
    }
    let hub = &admin.node.hub;
    let all = admin.node.list_channels();
    let needle = query.q.trim().to_lowercase();
    let matching: Vec<_> = all
        .iter()
        .filter(|c| {
            needle.is_empty()
                || String::from_utf8_lossy(&c.name)
                    .to_lowercase()
                    .contains(&needle)
        })
        .collect();
    let minute_ago = unix_now().saturating_sub(60);
    let rows = matching
        .iter()
        .take(MAX_ROWS)
        .map(|c| {
            let messages = hub.messages(&c.name);
            ChannelRow {
                name: String::from_utf8_lossy(&c.name).into_owned(),
                messages: c.messages,
                subscribers: c.subscribers,
                last_id: c.last_id,
                last_time: messages.last().map(|m| m.timestamp),
                last_minute: messages
                    .iter()
                    .rev()
                    .take_while(|m| m.timestamp >= minute_ago)
                    .count(),
            }
        })
        .collect();
    let page = ChannelsPage {
        layout: viewer.layout("Channels", "channels"),
        query: query.q.clone(),
        rows,
        total: all.len(),
        matched: matching.len(),
        open_error,
    };
    let status = if page.open_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    viewer.page(status, &page)
}

struct MessageRow {
    id: u64,
    time: u64,
    text: String,
    truncated: bool,
}

struct SubscriberRow {
    id: u64,
    host_id: String,
    /// The user its token (or the authorize callback) named.
    user: String,
    mode: String,
    transport: &'static str,
    peer: String,
    since: u64,
}

/// A member of the channel (presence), over every node.
struct MemberRow {
    /// The user, empty for an anonymous member.
    user: String,
    key: String,
    /// "websocket on node-a (host abc)", one per connection.
    connections: Vec<String>,
    /// Seconds since the epoch.
    since: u64,
}

#[derive(Template)]
#[template(path = "channel.html")]
struct ChannelPage {
    layout: Layout,
    name: String,
    path: String,
    exists: bool,
    message_count: usize,
    shown_messages: usize,
    last_id: Option<u64>,
    messages: Vec<MessageRow>,
    subscribers: Vec<SubscriberRow>,
    members: Vec<MemberRow>,
    rule: Option<String>,
    /// The publish form's text after an error, and whether to escape.
    draft: String,
    escape: bool,
    error: Option<String>,
}

impl ChannelPage {
    fn utc(&self, ts: impl view::UnixTime) -> String {
        view::utc(ts.unix())
    }

    fn rule_link(&self, pattern: &str) -> String {
        format!("/channel-settings?edit={}#rule-form", view::encode(pattern))
    }
}

fn channel_page(admin: &Admin, viewer: &Viewer, name: &str) -> ChannelPage {
    let hub = &admin.node.hub;
    let summary = hub
        .list_channels()
        .into_iter()
        .find(|c| c.name.as_ref() == name.as_bytes());
    let cached = hub.messages(name.as_bytes());
    let messages = cached
        .iter()
        .rev()
        .take(MAX_MESSAGES)
        .map(|m| {
            let text = String::from_utf8_lossy(&m.text);
            let truncated = text.chars().count() > MAX_SHOWN;
            MessageRow {
                id: m.id,
                time: m.timestamp,
                text: if truncated {
                    text.chars().take(MAX_SHOWN).collect()
                } else {
                    text.into_owned()
                },
                truncated,
            }
        })
        .collect();
    let mut subscribers: Vec<SubscriberRow> = hub
        .channel_subscribers(name.as_bytes())
        .into_iter()
        .map(|(id, info)| SubscriberRow {
            id,
            host_id: info
                .host_id
                .as_ref()
                .map(|h| String::from_utf8_lossy(h).into_owned())
                .unwrap_or_default(),
            user: info.user.clone().unwrap_or_default(),
            mode: info.mode.clone(),
            transport: info.transport.name(),
            peer: info.peer.map(|p| p.to_string()).unwrap_or_default(),
            since: info
                .since
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        })
        .collect();
    subscribers.sort_by_key(|s| s.id);
    let members = admin
        .node
        .presence
        .members(hub, name.as_bytes())
        .into_iter()
        .map(|m| MemberRow {
            user: m.user.clone().unwrap_or_default(),
            connections: m
                .connections
                .iter()
                .map(|c| match &c.host_id {
                    Some(host) => format!("{} on {} (host {host})", c.transport, c.node),
                    None => format!("{} on {}", c.transport, c.node),
                })
                .collect(),
            key: m.key,
            since: m.since / 1000,
        })
        .collect();
    ChannelPage {
        layout: viewer.layout(format!("Channel {name}"), "channels"),
        name: name.to_string(),
        path: view::channel_path(name),
        exists: summary.is_some(),
        message_count: cached.len(),
        shown_messages: cached.len().min(MAX_MESSAGES),
        last_id: summary.and_then(|s| s.last_id),
        messages,
        subscribers,
        members,
        rule: hub.rule_for(name.as_bytes()).map(|r| r.pattern),
        draft: String::new(),
        escape: true,
        error: None,
    }
}

pub async fn detail(
    State(admin): State<Arc<Admin>>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> Response {
    if !valid_channel(&name) {
        return view::message(
            StatusCode::NOT_FOUND,
            "No such channel",
            "A channel name is 1 to 256 bytes, without spaces.",
        );
    }
    let page = channel_page(&admin, &viewer, &name);
    viewer.page(StatusCode::OK, &page)
}

/// A list in words: "a, b and c".
fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

pub async fn publish(
    State(admin): State<Arc<Admin>>,
    Path(name): Path<String>,
    Action { viewer, form }: Action,
) -> Response {
    if !valid_channel(&name) {
        return view::message(
            StatusCode::NOT_FOUND,
            "No such channel",
            "A channel name is 1 to 256 bytes, without spaces.",
        );
    }
    let text = form.text("text");
    let escape = form.checked("escape");
    let refused = |status: StatusCode, error: String| {
        let mut page = channel_page(&admin, &viewer, &name);
        page.draft = text.to_string();
        page.escape = escape;
        page.error = Some(error);
        viewer.page(status, &page)
    };
    if text.is_empty() {
        let error = "Type a message to publish.".to_string();
        return refused(StatusCode::UNPROCESSABLE_ENTITY, error);
    }
    let problems = legacy_problems(text);
    let sent = if escape {
        js_escape(text)
    } else {
        text.to_string()
    };
    let node = &admin.node;
    let id = match node.publish(name.as_bytes(), sent.as_bytes()).await {
        Ok(id) => id,
        Err(PublishError::Paused) => {
            let error = "Publishing is paused; resume it on the dashboard.".to_string();
            return refused(StatusCode::UNPROCESSABLE_ENTITY, error);
        }
        Err(PublishError::TooLong) => {
            let error = format!("A message has at most {MAX_TEXT} bytes.");
            return refused(StatusCode::UNPROCESSABLE_ENTITY, error);
        }
        Err(e) => {
            return refused(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("Not published: {e}."),
            )
        }
    };
    info!(user = %viewer.session.user, channel = %name, id, escaped = escape, "admin UI: published a message");
    let published = format!("Message {id} published to {name}.");
    let flash = match (problems.is_empty(), escape) {
        (true, _) => Flash::ok(published),
        (false, true) => Flash::ok(format!(
            "{published} It contained {} and was escaped for legacy pages.",
            and_list(&problems)
        )),
        (false, false) => Flash::warn(format!(
            "{published} Sent unescaped: it contains {}, which breaks legacy <script> pages \
             (iframe, xhrinteractive and the like). Modern transports are fine.",
            and_list(&problems)
        )),
    };
    viewer.redirect(&view::channel_path(&name), flash)
}

pub async fn clear(
    State(admin): State<Arc<Admin>>,
    Path(name): Path<String>,
    Action { viewer, .. }: Action,
) -> Response {
    let flash = match admin.node.clear_channel(name.as_bytes()).await {
        Err(e) => Flash::error(format!("Nothing was cleared: {e}.")),
        Ok(Some(n)) => {
            info!(user = %viewer.session.user, channel = %name, cleared = n, "admin UI: cleared a channel cache");
            Flash::ok(format!(
                "Cleared {n} cached message{} from {name}.",
                if n == 1 { "" } else { "s" }
            ))
        }
        Ok(None) => Flash::warn(format!("There is no channel {name} (nothing to clear).")),
    };
    viewer.redirect(&view::channel_path(&name), flash)
}

pub async fn kick(
    State(admin): State<Arc<Admin>>,
    Path(name): Path<String>,
    Action { viewer, form }: Action,
) -> Response {
    let Ok(id) = form.text("id").parse::<u64>() else {
        return viewer.redirect(
            &view::channel_path(&name),
            Flash::error("No subscriber was named."),
        );
    };
    let flash = if admin.node.hub.kick_subscriber(id) {
        info!(user = %viewer.session.user, subscriber = id, "admin UI: disconnected a subscriber");
        Flash::ok(format!("Subscriber {id} was disconnected."))
    } else {
        Flash::warn(format!("Subscriber {id} had already gone."))
    };
    viewer.redirect(&view::channel_path(&name), flash)
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_in_words() {
        assert_eq!(super::and_list(&["a"]), "a");
        assert_eq!(super::and_list(&["a", "b", "c"]), "a, b and c");
    }
}
