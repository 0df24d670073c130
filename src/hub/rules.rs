//! Channel rules: settings for the channels a pattern matches (an exact
//! name, or a glob where `*` stands for any run of characters, `chat.*`).
//! The most specific matching rule applies: an exact name first, then the
//! longest pattern.

use serde::{Deserialize, Serialize};

use super::Transport;
use crate::names::{glob_match, valid_channel_name, CHANNEL_NAME_RULE};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRule {
    pub pattern: String,
    /// Overrides MaxMessagesPerChannel (0: no limit).
    pub max_messages: Option<usize>,
    /// Overrides MaxMessageAge, in seconds.
    pub max_age: Option<u64>,
    /// Overrides whether the channel's cache is persisted.
    pub persist: Option<bool>,
    /// Transports subscribers may use (`None`: all of them).
    pub transports: Option<Vec<Transport>>,
    /// May subscribers without an API token subscribe?
    pub anonymous: bool,
}

impl ChannelRule {
    /// A rule that changes nothing, for `pattern`.
    pub fn new(pattern: &str) -> ChannelRule {
        ChannelRule {
            pattern: pattern.to_string(),
            max_messages: None,
            max_age: None,
            persist: None,
            transports: None,
            anonymous: true,
        }
    }

    /// Check a rule before it is stored.
    pub fn validate(&self) -> Result<(), String> {
        // A pattern is spelled like a channel name (with `*`s).
        if !valid_channel_name(&self.pattern) {
            return Err(format!("pattern: {CHANNEL_NAME_RULE}"));
        }
        if self.transports.as_ref().is_some_and(Vec::is_empty) {
            return Err("a rule must allow at least one transport".into());
        }
        Ok(())
    }

    pub fn matches(&self, channel: &[u8]) -> bool {
        glob_match(self.pattern.as_bytes(), channel)
    }

    /// May a subscriber use `transport` on the channels of this rule?
    pub fn allows(&self, transport: Transport) -> bool {
        self.transports
            .as_ref()
            .is_none_or(|allowed| allowed.contains(&transport))
    }

    fn specificity(&self) -> (bool, usize) {
        (!self.pattern.contains('*'), self.pattern.len())
    }
}

/// The rules in force, most specific first.
#[derive(Debug, Default, Clone)]
pub struct ChannelRules {
    rules: Vec<ChannelRule>,
}

impl ChannelRules {
    pub fn new(mut rules: Vec<ChannelRule>) -> ChannelRules {
        rules.sort_by_key(|r| std::cmp::Reverse(r.specificity()));
        ChannelRules { rules }
    }

    /// The rule for a channel, if any matches.
    pub fn for_channel(&self, channel: &[u8]) -> Option<&ChannelRule> {
        self.rules.iter().find(|r| r.matches(channel))
    }

    /// The most messages a channel keeps: its rule's limit, else `global`
    /// (0: no limit).
    pub fn max_messages(&self, channel: &[u8], global: usize) -> usize {
        self.for_channel(channel)
            .and_then(|r| r.max_messages)
            .unwrap_or(global)
    }

    /// The longest a channel keeps a message, in seconds: its rule's limit,
    /// else `global`.
    pub fn max_age(&self, channel: &[u8], global: u64) -> u64 {
        self.for_channel(channel)
            .and_then(|r| r.max_age)
            .unwrap_or(global)
    }

    /// Whether a channel's cache may be kept on disk.
    pub fn persisted(&self, channel: &[u8]) -> bool {
        self.for_channel(channel)
            .and_then(|r| r.persist)
            .unwrap_or(true)
    }

    pub fn all(&self) -> &[ChannelRule] {
        &self.rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_rule_wins() {
        let rules = ChannelRules::new(vec![
            ChannelRule::new("*"),
            ChannelRule::new("chat.*"),
            ChannelRule::new("chat.vip"),
        ]);
        assert_eq!(rules.for_channel(b"chat.vip").unwrap().pattern, "chat.vip");
        assert_eq!(rules.for_channel(b"chat.x").unwrap().pattern, "chat.*");
        assert_eq!(rules.for_channel(b"news").unwrap().pattern, "*");
        let none = ChannelRules::new(vec![ChannelRule::new("a")]);
        assert!(none.for_channel(b"b").is_none());
    }

    #[test]
    fn limits_fall_back_to_the_global_ones() {
        let mut short = ChannelRule::new("short.*");
        short.max_messages = Some(2);
        short.max_age = Some(5);
        short.persist = Some(false);
        let rules = ChannelRules::new(vec![short]);
        assert_eq!(rules.max_messages(b"short.a", 100), 2);
        assert_eq!(rules.max_messages(b"long", 100), 100);
        assert_eq!(rules.max_age(b"short.a", 60), 5);
        assert_eq!(rules.max_age(b"long", 60), 60);
        assert!(!rules.persisted(b"short.a"));
        assert!(rules.persisted(b"long"));
    }

    #[test]
    fn validation() {
        let mut rule = ChannelRule::new("chat.*");
        assert!(rule.validate().is_ok());
        assert!(rule.allows(Transport::Poll));
        rule.transports = Some(vec![Transport::Sse]);
        assert!(rule.allows(Transport::Sse) && !rule.allows(Transport::Poll));
        rule.transports = Some(vec![]);
        assert!(rule.validate().is_err());
        assert!(ChannelRule::new("has space").validate().is_err());
    }
}
