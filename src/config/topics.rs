//! Settings grouped by what they are about, for the admin UI's settings
//! page. The key table (`keys.rs`) keeps meteord's order, which the
//! command line's prefix matching depends on; the grouping lives here.

/// What a setting is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Topic {
    Network,
    Limits,
    Security,
    Tls,
    PrivateChannels,
    BrowserPublishing,
    Presence,
    Webhooks,
    Persistence,
    Cluster,
    Logs,
    Updates,
    LegacyTemplates,
}

impl Topic {
    /// Every topic, in the order the page shows them.
    pub const ALL: [Topic; 13] = [
        Topic::Network,
        Topic::Limits,
        Topic::Security,
        Topic::Tls,
        Topic::PrivateChannels,
        Topic::BrowserPublishing,
        Topic::Presence,
        Topic::Webhooks,
        Topic::Persistence,
        Topic::Cluster,
        Topic::Logs,
        Topic::Updates,
        Topic::LegacyTemplates,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Topic::Network => "Network",
            Topic::Limits => "Connections and limits",
            Topic::Security => "Security",
            Topic::Tls => "TLS (HTTPS, WSS)",
            Topic::PrivateChannels => "Private channels and tokens",
            Topic::BrowserPublishing => "Publishing from browsers",
            Topic::Presence => "Presence",
            Topic::Webhooks => "Webhooks",
            Topic::Persistence => "Persistence",
            Topic::Cluster => "Cluster (redis engine)",
            Topic::Logs => "Logs",
            Topic::Updates => "Updates",
            Topic::LegacyTemplates => "Legacy templates and pages",
        }
    }

    /// A short word for anchors and the page's filter.
    pub fn slug(self) -> &'static str {
        match self {
            Topic::Network => "network",
            Topic::Limits => "limits",
            Topic::Security => "security",
            Topic::Tls => "tls",
            Topic::PrivateChannels => "private",
            Topic::BrowserPublishing => "browser-publishing",
            Topic::Presence => "presence",
            Topic::Webhooks => "webhooks",
            Topic::Persistence => "persistence",
            Topic::Cluster => "cluster",
            Topic::Logs => "logs",
            Topic::Updates => "updates",
            Topic::LegacyTemplates => "legacy",
        }
    }
}

/// The topic of a key of the key table (`None` for a name that is not one).
pub fn topic(key: &str) -> Option<Topic> {
    Some(match key {
        "AdminIP"
        | "AdminPort"
        | "AdminUI"
        | "ControllerIP"
        | "ControllerPort"
        | "SubscriberIP"
        | "SubscriberPort"
        | "PlainSubscriberPort"
        | "UDPIP"
        | "UDPPort"
        | "ConfigFileLocation" => Topic::Network,
        "MaxControllerConnections"
        | "MaxConnectionsPerIP"
        | "MaxSubscriberConnections"
        | "MaxChannels"
        | "MaxChannelsPerSubscription"
        | "MaxQueuedMB"
        | "MaxMessageAge"
        | "MaxMessages"
        | "MaxMessagesPerChannel"
        | "MaxTime"
        | "PingInterval" => Topic::Limits,
        "ControllerAllow" | "AllowOrigin" | "TrustedProxies" | "Metrics" => Topic::Security,
        "TLS" | "TLSCertificateFile" | "TLSKeyFile" | "TLSHostnames" | "ControllerTLS"
        | "HSTSMaxAge" | "ACMEDirectory" | "ACMEEmail" | "ACMEChallenge" | "ACMECAFile" => {
            Topic::Tls
        }
        "PrivateChannels"
        | "TokenPublicKeyFile"
        | "TokenSecret"
        | "AuthorizeURL"
        | "AuthorizeCacheSeconds" => Topic::PrivateChannels,
        "ClientPublishRate" => Topic::BrowserPublishing,
        "PresenceLeaveDelay" => Topic::Presence,
        "WebhookURL" | "WebhookSecret" | "WebhookEvents" | "WebhookRetrySeconds" => Topic::Webhooks,
        "Persistence" | "Persist" | "DataDirectory" | "SnapshotInterval" => Topic::Persistence,
        "Engine" | "RedisURL" | "RedisCAFile" | "RedisPrefix" | "NodeName" => Topic::Cluster,
        "Debug" | "LogDirectory" | "LogFormat" | "LogRetention" | "LogTimeFormat"
        | "SyslogFacility" => Topic::Logs,
        "AutoUpdate" | "UpdateChannel" | "UpdateFeed" => Topic::Updates,
        "HeaderTemplate"
        | "MessageTemplate"
        | "ChannelInfoTemplate"
        | "PingMessage"
        | "SubscriberShutdownMsg"
        | "ControllerShutdownMsg"
        | "SubscriberDynamicPageAddress"
        | "SubscriberDocumentRoot"
        | "DirectoryIndex"
        | "Help" => Topic::LegacyTemplates,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::keys::KEYS;

    #[test]
    fn every_key_has_a_topic() {
        let missing: Vec<&str> = KEYS
            .iter()
            .map(|k| k.name)
            .filter(|name| topic(name).is_none())
            .collect();
        assert!(missing.is_empty(), "keys without a topic: {missing:?}");
        assert_eq!(topic("NoSuchKey"), None);
    }

    #[test]
    fn every_topic_has_keys() {
        for t in Topic::ALL {
            assert!(
                KEYS.iter().any(|k| topic(k.name) == Some(t)),
                "{t:?} has no key"
            );
        }
    }
}
