//! Who may administer the server: the admin password, login sessions and
//! API tokens, in the same database as the channel caches.
//!
//! Passwords are stored as argon2 hashes; session and API tokens only as
//! SHA-256 hashes, so the database never holds a usable secret.

use std::path::Path;
use std::sync::MutexGuard;
use std::time::Duration;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::db::Db;
use super::StoreError;
use crate::hub::{unix_now, ChannelRule, Transport};

/// Prefix of API tokens, so that a leaked one is easy to recognise.
pub const TOKEN_PREFIX: &str = "mtd_";
/// Shortest admin password accepted.
pub const MIN_PASSWORD: usize = 8;

/// A logged-in session.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    /// The token every form of this session must carry.
    pub csrf: String,
}

/// A new session's secrets, shown once.
pub struct NewSession {
    pub token: String,
    pub csrf: String,
}

/// An API token as listed (never with its secret).
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub created: u64,
    pub last_used: Option<u64>,
    pub scopes: Vec<Scope>,
    pub channels: Vec<String>,
}

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Publish to its channels.
    Publish,
    /// Subscribe to its channels, private ones included, and read their
    /// caches.
    Subscribe,
    /// Empty caches, change channel rules and private channels, read stats.
    Manage,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Publish, Scope::Subscribe, Scope::Manage];

    pub const fn name(self) -> &'static str {
        match self {
            Scope::Publish => "publish",
            Scope::Subscribe => "subscribe",
            Scope::Manage => "manage",
        }
    }

    pub fn from_name(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// What a valid API token may do, and on which channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRights {
    pub id: i64,
    pub scopes: Vec<Scope>,
    /// Channel names and `*` patterns (`*` alone: every channel).
    pub channels: Vec<String>,
}

impl TokenRights {
    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// May it act with `scope` on `channel`?
    pub fn may_on(&self, scope: Scope, channel: &[u8]) -> bool {
        self.may(scope)
            && self
                .channels
                .iter()
                .any(|p| crate::names::glob_match(p.as_bytes(), channel))
    }
}

fn scopes_of(text: &str) -> Vec<Scope> {
    text.split_whitespace()
        .filter_map(Scope::from_name)
        .collect()
}

fn patterns_of(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

pub struct Accounts {
    db: Db,
}

/// A random secret: 32 bytes, hex (for a TokenSecret, say).
pub fn random_secret() -> String {
    secret()
}

/// A random secret: 32 bytes, hex.
fn secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

impl Accounts {
    /// Open the accounts of the database at `path` (already migrated by
    /// [`super::Store::open`]).
    pub fn open(path: &Path) -> Result<Accounts, StoreError> {
        Ok(Accounts {
            db: Db::open(path)?,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.db.conn()
    }

    fn error(&self, source: rusqlite::Error) -> StoreError {
        self.db.error(source)
    }

    /// Has anyone set an admin password yet?
    pub fn has_users(&self) -> Result<bool, StoreError> {
        self.conn()
            .query_row("SELECT EXISTS (SELECT 1 FROM users)", [], |r| r.get(0))
            .map_err(|e| self.error(e))
    }

    /// First run: create the admin, unless one exists already (then false).
    pub fn create_first_user(&self, name: &str, password: &str) -> Result<bool, StoreError> {
        let hash = hash_password(password);
        let conn = self.conn();
        let inserted = conn
            .execute(
                "INSERT INTO users (name, password_hash, created)
                 SELECT ?1, ?2, ?3 WHERE NOT EXISTS (SELECT 1 FROM users)",
                params![name, hash, unix_now() as i64],
            )
            .map_err(|e| self.error(e))?;
        Ok(inserted == 1)
    }

    /// Change a user's password (and end their other sessions).
    pub fn set_password(&self, name: &str, password: &str) -> Result<bool, StoreError> {
        let hash = hash_password(password);
        let conn = self.conn();
        let changed = conn
            .execute(
                "UPDATE users SET password_hash = ?2 WHERE name = ?1",
                params![name, hash],
            )
            .map_err(|e| self.error(e))?;
        conn.execute("DELETE FROM sessions WHERE user = ?1", [name])
            .map_err(|e| self.error(e))?;
        Ok(changed == 1)
    }

    /// Does this password belong to this user?
    pub fn verify_password(&self, name: &str, password: &str) -> Result<bool, StoreError> {
        let stored: Option<String> = self
            .conn()
            .query_row(
                "SELECT password_hash FROM users WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.error(e))?;
        Ok(match stored {
            Some(hash) => PasswordHash::new(&hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false),
            None => {
                // Spend the same time as a real check, so timing does not
                // tell which user names exist.
                let _ = hash_password(password);
                false
            }
        })
    }

    /// Start a session for `user`, valid for `ttl`.
    pub fn create_session(&self, user: &str, ttl: Duration) -> Result<NewSession, StoreError> {
        let token = secret();
        let csrf = secret();
        let conn = self.conn();
        conn.execute(
            "DELETE FROM sessions WHERE expires < ?1",
            [unix_now() as i64],
        )
        .map_err(|e| self.error(e))?;
        conn.execute(
            "INSERT INTO sessions (token_hash, user, csrf, expires) VALUES (?1, ?2, ?3, ?4)",
            params![
                digest(&token),
                user,
                csrf,
                (unix_now() + ttl.as_secs()) as i64
            ],
        )
        .map_err(|e| self.error(e))?;
        Ok(NewSession { token, csrf })
    }

    /// The live session with this token, if any.
    pub fn session(&self, token: &str) -> Result<Option<Session>, StoreError> {
        self.conn()
            .query_row(
                "SELECT user, csrf FROM sessions WHERE token_hash = ?1 AND expires >= ?2",
                params![digest(token), unix_now() as i64],
                |r| {
                    Ok(Session {
                        user: r.get(0)?,
                        csrf: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.error(e))
    }

    pub fn end_session(&self, token: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "DELETE FROM sessions WHERE token_hash = ?1",
                [digest(token)],
            )
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    /// A new API token with every scope on every channel; its secret is
    /// returned once and never stored.
    pub fn create_token(&self, name: &str) -> Result<(i64, String), StoreError> {
        self.create_scoped_token(name, &Scope::ALL, &["*".to_string()])
    }

    /// A new API token with these scopes on these channels (names and `*`
    /// patterns); its secret is returned once and never stored.
    pub fn create_scoped_token(
        &self,
        name: &str,
        scopes: &[Scope],
        channels: &[String],
    ) -> Result<(i64, String), StoreError> {
        let token = format!("{TOKEN_PREFIX}{}", secret());
        let scopes: Vec<&str> = scopes.iter().map(|s| s.name()).collect();
        let conn = self.conn();
        conn.execute(
            "INSERT INTO api_tokens (name, token_hash, created, scopes, channels)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                name,
                digest(&token),
                unix_now() as i64,
                scopes.join(" "),
                channels.join(" ")
            ],
        )
        .map_err(|e| self.error(e))?;
        Ok((conn.last_insert_rowid(), token))
    }

    pub fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT id, name, created, last_used, scopes, channels FROM api_tokens ORDER BY id",
            )
            .map_err(|e| self.error(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(TokenInfo {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    created: r.get::<_, i64>(2)? as u64,
                    last_used: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
                    scopes: scopes_of(&r.get::<_, String>(4)?),
                    channels: patterns_of(&r.get::<_, String>(5)?),
                })
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.error(e))
    }

    pub fn revoke_token(&self, id: i64) -> Result<bool, StoreError> {
        self.conn()
            .execute("DELETE FROM api_tokens WHERE id = ?1", [id])
            .map(|n| n == 1)
            .map_err(|e| self.error(e))
    }

    /// What this API token may do, if it is a valid one. Records its use.
    pub fn check_token(&self, token: &str) -> Result<Option<TokenRights>, StoreError> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        self.conn()
            .query_row(
                "UPDATE api_tokens SET last_used = ?2 WHERE token_hash = ?1
                 RETURNING id, scopes, channels",
                params![digest(token), unix_now() as i64],
                |r| {
                    Ok(TokenRights {
                        id: r.get(0)?,
                        scopes: scopes_of(&r.get::<_, String>(1)?),
                        channels: patterns_of(&r.get::<_, String>(2)?),
                    })
                },
            )
            .optional()
            .map_err(|e| self.error(e))
    }
}

/// Channel rules and global settings made in the admin UI.
impl Accounts {
    pub fn channel_rules(&self) -> Result<Vec<ChannelRule>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT pattern, max_messages, max_age, persist, transports, anonymous FROM channel_settings")
            .map_err(|e| self.error(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ChannelRule {
                    pattern: r.get(0)?,
                    max_messages: r.get::<_, Option<i64>>(1)?.map(|v| v as usize),
                    max_age: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
                    persist: r.get::<_, Option<bool>>(3)?,
                    transports: r
                        .get::<_, Option<String>>(4)?
                        .map(|t| t.split(',').filter_map(Transport::from_name).collect()),
                    anonymous: r.get(5)?,
                })
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.error(e))
    }

    pub fn save_channel_rule(&self, rule: &ChannelRule) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO channel_settings (pattern, max_messages, max_age, persist, transports, anonymous, updated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(pattern) DO UPDATE SET max_messages = ?2, max_age = ?3, persist = ?4,
                    transports = ?5, anonymous = ?6, updated = ?7",
                params![
                    rule.pattern,
                    rule.max_messages.map(|v| v as i64),
                    rule.max_age.map(|v| v as i64),
                    rule.persist,
                    rule.transports.as_ref().map(|t| {
                        t.iter().map(|t| t.name()).collect::<Vec<_>>().join(",")
                    }),
                    rule.anonymous,
                    unix_now() as i64
                ],
            )
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    pub fn delete_channel_rule(&self, pattern: &str) -> Result<bool, StoreError> {
        self.conn()
            .execute("DELETE FROM channel_settings WHERE pattern = ?1", [pattern])
            .map(|n| n == 1)
            .map_err(|e| self.error(e))
    }

    /// Global settings overridden in the admin UI, as (key, raw value).
    pub fn ui_settings(&self) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT key, value FROM settings ORDER BY key")
            .map_err(|e| self.error(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.error(e))
    }

    pub fn save_ui_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO settings (key, value, updated) VALUES (?1, ?2, ?3)
                 ON CONFLICT(key) DO UPDATE SET value = ?2, updated = ?3",
                params![key, value, unix_now() as i64],
            )
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    pub fn delete_ui_setting(&self, key: &str) -> Result<bool, StoreError> {
        self.conn()
            .execute("DELETE FROM settings WHERE key = ?1", [key])
            .map(|n| n == 1)
            .map_err(|e| self.error(e))
    }
}

fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> (tempfile::TempDir, Accounts) {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = super::super::Store::open(dir.path()).unwrap();
        let accounts = Accounts::open(store.path()).unwrap();
        (dir, accounts)
    }

    #[test]
    fn first_user_passwords_and_sessions() {
        let (_dir, accounts) = accounts();
        assert!(!accounts.has_users().unwrap());
        assert!(accounts
            .create_first_user("admin", "correct horse")
            .unwrap());
        // Only once.
        assert!(!accounts.create_first_user("eve", "whatever123").unwrap());
        assert!(accounts.verify_password("admin", "correct horse").unwrap());
        assert!(!accounts.verify_password("admin", "wrong").unwrap());
        assert!(!accounts.verify_password("eve", "whatever123").unwrap());

        let session = accounts
            .create_session("admin", Duration::from_secs(60))
            .unwrap();
        let found = accounts.session(&session.token).unwrap().unwrap();
        assert_eq!(found.user, "admin");
        assert_eq!(found.csrf, session.csrf);
        assert!(accounts.session("not a token").unwrap().is_none());
        // Changing the password ends sessions.
        assert!(accounts.set_password("admin", "new password").unwrap());
        assert!(accounts.session(&session.token).unwrap().is_none());
        assert!(accounts.verify_password("admin", "new password").unwrap());
    }

    #[test]
    fn api_tokens() {
        let (_dir, accounts) = accounts();
        let (id, token) = accounts.create_token("publisher").unwrap();
        assert!(token.starts_with(TOKEN_PREFIX));
        let rights = accounts.check_token(&token).unwrap().unwrap();
        assert_eq!(rights.id, id);
        assert!(Scope::ALL.iter().all(|s| rights.may_on(*s, b"anything")));
        assert!(accounts.check_token("mtd_nope").unwrap().is_none());
        let listed = accounts.tokens().unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].last_used.is_some());
        assert!(accounts.revoke_token(id).unwrap());
        assert!(accounts.check_token(&token).unwrap().is_none());
    }

    #[test]
    fn scoped_tokens_may_what_they_were_given() {
        let (_dir, accounts) = accounts();
        let news = vec!["news.*".to_string(), "alerts".to_string()];
        let (_, token) = accounts
            .create_scoped_token("feeds", &[Scope::Publish], &news)
            .unwrap();
        let rights = accounts.check_token(&token).unwrap().unwrap();
        assert!(rights.may_on(Scope::Publish, b"news.today"));
        assert!(rights.may_on(Scope::Publish, b"alerts"));
        assert!(!rights.may_on(Scope::Publish, b"chat"));
        assert!(!rights.may_on(Scope::Subscribe, b"news.today"));
        assert!(!rights.may(Scope::Manage));
        let listed = &accounts.tokens().unwrap()[0];
        assert_eq!(listed.scopes, [Scope::Publish]);
        assert_eq!(listed.channels, news);
    }
}
