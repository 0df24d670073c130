//! What names look like: channel names, host ids and the `*` patterns that
//! name groups of channels. Every front end checks names with these, so a
//! name one publisher may use, every other may use too.

/// The whitespace bytes of the legacy protocol (Perl's `\s`): they end a
/// channel name on the control port.
pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Longest channel name accepted from the HTTP API, WebSocket and rules.
pub const MAX_CHANNEL_NAME: usize = 256;

/// Explains [`valid_channel_name`] to whoever sent a bad one.
pub const CHANNEL_NAME_RULE: &str = "a channel name is 1 to 256 bytes without spaces";

/// What a channel name given over HTTP or WebSocket must look like: what
/// `ADDMESSAGE` could publish (1 to 256 bytes, no whitespace).
pub fn valid_channel_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_CHANNEL_NAME && !name.bytes().any(is_space)
}

/// A host id is 1 to 64 letters and digits, as `/push` reads them.
pub fn valid_host_id(host_id: &str) -> bool {
    !host_id.is_empty() && host_id.len() <= 64 && host_id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Does `text` match `pattern`, where `*` stands for any run of bytes
/// (including none) and every other byte for itself?
///
/// Greedy with one backtrack point (the last `*` seen), so the time is
/// linear in the text for each star, however many stars the pattern has.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last star was, and the text position it now stands for.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            // Let the last star take one more byte and try again after it.
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"chat.*", b"chat.room1"));
        assert!(glob_match(b"chat.*", b"chat."));
        assert!(!glob_match(b"chat.*", b"chatroom"));
        assert!(glob_match(b"*", b"anything"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"a*b*c", b"aXXbYYc"));
        assert!(!glob_match(b"a*b*c", b"aXXbYY"));
        assert!(glob_match(b"*.x", b"a.b.x"));
        assert!(glob_match(b"a**b", b"ab"));
        assert!(glob_match(b"exact", b"exact"));
        assert!(!glob_match(b"exact", b"exactly"));
        assert!(!glob_match(b"exactly", b"exact"));
    }

    #[test]
    fn many_stars_stay_fast() {
        // Exponential backtracking would never finish this one.
        let pattern = "*a".repeat(40) + "b";
        let text = "a".repeat(5000);
        assert!(!glob_match(pattern.as_bytes(), text.as_bytes()));
    }

    #[test]
    fn channel_names_and_host_ids() {
        assert!(valid_channel_name("chat.room-1"));
        assert!(!valid_channel_name(""));
        assert!(!valid_channel_name("has space"));
        assert!(!valid_channel_name(&"x".repeat(MAX_CHANNEL_NAME + 1)));
        assert!(valid_host_id("abc123"));
        assert!(!valid_host_id("a-b"));
        assert!(!valid_host_id(&"a".repeat(65)));
    }
}
