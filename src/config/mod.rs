//! Configuration: the legacy `meteord.conf` file and `-Key value` command
//! line, merged over the legacy defaults into one typed [`Config`].
//!
//! Precedence is command line, then file, then default, for every key and
//! for every `Key.mode` override. Each value remembers where it came from so
//! that the log and the admin UI can say why a setting has its value.

mod build;
pub mod cli;
mod file;
pub mod keys;
mod resolve;
pub mod topics;
pub mod values;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::template::Template;
pub use cli::{parse_args, Invocation, LegacyArgs};
pub use file::ConfigFile;
pub use values::{
    AcmeChallenge, AcmeSettings, AutoUpdate, EngineKind, LogFormat, MetricsAccess, Persistence,
    TlsMode, UpdateChannel,
};

/// The configuration used when no config file exists: the example
/// configuration shipped with meteord 1.06, every mode included.
/// The running version: the package's, or the one a release build was
/// made as (`METEORD_VERSION` at build time, set by `scripts/release.sh`).
pub const VERSION: &str = match option_env!("METEORD_VERSION") {
    Some(version) => version,
    None => env!("CARGO_PKG_VERSION"),
};

pub const BUILTIN_CONFIG: &str = include_str!("../../assets/meteord.conf");

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    /// The built-in default configuration file, at this line.
    Builtin(usize),
    /// The configuration file, at this line.
    File(usize),
    CommandLine,
    /// Set in the admin UI.
    Ui,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::Builtin(line) => write!(f, "built-in config line {line}"),
            Source::File(line) => write!(f, "config file line {line}"),
            Source::CommandLine => write!(f, "command line"),
            Source::Ui => write!(f, "admin UI"),
        }
    }
}

/// Whether a Redis URL is one the engine can use; says why not.
fn check_redis_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err("expected a redis:// or rediss:// URL".into());
    }
    redis::Client::open(url)
        .map(|_| ())
        .map_err(|e| format!("not a usable Redis URL ({:?})", e.kind()))
}

/// A URL with its password (if any) replaced by `***`, fit for logs and
/// pages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    let userinfo = &rest[..at];
    let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
    format!("{scheme}://{user}:***@{}", &rest[at + 1..])
}

/// A node name: short, and safe in Redis keys, logs and pages.
pub fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// This machine's name, reduced to the characters a node name may use.
fn host_name() -> String {
    let raw = machine_name().unwrap_or_default();
    let name: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(48)
        .collect();
    if name.is_empty() {
        "meteord".into()
    } else {
        name
    }
}

/// This machine's name as the environment or the system gives it
/// (trimmed; unchecked), if it has one.
pub fn machine_name() -> Option<String> {
    std::env::var("HOSTNAME")
        .or_else(|_| std::env::var("COMPUTERNAME"))
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
}

/// A configuration problem, naming the file, line and key where it can.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: line {line}: {message}")]
    File {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{key} ({origin}): {message}")]
    Value {
        key: String,
        origin: String,
        message: String,
    },
    #[error("command line: {0}")]
    CommandLine(String),
}

/// One resolved setting as it is shown to people.
#[derive(Debug, Clone)]
pub struct Setting {
    pub key: &'static str,
    pub mode: Option<String>,
    /// The value as written (escapes not yet applied).
    pub raw: String,
    pub source: Source,
}

/// Everything one subscriber mode (a `[section]`, or the global defaults)
/// decides about a `/push` response.
#[derive(Debug)]
pub struct Mode {
    /// The section name; empty for the global defaults.
    pub name: String,
    pub header: Template,
    pub message: Template,
    pub channel_info: Template,
    pub ping: Bytes,
    pub shutdown: Bytes,
    pub persist: bool,
    pub max_messages: u64,
    pub max_time: u64,
}

/// Messages a second a browser connection may publish, and how many at
/// once (`per_second` 0: browsers may not publish).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishRate {
    pub per_second: u32,
    pub burst: u32,
}

/// The events webhooks can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookEvent {
    ChannelOccupied,
    ChannelVacated,
    MemberJoined,
    MemberLeft,
    MessagePublished,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 5] = [
        WebhookEvent::ChannelOccupied,
        WebhookEvent::ChannelVacated,
        WebhookEvent::MemberJoined,
        WebhookEvent::MemberLeft,
        WebhookEvent::MessagePublished,
    ];

    /// The name in `WebhookEvents` and in a delivery's `event`.
    pub const fn name(self) -> &'static str {
        match self {
            WebhookEvent::ChannelOccupied => "channel_occupied",
            WebhookEvent::ChannelVacated => "channel_vacated",
            WebhookEvent::MemberJoined => "member_joined",
            WebhookEvent::MemberLeft => "member_left",
            WebhookEvent::MessagePublished => "message_published",
        }
    }

    pub fn from_name(name: &str) -> Option<WebhookEvent> {
        WebhookEvent::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// The whole, typed configuration.
#[derive(Debug)]
pub struct Config {
    pub admin_ip: IpAddr,
    pub admin_port: u16,
    pub admin_ui: bool,
    /// `None`: any origin; otherwise the allowed origins.
    pub allow_origin: Option<Vec<String>>,
    /// Who may publish: `None` for anyone, else these networks (the default
    /// is this machine's loopback addresses).
    pub controller_allow: Option<Vec<ipnet::IpNet>>,
    pub controller_ip: IpAddr,
    pub controller_port: u16,
    pub max_connections_per_ip: u64,
    /// Channels in memory past which subscriptions may not add new ones.
    pub max_channels: usize,
    /// Channels one subscription may name.
    pub max_channels_per_subscription: usize,
    /// Bytes of messages waiting for slow sockets, all together (0: no limit).
    pub max_queued_bytes: usize,
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Channel patterns that need a token (or the authorize callback).
    pub private_channels: Vec<String>,
    /// The HS256 secret of subscribe tokens (a secret: never log it).
    pub token_secret: String,
    /// The PEM public key of subscribe tokens.
    pub token_public_key_file: Option<PathBuf>,
    /// The application's authorize callback (empty: none).
    pub authorize_url: String,
    /// How long one callback answer is reused.
    pub authorize_cache_seconds: u64,
    /// How long a member whose last connection closed still counts.
    pub presence_leave_delay: std::time::Duration,
    /// What one browser connection may publish.
    pub client_publish_rate: PublishRate,
    /// The application's webhook URLs (none: no webhooks).
    pub webhook_urls: Vec<String>,
    /// Signs webhook deliveries (a secret: never log it; empty: unsigned).
    pub webhook_secret: String,
    /// The events sent to the webhook URLs.
    pub webhook_events: Vec<WebhookEvent>,
    /// How long a delivery is retried before it is a dead letter.
    pub webhook_retry: std::time::Duration,
    /// Where the TLS certificate comes from, if TLS is on.
    pub tls: TlsMode,
    /// With TLS on, also TLS on the control port.
    pub controller_tls: bool,
    /// With TLS on, a plain-HTTP subscriber port too (0: none).
    pub plain_subscriber_port: u16,
    /// Strict-Transport-Security max-age on TLS answers (0: none).
    pub hsts_max_age: u64,
    pub metrics: MetricsAccess,
    pub persistence: Persistence,
    /// Where channels live: this process alone, or Redis shared by nodes.
    pub engine: EngineKind,
    /// The Redis server of the redis engine (may hold a password: never
    /// log it as it is, see [`redact_url`]).
    pub redis_url: String,
    pub redis_prefix: String,
    /// The CA that signed the Redis server's TLS certificate (none: the
    /// system's roots).
    pub redis_ca_file: Option<PathBuf>,
    /// This node's name among those sharing the Redis engine.
    pub node_name: String,
    pub data_directory: PathBuf,
    pub snapshot_interval: u64,
    pub controller_shutdown_msg: Bytes,
    pub debug: bool,
    pub directory_index: String,
    pub log_time_format: String,
    /// Where the daily log files go (`None`: `LogDirectory off`).
    pub log_directory: Option<PathBuf>,
    /// Log files kept (0: all).
    pub log_retention: usize,
    pub log_format: LogFormat,
    pub auto_update: AutoUpdate,
    /// The release manifest's URL; empty: none configured.
    pub update_feed: String,
    /// UpdateFeed was given (file, command line, admin UI): it replaces
    /// the feed an official build carries, even when empty or `off`.
    pub update_feed_set: bool,
    pub update_channel: UpdateChannel,
    pub max_controller_connections: u64,
    pub max_subscriber_connections: u64,
    pub max_message_age: u64,
    pub max_messages_per_channel: usize,
    pub ping_interval: u64,
    pub subscriber_ip: IpAddr,
    pub subscriber_port: u16,
    pub document_root: String,
    pub dynamic_page_address: String,
    pub syslog_facility: String,
    pub udp_ip: IpAddr,
    pub udp_port: u16,
    /// Settings of requests naming no known mode.
    pub global: Arc<Mode>,
    pub modes: HashMap<String, Arc<Mode>>,
    /// The file read, or `None` when the built-in configuration was used.
    pub file: Option<PathBuf>,
    /// Every key (and mode override), for display.
    pub settings: Vec<Setting>,
    /// Things worth a warning in the log that did not stop loading.
    pub warnings: Vec<String>,
}

impl Config {
    /// May a client at `ip` publish?
    pub fn may_publish(&self, ip: IpAddr) -> bool {
        // An IPv4 client on an IPv6 socket arrives as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match &self.controller_allow {
            None => true,
            Some(nets) => nets.iter().any(|n| n.contains(&ip)),
        }
    }

    /// Load the configuration named by the command line (or the default
    /// location), falling back to the built-in configuration when the
    /// default file does not exist.
    pub fn load(args: &LegacyArgs) -> Result<Config, ConfigError> {
        Config::load_with(args, &LegacyArgs::default())
    }

    /// [`Config::load`], with settings made in the admin UI (`ui`, global
    /// keys only) taking precedence over everything else.
    pub fn load_with(args: &LegacyArgs, ui: &LegacyArgs) -> Result<Config, ConfigError> {
        let (location, explicit) = match args.get("ConfigFileLocation", None) {
            Some(path) => (unescape(path), true),
            None => (
                unescape(keys::find("ConfigFileLocation").unwrap().default),
                false,
            ),
        };
        let path = Path::new(&location);
        let (file, used) = if path.is_file() {
            let text = std::fs::read(path).map_err(|source| ConfigError::Read {
                path: location.clone(),
                source,
            })?;
            (
                ConfigFile::parse(&text, &location, Source::File)?,
                Some(path.to_path_buf()),
            )
        } else if explicit {
            return Err(ConfigError::Read {
                path: location,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        } else {
            (
                ConfigFile::parse(
                    BUILTIN_CONFIG.as_bytes(),
                    "built-in config",
                    Source::Builtin,
                )?,
                None,
            )
        };
        Config::from_layers(args, ui, &file, used)
    }

    /// Build from already-parsed command line and file contents.
    pub fn from_parts(
        args: &LegacyArgs,
        file: &ConfigFile,
        used: Option<PathBuf>,
    ) -> Result<Config, ConfigError> {
        Config::from_layers(args, &LegacyArgs::default(), file, used)
    }

    /// The settings for a mode named in a request: its section if the
    /// config has one (names match case-sensitively), else the globals.
    pub fn mode(&self, name: &str) -> &Arc<Mode> {
        self.modes.get(name).unwrap_or(&self.global)
    }
}

/// Apply meteord's value escapes: `\r \n \t \s \0`; any other `\X` is `X`.
pub fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('s') => out.push(' '),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Every (key, mode) pair given, for warnings.
type Entry<'a, V> = (&'a str, Option<&'a str>, V);

pub(crate) fn entries_of<V>(
    map: &BTreeMap<(String, Option<String>), V>,
) -> impl Iterator<Item = Entry<'_, &V>> {
    map.iter().map(|((k, m), v)| (k.as_str(), m.as_deref(), v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("redis://:s3cret@db:6379/0"),
            "redis://:***@db:6379/0"
        );
        assert_eq!(redact_url("rediss://app:p@ss@db/"), "rediss://app:***@db/");
        assert_eq!(redact_url("redis://db:6379/"), "redis://db:6379/");
        assert!(check_redis_url("http://db/").is_err());
        assert!(check_redis_url("rediss://:pw@db:6380/").is_ok());
        assert!(valid_node_name("web-1.eu_2") && !valid_node_name("a b") && !valid_node_name(""));
    }

    #[test]
    fn unescapes_like_meteord() {
        assert_eq!(unescape(r"a\r\nb\tc\sd\0e\\f\qg"), "a\r\nb\tc d\0e\\fqg");
        assert_eq!(unescape("trailing\\"), "trailing\\");
    }

    #[test]
    fn builtin_config_has_every_example_mode() {
        let file =
            ConfigFile::parse(BUILTIN_CONFIG.as_bytes(), "built-in", Source::Builtin).unwrap();
        let config = Config::from_parts(&LegacyArgs::default(), &file, None).unwrap();
        for mode in [
            "iframe",
            "xhrinteractive",
            "simplepoll",
            "smartpoll",
            "longpoll",
            "flash",
            "flashloadvars",
        ] {
            assert!(config.modes.contains_key(mode), "{mode} missing");
        }
        assert_eq!(config.ping_interval, 3);
        assert_eq!(config.mode("longpoll").max_messages, 1);
        assert!(config.mode("longpoll").persist);
        assert!(!config.mode("simplepoll").persist);
        assert_eq!(config.mode("flash").ping.as_ref(), b".\0");
        assert!(config.mode("flashloadvars").ping.is_empty());
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }
}
