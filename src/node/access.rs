//! Who may subscribe to what, decided in one place for every transport.
//!
//! A channel is *private* when `PrivateChannels` names it (or a pattern
//! matches) or its channel rule refuses anonymous subscribers. A private
//! channel needs, in this order:
//!
//! 1. a signed subscribe token (JWT) that grants it — checked with the
//!    keys alone, no database;
//! 2. or an API token with the `subscribe` scope on it;
//! 3. or, with neither, the application's consent through the authorize
//!    callback (`AuthorizeURL`), given the browser's cookies.
//!
//! Refusals say why: `Unauthorized` (no credential, or one that is not
//! valid) and `Forbidden` (a valid one that does not cover the channel).

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use super::Node;
use crate::hub::Transport;
use crate::jwt::{looks_like_jwt, Verifier};
use crate::names::glob_match;
use crate::store::accounts::{Scope, TokenRights};

/// What a subscriber brings to prove who it is.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// A signed subscribe token or an API token (`?token=`, `Bearer`, or
    /// the WebSocket's `"token"`).
    pub token: Option<String>,
    /// The browser's `Cookie` and `Authorization` headers, for the
    /// authorize callback.
    pub cookie: Option<String>,
    pub authorization: Option<String>,
    pub host_id: Option<String>,
    pub ip: Option<IpAddr>,
}

/// What a subscription was granted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Granted {
    /// The user, when a token or the callback named one.
    pub user: Option<String>,
    /// When the token that granted a private channel expires (seconds
    /// since the Unix epoch): the subscription ends then.
    pub expires: Option<u64>,
    /// Whom the subscription belongs to, for host ids: a digest of the
    /// user or the token (`None`: anonymous).
    pub credential: Option<u64>,
}

/// Why a subscription was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// The channel's rule does not allow this transport.
    Transport(String),
    /// No credential, or one that is not valid (expired, bad signature…).
    Unauthorized(String),
    /// A valid credential that does not cover the channel.
    Forbidden(String),
}

impl Denied {
    pub fn message(&self) -> &str {
        match self {
            Denied::Transport(m) | Denied::Unauthorized(m) | Denied::Forbidden(m) => m,
        }
    }
}

/// A digest of a credential: equal for the same input, of no use to anyone
/// who reads it (keyed afresh in every run).
pub fn digest(text: &str) -> u64 {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    KEY.get_or_init(RandomState::new).hash_one(text)
}

/// A signed token's credential: its user's, so that a renewed token (or a
/// second tab of the same user) is the same credential; else the token's.
fn credential_of(grant: &crate::jwt::Grant, token: &str) -> u64 {
    match &grant.user {
        Some(user) => digest(&format!("user:{user}")),
        None => digest(token),
    }
}

/// The verifier for the configured token keys; the public key file is
/// read here, and an error names it.
pub fn verifier(config: &crate::config::Config) -> Result<Verifier, String> {
    let pem = match &config.token_public_key_file {
        None => None,
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| format!("TokenPublicKeyFile {}: {e}", path.display()))?,
        ),
    };
    let public = config.token_public_key_file.as_deref().zip(pem.as_deref());
    Verifier::new(&config.token_secret, public).map_err(|e| format!("TokenPublicKeyFile {e}"))
}

impl Node {
    /// Is this channel private (a token, or the callback, is needed)?
    pub fn is_private(&self, channel: &[u8]) -> bool {
        let config = self.config.load();
        config
            .private_channels
            .iter()
            .any(|p| glob_match(p.as_bytes(), channel))
            || self.hub.rule_for(channel).is_some_and(|r| !r.anonymous)
    }

    /// May a subscriber with `credentials` subscribe to `channels` over
    /// `transport`? Never blocks an async thread: database lookups and the
    /// callback run on the blocking pool.
    pub async fn admit(
        self: &Arc<Self>,
        channels: &[&Bytes],
        transport: Transport,
        credentials: &Credentials,
    ) -> Result<Granted, Denied> {
        let mut private = Vec::new();
        for channel in channels {
            let name = String::from_utf8_lossy(channel);
            if let Some(rule) = self.hub.rule_for(channel) {
                if !rule.allows(transport) {
                    return Err(Denied::Transport(format!(
                        "channel '{name}' cannot be subscribed to over {transport}"
                    )));
                }
            }
            if self.is_private(channel) {
                private.push(*channel);
            }
        }
        if private.is_empty() {
            return Ok(self.identify(credentials));
        }
        match credentials.token.as_deref() {
            Some(token) if looks_like_jwt(token) => self.admit_signed(token, &private),
            Some(token) => self.admit_api_token(token, &private).await,
            None => {
                self.admit_by_callback(&private, transport, credentials)
                    .await
            }
        }
    }

    /// Who credentials say their holder is, whatever the channel: a valid
    /// signed token's user, else a digest of its token, else of the
    /// browser's cookies (`None`: no credential at all). Host ids answer to
    /// this.
    pub fn identify(&self, credentials: &Credentials) -> Granted {
        let Some(token) = credentials.token.as_deref() else {
            let browser = credentials
                .cookie
                .as_deref()
                .or(credentials.authorization.as_deref());
            return Granted {
                credential: browser.map(|c| digest(&format!("cookie:{c}"))),
                ..Granted::default()
            };
        };
        if looks_like_jwt(token) {
            if let Ok(grant) = self.verifier.load().verify(token, crate::hub::unix_now()) {
                return Granted {
                    credential: Some(credential_of(&grant, token)),
                    user: grant.user,
                    expires: None,
                };
            }
        }
        Granted {
            credential: Some(digest(token)),
            ..Granted::default()
        }
    }

    /// May a browser holding `token` publish to `channel`? A signed token
    /// needs a `publish` claim that covers it; an API token, the `publish`
    /// scope on it.
    pub async fn may_publish(&self, token: Option<&str>, channel: &[u8]) -> Result<(), Denied> {
        let name = String::from_utf8_lossy(channel);
        let Some(token) = token else {
            return Err(Denied::Unauthorized(
                "publishing needs a token that grants it".into(),
            ));
        };
        if looks_like_jwt(token) {
            let grant = self
                .verifier
                .load()
                .verify(token, crate::hub::unix_now())
                .map_err(|e| Denied::Unauthorized(e.to_string()))?;
            return if grant.may_publish(channel) {
                Ok(())
            } else {
                Err(Denied::Forbidden(format!(
                    "the token does not let you publish to channel '{name}'"
                )))
            };
        }
        let rights = self.api_token_rights(token).await?;
        if rights.may_on(Scope::Publish, channel) {
            Ok(())
        } else {
            Err(Denied::Forbidden(format!(
                "that API token may not publish to channel '{name}'"
            )))
        }
    }

    fn admit_signed(&self, token: &str, private: &[&Bytes]) -> Result<Granted, Denied> {
        let grant = self
            .verifier
            .load()
            .verify(token, crate::hub::unix_now())
            .map_err(|e| Denied::Unauthorized(e.to_string()))?;
        if let Some(channel) = private.iter().find(|c| !grant.may_subscribe(c)) {
            return Err(Denied::Forbidden(format!(
                "the token does not grant channel '{}'",
                String::from_utf8_lossy(channel)
            )));
        }
        Ok(Granted {
            credential: Some(credential_of(&grant, token)),
            user: grant.user,
            expires: Some(grant.expires),
        })
    }

    /// What an API token may do (looked up on the blocking pool).
    async fn api_token_rights(&self, token: &str) -> Result<TokenRights, Denied> {
        let Some(accounts) = self.accounts.clone() else {
            return Err(Denied::Unauthorized(
                "the database is unavailable, so no API token can be checked".into(),
            ));
        };
        let secret = token.to_string();
        tokio::task::spawn_blocking(move || accounts.check_token(&secret))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
            .ok_or_else(|| Denied::Unauthorized("that token is not valid".into()))
    }

    async fn admit_api_token(&self, token: &str, private: &[&Bytes]) -> Result<Granted, Denied> {
        let rights = self.api_token_rights(token).await?;
        if let Some(channel) = private.iter().find(|c| !rights.may_on(Scope::Subscribe, c)) {
            return Err(Denied::Forbidden(format!(
                "that API token may not subscribe to channel '{}'",
                String::from_utf8_lossy(channel)
            )));
        }
        Ok(Granted {
            user: None,
            expires: None,
            credential: Some(digest(token)),
        })
    }

    async fn admit_by_callback(
        &self,
        private: &[&Bytes],
        transport: Transport,
        credentials: &Credentials,
    ) -> Result<Granted, Denied> {
        let first = String::from_utf8_lossy(private[0]).into_owned();
        if self.config.load().authorize_url.is_empty() {
            return Err(Denied::Unauthorized(format!(
                "channel '{first}' is private: it needs a token"
            )));
        }
        let mut user = None;
        for channel in private {
            let consent = self.authorize(channel, transport, credentials).await?;
            user = user.or(consent);
        }
        // The browser's cookies are its credential.
        Ok(Granted {
            user,
            ..self.identify(credentials)
        })
    }
}
