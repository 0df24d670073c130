//! The authorize callback (`AuthorizeURL`), for applications whose users
//! have session cookies and no token code: on a subscription to a private
//! channel without a token, the application is asked
//! `POST {channel, hostid, transport, ip}` with the browser's `Cookie` and
//! `Authorization` headers. A `2xx` allows (its JSON body may name a `sub`
//! and a `cache` time in seconds); anything else refuses, and so does no
//! answer within [`TIMEOUT`]. Decisions are kept per browser (its cookies)
//! and channel for `AuthorizeCacheSeconds`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use tracing::warn;

use super::access::{digest, Credentials, Denied};
use super::Node;
use crate::hub::Transport;
use crate::outbound::{post_json, Failure};

/// How long the application gets to answer.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Decisions kept at most; the expired ones go first when it is full.
const CACHE_ENTRIES: usize = 10_000;

/// A decision: the user it named, or why not.
type Decision = Result<Option<String>, Denied>;

/// The decisions made lately.
#[derive(Default)]
pub struct Authorizations {
    cache: Mutex<HashMap<(u64, Bytes), (Decision, Instant)>>,
}

impl Authorizations {
    fn get(&self, key: &(u64, Bytes)) -> Option<Decision> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(key)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(decision, _)| decision.clone())
    }

    fn put(&self, key: (u64, Bytes), decision: Decision, keep: Duration) {
        if keep.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_ENTRIES {
            let now = Instant::now();
            cache.retain(|_, (_, until)| *until > now);
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(key, (decision, Instant::now() + keep));
    }
}

/// What the application may say in a `2xx` answer.
#[derive(Deserialize, Default)]
struct Consent {
    sub: Option<String>,
    cache: Option<u64>,
}

impl Node {
    /// Ask the application whether this browser may see `channel` (or use
    /// the answer it gave lately).
    pub(super) async fn authorize(
        &self,
        channel: &Bytes,
        transport: Transport,
        credentials: &Credentials,
    ) -> Result<Option<String>, Denied> {
        let browser = digest(&format!(
            "{}\n{}",
            credentials.cookie.as_deref().unwrap_or_default(),
            credentials.authorization.as_deref().unwrap_or_default()
        ));
        let key = (browser, channel.clone());
        if let Some(decision) = self.authorizations.get(&key) {
            return decision;
        }
        let config = self.config.load_full();
        let name = String::from_utf8_lossy(channel).into_owned();
        let body = json!({
            "channel": name,
            "hostid": credentials.host_id,
            "transport": transport.name(),
            "ip": credentials.ip.map(|ip| ip.to_string()),
        })
        .to_string();
        let url = config.authorize_url.clone();
        let (cookie, authorization) = (
            credentials.cookie.clone(),
            credentials.authorization.clone(),
        );
        let answer = tokio::task::spawn_blocking(move || {
            let mut headers = Vec::new();
            if let Some(cookie) = &cookie {
                headers.push(("Cookie", cookie.as_str()));
            }
            if let Some(authorization) = &authorization {
                headers.push(("Authorization", authorization.as_str()));
            }
            post_json(&url, body.as_bytes(), &headers, TIMEOUT)
        })
        .await
        .unwrap_or_else(|e| Err(Failure::Unreachable(e.to_string())));
        let keep = Duration::from_secs(config.authorize_cache_seconds);
        let (decision, keep) = match answer {
            Ok(answer) if (200..300).contains(&answer.status) => {
                let consent: Consent = serde_json::from_str(&answer.body).unwrap_or_default();
                let keep = consent.cache.map_or(keep, Duration::from_secs);
                (Ok(consent.sub), keep)
            }
            Ok(answer) => (
                Err(Denied::Forbidden(format!(
                    "the application refused channel '{name}' (HTTP {})",
                    answer.status
                ))),
                keep,
            ),
            // No answer is not a decision: nothing is kept, the next
            // subscription asks again.
            Err(failure) => {
                warn!("authorize callback: {failure}");
                return Err(Denied::Forbidden(format!(
                    "the application's authorize callback gave no answer ({failure})"
                )));
            }
        };
        self.authorizations.put(key, decision.clone(), keep);
        decision
    }
}
