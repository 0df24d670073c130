//! The keys an update's signature must verify against.
//!
//! The release key's public half is compiled in (`assets/update-key.pub`,
//! 32 raw bytes, as the `zipsign` tool writes it). Debug builds also trust
//! one key named in [`TEST_KEY_ENV`], so that the tests can sign updates of
//! their own; release builds never read it.

use self_update::zipsign_api;

use super::UpdateError;

/// An ed25519 public key, as self_update takes it.
pub type Key = self_update::VerifyingKey;

/// The release signing key.
const RELEASE_KEY: &Key = include_bytes!("../../assets/update-key.pub");

/// Debug builds only: a further trusted key, 64 hex digits. For tests.
pub const TEST_KEY_ENV: &str = "METEORD_UPDATE_TEST_KEY";

/// Every key an update may be signed with. Never empty: self_update skips
/// verification when it is given no key, so an empty list is an error here.
pub fn trusted() -> Result<Vec<Key>, UpdateError> {
    #[allow(unused_mut)]
    let mut keys = vec![*RELEASE_KEY];
    #[cfg(debug_assertions)]
    if let Ok(hex) = std::env::var(TEST_KEY_ENV) {
        keys.push(
            parse_hex(hex.trim()).ok_or_else(|| {
                UpdateError::BadKey(format!("{TEST_KEY_ENV} is not 64 hex digits"))
            })?,
        );
    }
    checked(keys)
}

/// Refuse an empty list, and keys that are not valid ed25519 points.
pub fn checked(keys: Vec<Key>) -> Result<Vec<Key>, UpdateError> {
    if keys.is_empty() {
        return Err(UpdateError::NoKeys);
    }
    zipsign_api::verify::collect_keys(keys.iter().copied().map(Ok))
        .map_err(|e| UpdateError::BadKey(e.to_string()))?;
    Ok(keys)
}

/// 32 bytes written as 64 hex digits.
pub fn parse_hex(text: &str) -> Option<Key> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (byte, pair) in key.iter_mut().zip(digits.chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_key_list_is_refused() {
        assert!(matches!(checked(Vec::new()), Err(UpdateError::NoKeys)));
    }

    #[test]
    fn the_release_key_is_a_valid_key() {
        assert_eq!(checked(vec![*RELEASE_KEY]).unwrap(), vec![*RELEASE_KEY]);
        assert!(trusted().unwrap().contains(RELEASE_KEY));
    }

    #[test]
    fn hex_keys() {
        let hex = "00ff".repeat(16);
        let key = parse_hex(&hex).unwrap();
        assert_eq!(&key[..2], &[0x00, 0xff]);
        assert!(parse_hex(&hex[1..]).is_none());
        assert!(parse_hex(&"zz".repeat(32)).is_none());
    }
}
