//! The table of configuration keys: their names, legacy defaults and meaning.
//!
//! Order matters: unambiguous-prefix matching on the command line walks this
//! list in order, exactly as meteord 1.06 did, so `-h` is ambiguous
//! (HeaderTemplate, Help) while `-Hel` means Help.

/// Whether a key can be overridden inside a `[mode]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One value for the whole server.
    Global,
    /// A global default that a `[mode]` section may override.
    PerMode,
}

/// One configuration key.
#[derive(Debug, PartialEq, Eq)]
pub struct Key {
    pub name: &'static str,
    /// The default, written with the same backslash escapes a config file uses.
    pub default: &'static str,
    pub scope: Scope,
    pub help: &'static str,
}

const HTTP_HEADER: &str = "HTTP/1.1 ~status~\\r\\nServer: ~server~\\r\\nContent-Type: text/html; charset=utf-8\\r\\nPragma: no-cache\\r\\nCache-Control: no-cache, no-store, must-revalidate\\r\\nExpires: Thu, 1 Jan 1970 00:00:00 GMT\\r\\n\\r\\n";

/// Every key meteord 1.06 understands, in its original order.
pub const KEYS: &[Key] = &[
    Key {
        name: "ACMECAFile",
        default: "",
        scope: Scope::Global,
        help: "With TLS acme: PEM file of the root certificates to trust the ACME server's own HTTPS with, for a private CA such as step-ca (empty: the well-known public roots)",
    },
    Key {
        name: "ACMEChallenge",
        default: "auto",
        scope: Scope::Global,
        help: "With TLS acme: how the CA checks the names: tls-alpn-01 (on SubscriberPort, which the CA reaches as port 443), http-01 (on PlainSubscriberPort, reached as port 80) or auto (tls-alpn-01, then http-01 after a failure when PlainSubscriberPort is set)",
    },
    Key {
        name: "ACMEDirectory",
        default: super::values::LETS_ENCRYPT,
        scope: Scope::Global,
        help: "With TLS acme: the directory URL of the ACME certificate authority (default: Let's Encrypt; its staging directory for trials is https://acme-staging-v02.api.letsencrypt.org/directory)",
    },
    Key {
        name: "ACMEEmail",
        default: "",
        scope: Scope::Global,
        help: "With TLS acme: contact address given to the certificate authority, for expiry and policy notices (empty: none)",
    },
    Key {
        name: "AdminIP",
        default: "",
        scope: Scope::Global,
        help: "Address of the admin web UI (empty: 127.0.0.1 only)",
    },
    Key {
        name: "AdminPort",
        default: "4672",
        scope: Scope::Global,
        help: "TCP port of the admin web UI",
    },
    Key {
        name: "AdminUI",
        default: "1",
        scope: Scope::Global,
        help: "0 turns the admin web UI off",
    },
    Key {
        name: "AllowOrigin",
        default: "*",
        scope: Scope::Global,
        help: "Web origins whose pages may read /sse and /poll responses: * for any, or a space-separated list such as https://app.example.com",
    },
    Key {
        name: "AuthorizeCacheSeconds",
        default: "60",
        scope: Scope::Global,
        help: "How long the authorize callback's answer for one browser (its cookies) and one channel is reused",
    },
    Key {
        name: "AuthorizeURL",
        default: "",
        scope: Scope::Global,
        help: "The application's URL that decides, for a subscription to a private channel without a token, whether its browser (its forwarded cookies) may see the channel (empty: no callback)",
    },
    Key {
        name: "AutoUpdate",
        default: "check",
        scope: Scope::Global,
        help: "Updates from UpdateFeed: off (only when asked), check (look once a day and report in the log, admin UI and tray) or install (also install and restart by itself)",
    },
    Key {
        name: "ChannelInfoTemplate",
        default: "<script>ch(\"~name~\", ~lastMsgID~);</script>\\r\\n",
        scope: Scope::PerMode,
        help: "Rendered once per requested channel into ~channelinfo~ (~name~, ~lastMsgID~, ~messageCount~, ~subscriberCount~)",
    },
    Key {
        name: "ClientPublishRate",
        default: "10 20",
        scope: Scope::Global,
        help: "Messages a second one browser connection may publish over the WebSocket (its token's publish claim must cover the channel), and the burst it may send at once: '10 20' (0: browsers may not publish)",
    },
    Key {
        name: "ConfigFileLocation",
        default: "/etc/meteord.conf",
        scope: Scope::Global,
        help: "Path of the configuration file; when it does not exist the built-in default configuration is used",
    },
    Key {
        name: "ControllerAllow",
        default: "",
        scope: Scope::Global,
        help: "Addresses (or networks like 10.0.0.0/8) that may publish over TCP and UDP; empty: this machine only; * for anyone",
    },
    Key {
        name: "ControllerIP",
        default: "",
        scope: Scope::Global,
        help: "Address the control port listens on (empty: 127.0.0.1 only)",
    },
    Key {
        name: "ControllerPort",
        default: "4671",
        scope: Scope::Global,
        help: "TCP port for publishers (the line protocol)",
    },
    Key {
        name: "ControllerShutdownMsg",
        default: "",
        scope: Scope::Global,
        help: "Sent to connected publishers when the server shuts down (empty: nothing)",
    },
    Key {
        name: "ControllerTLS",
        default: "0",
        scope: Scope::Global,
        help: "1 makes the control port speak TLS too (needs TLS on); publishers then connect with a TLS client",
    },
    Key {
        name: "DataDirectory",
        default: "",
        scope: Scope::Global,
        help: "Where the database lives (empty: /var/lib/meteord for root, else the user's local data directory)",
    },
    Key {
        name: "Debug",
        default: "0",
        scope: Scope::Global,
        help: "Log debug detail",
    },
    Key {
        name: "DirectoryIndex",
        default: "index.html",
        scope: Scope::Global,
        help: "File served when a directory of the document root is requested",
    },
    Key {
        name: "Engine",
        default: "memory",
        scope: Scope::Global,
        help: "Where channels live: memory (this server alone) or redis (several servers share channels, ids and backlogs through the Redis server at RedisURL)",
    },
    Key {
        name: "HeaderTemplate",
        default: HTTP_HEADER,
        scope: Scope::PerMode,
        help: "Start of every /push response (~status~, ~server~, ~servertime~, ~channelinfo~)",
    },
    Key {
        name: "Help",
        default: "",
        scope: Scope::Global,
        help: "Print this help and exit",
    },
    Key {
        name: "HSTSMaxAge",
        default: "0",
        scope: Scope::Global,
        help: "With TLS on: send Strict-Transport-Security with this max-age in seconds (0: do not send it)",
    },
    Key {
        name: "LogDirectory",
        default: "",
        scope: Scope::Global,
        help: "Directory of the daily log files (empty: /var/log/meteord for root on Linux, else the logs folder of the data directory; off: standard error only)",
    },
    Key {
        name: "LogFormat",
        default: "text",
        scope: Scope::Global,
        help: "Format of the log files: text, or json (one JSON object a line); standard error is always text",
    },
    Key {
        name: "LogRetention",
        default: "14",
        scope: Scope::Global,
        help: "Daily log files kept; older ones are deleted (0: keep all)",
    },
    Key {
        name: "LogTimeFormat",
        default: "human",
        scope: Scope::Global,
        help: "Timestamps in the log: human or unix",
    },
    Key {
        name: "MaxControllerConnections",
        default: "256",
        scope: Scope::Global,
        help: "Publishers connected at once; more are refused with ERR (0: no limit)",
    },
    Key {
        name: "MaxConnectionsPerIP",
        default: "0",
        scope: Scope::Global,
        help: "Connections one client address may hold on the subscriber port (0: no limit)",
    },
    Key {
        name: "MaxChannels",
        default: "100000",
        scope: Scope::Global,
        help: "Channels held in memory past which a subscription that would add a new (empty) channel is refused; publishing is never refused (0: no limit)",
    },
    Key {
        name: "MaxChannelsPerSubscription",
        default: "256",
        scope: Scope::Global,
        help: "Channels one subscription (one /push, /sse or /poll request, one WebSocket) may name",
    },
    Key {
        name: "MaxQueuedMB",
        default: "64",
        scope: Scope::Global,
        help: "Megabytes of messages waiting, all subscribers together, for sockets that do not take them; past it the slowest subscribers are dropped (0: no limit)",
    },
    Key {
        name: "MaxMessageAge",
        default: "7200",
        scope: Scope::Global,
        help: "Seconds a message stays in its channel's cache",
    },
    Key {
        name: "MaxMessages",
        default: "0",
        scope: Scope::PerMode,
        help: "Close a subscriber after this many messages (0: no limit)",
    },
    Key {
        name: "MaxMessagesPerChannel",
        default: "250",
        scope: Scope::Global,
        help: "Messages kept in each channel's cache (0: no limit)",
    },
    Key {
        name: "MaxTime",
        default: "0",
        scope: Scope::PerMode,
        help: "Close a persistent subscriber after this many seconds (0: no limit)",
    },
    Key {
        name: "MessageTemplate",
        default: "<script>p(~id~,\"~channel~\",\"~text~\");</script>\\r\\n",
        scope: Scope::PerMode,
        help: "One message as sent to subscribers (~id~, ~channel~, ~text~, ~timestamp~)",
    },
    Key {
        name: "PingInterval",
        default: "5",
        scope: Scope::Global,
        help: "Seconds between pings to persistent subscribers (0: no pings)",
    },
    Key {
        name: "Persist",
        default: "0",
        scope: Scope::PerMode,
        help: "1: keep the subscriber connection open for live messages; 0: send the backlog and close",
    },
    Key {
        name: "Metrics",
        default: "local",
        scope: Scope::Global,
        help: "Who may read /metrics: off, local (this machine, or with an API token) or public",
    },
    Key {
        name: "Persistence",
        default: "snapshot",
        scope: Scope::Global,
        help: "Channel caches on disk: off, snapshot (every SnapshotInterval seconds and at shutdown) or durable (each message before its OK)",
    },
    Key {
        name: "PingMessage",
        default: "<script>p(-1,\"\");</script>\\r\\n",
        scope: Scope::PerMode,
        help: "Sent to persistent subscribers every PingInterval seconds (empty: no pings)",
    },
    Key {
        name: "NodeName",
        default: "",
        scope: Scope::Global,
        help: "This server's name among the nodes sharing a Redis engine: letters, digits, . _ - (empty: the host name and subscriber port)",
    },
    Key {
        name: "RedisCAFile",
        default: "",
        scope: Scope::Global,
        help: "PEM file of the certificate authority that signed the Redis server's certificate, for rediss:// to a server with a private CA (empty: the system's trusted roots)",
    },
    Key {
        name: "RedisPrefix",
        default: "meteord",
        scope: Scope::Global,
        help: "Start of every Redis key the redis engine uses; nodes with the same prefix share their channels",
    },
    Key {
        name: "RedisURL",
        default: "redis://127.0.0.1:6379/",
        scope: Scope::Global,
        help: "Redis server of the redis engine: redis://[:password@]host:port/db, or rediss:// for TLS (the password never appears in logs or the admin UI)",
    },
    Key {
        name: "SnapshotInterval",
        default: "5",
        scope: Scope::Global,
        help: "Seconds between writes of the channel caches in snapshot mode",
    },
    Key {
        name: "SubscriberIP",
        default: "",
        scope: Scope::Global,
        help: "Address the subscriber port listens on (empty: all interfaces)",
    },
    Key {
        name: "MaxSubscriberConnections",
        default: "0",
        scope: Scope::Global,
        help: "Connections on the subscriber port at once; more get 503 (0: no limit but the system's)",
    },
    Key {
        name: "SubscriberPort",
        default: "4670",
        scope: Scope::Global,
        help: "TCP port for subscribers (HTTP)",
    },
    Key {
        name: "PlainSubscriberPort",
        default: "0",
        scope: Scope::Global,
        help: "With TLS on: also serve plain HTTP on this port of SubscriberIP, for legacy clients (0: none)",
    },
    Key {
        name: "PresenceLeaveDelay",
        default: "5",
        scope: Scope::Global,
        help: "Seconds a member whose last connection closed still counts as present, so that a reload or a long-poll reconnect is not a leave and a join",
    },
    Key {
        name: "PrivateChannels",
        default: "",
        scope: Scope::Global,
        help: "Channels (names and * patterns, space-separated) that only subscribers with a signed token, an API token or the authorize callback's consent may see",
    },
    Key {
        name: "SubscriberShutdownMsg",
        default: "<script>eof();</script>\\r\\n",
        scope: Scope::PerMode,
        help: "Sent to a subscriber that is closed by shutdown, a kick or /disconnect",
    },
    Key {
        name: "SubscriberDocumentRoot",
        default: "/usr/local/meteor/public_html",
        scope: Scope::Global,
        help: "Directory of static files; when it does not exist the built-in client files are served",
    },
    Key {
        name: "SubscriberDynamicPageAddress",
        default: "/push",
        scope: Scope::Global,
        help: "URL prefix of subscriptions",
    },
    Key {
        name: "SyslogFacility",
        default: "daemon",
        scope: Scope::Global,
        help: "Accepted for compatibility; logs go to standard error and LogDirectory",
    },
    Key {
        name: "TrustedProxies",
        default: "",
        scope: Scope::Global,
        help: "Reverse proxies (addresses or networks such as 10.0.0.0/8) whose X-Forwarded-For and X-Forwarded-Proto are believed: for the sign-in lockout, /metrics and the admin UI's checks (empty: none)",
    },
    Key {
        name: "TLS",
        default: "off",
        scope: Scope::Global,
        help: "HTTPS and WSS on the subscriber port and the admin UI: off, on (TLSCertificateFile and TLSKeyFile), self-signed (made once and kept in DataDirectory/tls) or acme (obtained for TLSHostnames from ACMEDirectory, renewed by itself and kept in DataDirectory/tls/acme)",
    },
    Key {
        name: "TLSCertificateFile",
        default: "",
        scope: Scope::Global,
        help: "PEM file with the certificate, followed by its chain; reloaded when it changes and on SIGHUP",
    },
    Key {
        name: "TLSHostnames",
        default: "",
        scope: Scope::Global,
        help: "With TLS acme: the names (space-separated) to obtain the certificate for. With TLS self-signed: extra names and addresses, besides localhost and this machine's name",
    },
    Key {
        name: "TLSKeyFile",
        default: "",
        scope: Scope::Global,
        help: "PEM file with the certificate's private key",
    },
    Key {
        name: "TokenPublicKeyFile",
        default: "",
        scope: Scope::Global,
        help: "A PEM public key (RSA, P-256 or Ed25519) that signed subscribe tokens (RS256, ES256, EdDSA) must verify against",
    },
    Key {
        name: "TokenSecret",
        default: "",
        scope: Scope::Global,
        help: "The secret that signed subscribe tokens (HS256) must verify against; generate one in the admin UI (empty: none)",
    },
    Key {
        name: "UDPIP",
        default: "",
        scope: Scope::Global,
        help: "Address of the UDP publish port (empty: 127.0.0.1 only)",
    },
    Key {
        name: "UDPPort",
        default: "0",
        scope: Scope::Global,
        help: "UDP port accepting one ADDMESSAGE per datagram (0: off)",
    },
    Key {
        name: "UpdateChannel",
        default: "stable",
        scope: Scope::Global,
        help: "Releases to update to: stable, or beta (pre-releases too)",
    },
    Key {
        name: "UpdateFeed",
        default: "",
        scope: Scope::Global,
        help: "URL of the release manifest (JSON) updates come from; empty: the feed official releases carry (none in source builds and installed packages); off: never",
    },
    Key {
        name: "WebhookEvents",
        default: "channel_occupied channel_vacated member_joined member_left",
        scope: Scope::Global,
        help: "Events sent to WebhookURL: channel_occupied, channel_vacated, member_joined, member_left, message_published (space-separated)",
    },
    Key {
        name: "WebhookRetrySeconds",
        default: "3600",
        scope: Scope::Global,
        help: "How long a webhook delivery the application did not accept is retried, with growing pauses, before it becomes a dead letter shown in the admin UI",
    },
    Key {
        name: "WebhookSecret",
        default: "",
        scope: Scope::Global,
        help: "The secret that signs webhook deliveries: X-Meteord-Signature: sha256=<hex HMAC-SHA256 of the body> (empty: unsigned)",
    },
    Key {
        name: "WebhookURL",
        default: "",
        scope: Scope::Global,
        help: "The application's URLs (space-separated) that receive events as signed JSON POSTs (empty: no webhooks)",
    },
];

/// The key with exactly this name (case-sensitive, as in config files).
pub fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Why a command-line key did not resolve.
#[derive(Debug, PartialEq, Eq)]
pub enum PrefixError {
    Unknown,
    Ambiguous,
}

/// Resolve a command-line key: an exact (case-insensitive) name wins,
/// otherwise the key must be the prefix of exactly one name.
pub fn resolve_prefix(given: &str) -> Result<&'static Key, PrefixError> {
    let given = given.to_ascii_lowercase();
    let mut found = None;
    for key in KEYS {
        let name = key.name.to_ascii_lowercase();
        if name == given {
            return Ok(key);
        }
        if name.starts_with(&given) {
            if found.is_some() {
                return Err(PrefixError::Ambiguous);
            }
            found = Some(key);
        }
    }
    found.ok_or(PrefixError::Unknown)
}

/// Does a change of this key take effect only when the server starts?
/// (Listening addresses, TLS, storage and the engine are set up once.)
pub fn needs_restart(name: &str) -> bool {
    name.ends_with("IP")
        || name.ends_with("Port")
        || matches!(
            name,
            "AdminUI"
                | "DataDirectory"
                | "Persistence"
                | "SnapshotInterval"
                | "TLS"
                | "TLSCertificateFile"
                | "TLSKeyFile"
                | "TLSHostnames"
                | "ControllerTLS"
                | "ACMECAFile"
                | "ACMEChallenge"
                | "ACMEDirectory"
                | "ACMEEmail"
                | "Engine"
                | "NodeName"
                | "RedisCAFile"
                | "RedisPrefix"
                | "RedisURL"
        )
}

/// Keys that name files or directories on this machine. Only the config
/// file and the command line may set them: from the admin UI they would let
/// whoever holds its password serve `/etc` or the database to anyone.
pub const PATH_KEYS: &[&str] = &[
    "ACMECAFile",
    "ConfigFileLocation",
    "TokenPublicKeyFile",
    "DataDirectory",
    "LogDirectory",
    "RedisCAFile",
    "SubscriberDocumentRoot",
    "TLSCertificateFile",
    "TLSKeyFile",
];

/// Keys whose values are secrets: never shown in pages or logs.
pub const SECRET_KEYS: &[&str] = &["TokenSecret", "WebhookSecret"];

/// May the admin UI change this key? Global keys only; not help, nor the
/// files and directories the server uses ([`PATH_KEYS`]), nor the log
/// files, which are set up before the database (and its saved settings)
/// is opened.
pub fn ui_settable(name: &str) -> bool {
    find(name).is_some_and(|k| {
        k.scope == Scope::Global
            && !PATH_KEYS.contains(&k.name)
            && !matches!(k.name, "Help" | "LogFormat" | "LogRetention")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_settings_need_a_restart_or_may_change_in_the_ui() {
        assert!(needs_restart("SubscriberPort"));
        assert!(needs_restart("UDPIP"));
        assert!(needs_restart("Persistence"));
        assert!(!needs_restart("MaxMessagesPerChannel"));
        assert!(ui_settable("MaxMessagesPerChannel"));
        assert!(!ui_settable("ConfigFileLocation"));
        assert!(!ui_settable("SubscriberDocumentRoot"));
        assert!(!ui_settable("DataDirectory"));
        assert!(PATH_KEYS.iter().all(|k| find(k).is_some()));
        assert!(!ui_settable("MessageTemplate")); // per mode
        assert!(needs_restart("ACMEDirectory"));
        assert!(!ui_settable("ACMECAFile"));
    }

    #[test]
    fn prefixes_resolve_like_meteord() {
        assert_eq!(
            resolve_prefix("ControllerPort").unwrap().name,
            "ControllerPort"
        );
        assert_eq!(
            resolve_prefix("controllerp").unwrap().name,
            "ControllerPort"
        );
        assert_eq!(resolve_prefix("Sub"), Err(PrefixError::Ambiguous));
        assert_eq!(resolve_prefix("h"), Err(PrefixError::Ambiguous));
        assert_eq!(resolve_prefix("Hel").unwrap().name, "Help");
        assert_eq!(resolve_prefix("Nope"), Err(PrefixError::Unknown));
        // "MaxMessages" is a prefix of "MaxMessagesPerChannel" but matches exactly.
        assert_eq!(resolve_prefix("maxmessages").unwrap().name, "MaxMessages");
    }
}
