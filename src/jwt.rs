//! Signed subscribe tokens (JWT). The application's backend, which knows
//! its users, signs a token that grants one user some channels for a while;
//! meteord only verifies it. No database is involved: a token carries all it
//! grants.
//!
//! Keys: `TokenSecret` (HS256, a secret shared with the backend) and
//! `TokenPublicKeyFile` (a PEM public key: RS256, ES256 or EdDSA, so that
//! the backend keeps the only private key). The algorithm a token may use
//! is the one its key is for: `none`, and an HS256 token checked against a
//! public key (algorithm confusion), are refused.
//!
//! Claims: `channels` (required: names and `*` patterns), `exp` (required),
//! `sub` (the user), `publish` (channels it may publish to from the
//! browser), `nbf` and `iat` honoured with [`LEEWAY`] of clock skew.

use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::names::glob_match;

/// Clock skew allowed between the backend that signs and this server: a
/// token is taken until this long after its `exp` (a stream it opened ends
/// then too), and from this long before its `nbf`.
pub const LEEWAY: u64 = 5;

/// What a valid token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The user (`sub`), if the token names one.
    pub user: Option<String>,
    /// Channel names and `*` patterns it may subscribe to.
    pub channels: Vec<String>,
    /// Channel names and patterns it may publish to.
    pub publish: Vec<String>,
    /// When it expires, in seconds since the Unix epoch.
    pub expires: u64,
}

impl Grant {
    pub fn may_subscribe(&self, channel: &[u8]) -> bool {
        self.channels
            .iter()
            .any(|p| glob_match(p.as_bytes(), channel))
    }

    pub fn may_publish(&self, channel: &[u8]) -> bool {
        self.publish
            .iter()
            .any(|p| glob_match(p.as_bytes(), channel))
    }
}

/// Why a token was not accepted. The words go back to the client; the
/// token itself never does, nor into the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("tokens signed with {0} are not accepted here")]
    Algorithm(String),
    #[error("the token is malformed: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
struct Claims {
    channels: Channels,
    exp: u64,
    sub: Option<String>,
    iat: Option<u64>,
    #[serde(default)]
    publish: Option<Channels>,
}

/// A list of channels, or one channel as a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Channels {
    One(String),
    Many(Vec<String>),
}

impl Channels {
    fn into_vec(self) -> Vec<String> {
        match self {
            Channels::One(one) => vec![one],
            Channels::Many(many) => many,
        }
    }
}

/// Verifies tokens with the configured keys.
#[derive(Default)]
pub struct Verifier {
    secret: Option<DecodingKey>,
    public: Option<(DecodingKey, Algorithm)>,
}

impl Verifier {
    /// Keys from `TokenSecret` (empty: none) and the PEM text of
    /// `TokenPublicKeyFile` (read by the caller), if any.
    pub fn new(secret: &str, public_pem: Option<(&Path, &[u8])>) -> Result<Verifier, String> {
        let secret = (!secret.is_empty()).then(|| DecodingKey::from_secret(secret.as_bytes()));
        let public = match public_pem {
            None => None,
            Some((path, pem)) => Some(public_key(pem).ok_or_else(|| {
                format!(
                    "{}: not a PEM public key for RS256 (RSA), ES256 (P-256) or EdDSA (Ed25519)",
                    path.display()
                )
            })?),
        };
        Ok(Verifier { secret, public })
    }

    /// Can any token be verified?
    pub fn is_configured(&self) -> bool {
        self.secret.is_some() || self.public.is_some()
    }

    /// Verify a token at time `now` (seconds since the Unix epoch).
    pub fn verify(&self, token: &str, now: u64) -> Result<Grant, TokenError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        let key = match header.alg {
            Algorithm::HS256 => self.secret.as_ref(),
            alg => self
                .public
                .as_ref()
                .filter(|(_, pinned)| *pinned == alg)
                .map(|(key, _)| key),
        }
        .ok_or_else(|| TokenError::Algorithm(format!("{:?}", header.alg)))?;
        let mut validation = Validation::new(header.alg);
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY;
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::InvalidAlgorithm => TokenError::Algorithm(format!("{:?}", header.alg)),
                _ => TokenError::Malformed(e.to_string()),
            }
        })?;
        let claims = data.claims;
        if claims.iat.is_some_and(|iat| iat > now + LEEWAY) {
            return Err(TokenError::NotYetValid);
        }
        Ok(Grant {
            user: claims.sub,
            channels: claims.channels.into_vec(),
            publish: claims.publish.map(Channels::into_vec).unwrap_or_default(),
            expires: claims.exp,
        })
    }
}

/// A PEM public key and the one algorithm it verifies.
fn public_key(pem: &[u8]) -> Option<(DecodingKey, Algorithm)> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Some((key, Algorithm::RS256));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        return Some((key, Algorithm::ES256));
    }
    if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        return Some((key, Algorithm::EdDSA));
    }
    None
}

/// Does this look like a JWT (three base64url parts, a JSON header)? API
/// tokens made in the admin UI look different (`mtd_…`).
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.bytes().filter(|&b| b == b'.').count() == 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};

    fn now() -> u64 {
        crate::hub::unix_now()
    }

    fn hs(claims: serde_json::Value, secret: &str) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn a_good_token_grants_its_channels() {
        let verifier = Verifier::new("s3cret", None).unwrap();
        let token = hs(
            serde_json::json!({"channels": ["chat.*", "news"], "exp": now() + 60, "sub": "ann", "publish": "chat.*"}),
            "s3cret",
        );
        assert!(looks_like_jwt(&token));
        let grant = verifier.verify(&token, now()).unwrap();
        assert_eq!(grant.user.as_deref(), Some("ann"));
        assert!(grant.may_subscribe(b"chat.room") && grant.may_subscribe(b"news"));
        assert!(!grant.may_subscribe(b"newsletter"));
        assert!(grant.may_publish(b"chat.x") && !grant.may_publish(b"news"));
    }

    #[test]
    fn bad_tokens_say_why() {
        let verifier = Verifier::new("s3cret", None).unwrap();
        let claims = |exp: u64| serde_json::json!({"channels": ["c"], "exp": exp});
        assert_eq!(
            verifier.verify(&hs(claims(now() - 3600), "s3cret"), now()),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verifier.verify(&hs(claims(now() + 60), "other"), now()),
            Err(TokenError::BadSignature)
        );
        let early = hs(
            serde_json::json!({"channels": ["c"], "exp": now() + 600, "nbf": now() + 300}),
            "s3cret",
        );
        assert_eq!(verifier.verify(&early, now()), Err(TokenError::NotYetValid));
        let future = hs(
            serde_json::json!({"channels": ["c"], "exp": now() + 600, "iat": now() + 300}),
            "s3cret",
        );
        assert_eq!(
            verifier.verify(&future, now()),
            Err(TokenError::NotYetValid)
        );
        let no_exp = hs(serde_json::json!({"channels": ["c"]}), "s3cret");
        assert!(matches!(
            verifier.verify(&no_exp, now()),
            Err(TokenError::Malformed(_))
        ));
        let no_channels = hs(serde_json::json!({"exp": now() + 60}), "s3cret");
        assert!(matches!(
            verifier.verify(&no_channels, now()),
            Err(TokenError::Malformed(_))
        ));
        // alg none: an unsigned token.
        let none =
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJjaGFubmVscyI6WyJjIl0sImV4cCI6OTk5OTk5OTk5OX0.";
        assert!(verifier.verify(none, now()).is_err());
        // No public key configured: RS256 is refused outright.
        let empty = Verifier::default();
        assert!(!empty.is_configured());
        assert!(matches!(
            empty.verify(&hs(claims(now() + 60), "s3cret"), now()),
            Err(TokenError::Algorithm(_))
        ));
    }
}
