//! Who may subscribe to what: the channel rules' allowed transports and
//! "anonymous subscribers" switch, checked before a subscription starts.
//!
//! A channel whose rule refuses anonymous subscribers needs an API token:
//! `?token=<token>` on any subscription URL (legacy `/push` included), or an
//! `Authorization: Bearer <token>` header where the client can send one.

use std::sync::Arc;

use bytes::Bytes;

use crate::hub::Transport;
use crate::node::Node;

/// Why a subscription was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The channel's rule does not allow this transport.
    Transport(String),
    /// The channel needs an API token and none (or a bad one) was given.
    Token(String),
}

impl Refusal {
    pub fn message(&self) -> &str {
        match self {
            Refusal::Transport(m) | Refusal::Token(m) => m,
        }
    }
}

/// The `token` parameter of a query string, if any.
pub fn query_token(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .map(str::to_string)
}

/// A token's digest, as a subscriber's credential: equal for the same
/// token, and no use to anyone who reads it (keyed afresh in every run).
pub fn credential(token: Option<&str>) -> Option<u64> {
    static KEY: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(std::hash::RandomState::new);
    token
        .filter(|t| !t.is_empty())
        .map(|t| std::hash::BuildHasher::hash_one(key, t))
}

/// Check every channel of a subscription against its rule.
pub async fn check(
    node: &Arc<Node>,
    channels: impl IntoIterator<Item = &Bytes>,
    transport: Transport,
    token: Option<String>,
) -> Result<(), Refusal> {
    let mut needs_token = None;
    for channel in channels {
        let Some(rule) = node.hub.rule_for(channel) else {
            continue;
        };
        let name = String::from_utf8_lossy(channel);
        if !rule.allows(transport) {
            return Err(Refusal::Transport(format!(
                "channel '{name}' cannot be subscribed to over {transport}"
            )));
        }
        if !rule.anonymous && needs_token.is_none() {
            needs_token = Some(name.into_owned());
        }
    }
    let Some(channel) = needs_token else {
        return Ok(());
    };
    let refused = || Refusal::Token(format!("channel '{channel}' needs an API token"));
    let (Some(token), Some(accounts)) = (token, node.accounts.clone()) else {
        return Err(refused());
    };
    match tokio::task::spawn_blocking(move || accounts.check_token(&token)).await {
        Ok(Ok(true)) => Ok(()),
        _ => Err(refused()),
    }
}

#[cfg(test)]
mod tests {
    use super::query_token;

    #[test]
    fn tokens_in_query_strings() {
        assert_eq!(query_token(Some("a=1&token=mtd_x")), Some("mtd_x".into()));
        assert_eq!(query_token(Some("token=t")), Some("t".into()));
        assert_eq!(query_token(Some("tokens=t")), None);
        assert_eq!(query_token(None), None);
    }
}
