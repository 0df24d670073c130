//! Configuration: the legacy `meteord.conf` file and `-Key value` command
//! line, merged over the legacy defaults into one typed [`Config`].
//!
//! Precedence is command line, then file, then default, for every key and
//! for every `Key.mode` override. Each value remembers where it came from so
//! that the log (and later the admin UI) can say why a setting has its value.

pub mod cli;
mod file;
pub mod keys;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::template::{Kind, Template};
pub use cli::{parse_args, Invocation, LegacyArgs};
pub use file::ConfigFile;
use keys::Scope;

/// The configuration used when no config file exists: the example
/// configuration shipped with meteord 1.06, every mode included.
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

/// Where channels, ids and backlogs live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// In this process: one server alone.
    Memory,
    /// In Redis, shared by every node using the same RedisURL and prefix.
    Redis,
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineKind::Memory => "memory",
            EngineKind::Redis => "redis",
        })
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

/// Who may read `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsAccess {
    Off,
    /// Clients on this machine, or with an API token.
    Local,
    Public,
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
    /// Where the TLS certificate comes from, if TLS is on.
    pub tls: crate::tls::TlsMode,
    /// With TLS on, also TLS on the control port.
    pub controller_tls: bool,
    /// With TLS on, a plain-HTTP subscriber port too (0: none).
    pub plain_subscriber_port: u16,
    /// Strict-Transport-Security max-age on TLS answers (0: none).
    pub hsts_max_age: u64,
    pub metrics: MetricsAccess,
    pub persistence: crate::store::Persistence,
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
    pub log_format: crate::logging::LogFormat,
    pub auto_update: crate::update::AutoUpdate,
    /// The release manifest's URL; empty: updating is off.
    pub update_feed: String,
    pub update_channel: crate::update::UpdateChannel,
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

    /// How logging is set up (at start; a reload does not change it).
    pub fn log_settings(&self) -> crate::logging::LogSettings {
        crate::logging::LogSettings {
            debug: self.debug,
            unix_time: self.log_time_format.eq_ignore_ascii_case("unix"),
            directory: self.log_directory.clone(),
            retention: self.log_retention,
            format: self.log_format,
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

    /// Build from every layer: admin UI > command line > file > default.
    pub fn from_layers(
        args: &LegacyArgs,
        ui: &LegacyArgs,
        file: &ConfigFile,
        used: Option<PathBuf>,
    ) -> Result<Config, ConfigError> {
        let resolver = Resolver { args, ui, file };
        let mut warnings = Vec::new();

        let mut mode_names: BTreeSet<String> = file.modes().cloned().collect();
        mode_names.extend(args.modes().cloned());
        for (key, mode, origin) in file
            .entries()
            .map(|(k, m, v)| (k, m, v.source.to_string()))
            .chain(
                args.entries()
                    .map(|(k, m, _)| (k, m, Source::CommandLine.to_string())),
            )
        {
            if let (Some(mode), Some(key)) = (mode, keys::find(key)) {
                if key.scope == Scope::Global {
                    warnings.push(format!(
                        "{} in mode [{mode}] ({origin}) has no effect per mode; it applies to the whole server only when set outside any section",
                        key.name
                    ));
                }
            }
        }

        let global = Arc::new(resolver.mode(None)?);
        let mut modes = HashMap::new();
        for name in &mode_names {
            modes.insert(name.clone(), Arc::new(resolver.mode(Some(name))?));
        }

        let mut settings = Vec::new();
        for key in keys::KEYS.iter().filter(|k| k.name != "Help") {
            let (raw, source) = resolver.raw(key.name, None);
            settings.push(Setting {
                key: key.name,
                mode: None,
                raw: raw.to_string(),
                source,
            });
            if key.scope == Scope::PerMode {
                for name in &mode_names {
                    let (raw, source) = resolver.raw(key.name, Some(name));
                    if matches!(source, Source::Default) || resolver.is_inherited(key.name, name) {
                        continue;
                    }
                    settings.push(Setting {
                        key: key.name,
                        mode: Some(name.clone()),
                        raw: raw.to_string(),
                        source,
                    });
                }
            }
        }

        let dynamic_page_address = resolver.string("SubscriberDynamicPageAddress", None);
        if !dynamic_page_address.starts_with('/') {
            return Err(resolver.invalid(
                "SubscriberDynamicPageAddress",
                None,
                "must start with '/'",
            ));
        }

        let allow_origin = resolver.string("AllowOrigin", None);
        let allow_origin = match allow_origin.trim() {
            "*" => None,
            list => {
                let origins: Vec<String> = list.split_whitespace().map(str::to_string).collect();
                if let Some(bad) = origins.iter().find(|o| {
                    !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/')
                }) {
                    return Err(resolver.invalid(
                        "AllowOrigin",
                        None,
                        &format!("'{bad}' is not an origin like https://example.com"),
                    ));
                }
                Some(origins)
            }
        };

        let persistence = resolver
            .string("Persistence", None)
            .parse()
            .map_err(|e: String| resolver.invalid("Persistence", None, &e))?;
        let data_directory = match resolver.string("DataDirectory", None).trim() {
            "" => crate::store::default_data_dir(),
            dir => PathBuf::from(dir),
        };
        let snapshot_interval = resolver.number("SnapshotInterval", None)?.max(1);

        let log_directory = match resolver.string("LogDirectory", None).trim() {
            "" => Some(crate::logging::default_directory(&data_directory)),
            off if off.eq_ignore_ascii_case("off") => None,
            dir => Some(PathBuf::from(dir)),
        };
        let log_format = resolver
            .string("LogFormat", None)
            .parse()
            .map_err(|e: String| resolver.invalid("LogFormat", None, &e))?;
        let auto_update = resolver
            .string("AutoUpdate", None)
            .parse()
            .map_err(|e: String| resolver.invalid("AutoUpdate", None, &e))?;
        let update_channel = resolver
            .string("UpdateChannel", None)
            .parse()
            .map_err(|e: String| resolver.invalid("UpdateChannel", None, &e))?;
        let update_feed = resolver.string("UpdateFeed", None).trim().to_string();
        if !(update_feed.is_empty()
            || update_feed.starts_with("https://")
            || update_feed.starts_with("http://"))
        {
            return Err(resolver.invalid("UpdateFeed", None, "expected an http(s):// URL"));
        }
        let engine = match resolver
            .string("Engine", None)
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "memory" | "" => EngineKind::Memory,
            "redis" => EngineKind::Redis,
            _ => return Err(resolver.invalid("Engine", None, "expected memory or redis")),
        };
        let redis_url = resolver.string("RedisURL", None).trim().to_string();
        if engine == EngineKind::Redis {
            if let Err(problem) = check_redis_url(&redis_url) {
                // Not `invalid`: that would repeat the password.
                return Err(ConfigError::Value {
                    key: "RedisURL".into(),
                    origin: resolver.origin("RedisURL", None),
                    message: format!("{problem} (got '{}')", redact_url(&redis_url)),
                });
            }
        }
        let redis_ca_file = match resolver.string("RedisCAFile", None).trim() {
            "" => None,
            path => Some(PathBuf::from(path)),
        };
        let redis_prefix = resolver.string("RedisPrefix", None).trim().to_string();
        if redis_prefix.is_empty() || redis_prefix.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(resolver.invalid("RedisPrefix", None, "expected a word without spaces"));
        }
        let subscriber_port = resolver.port("SubscriberPort")?;
        let node_name = match resolver.string("NodeName", None).trim() {
            "" => format!("{}-{subscriber_port}", host_name()),
            name if valid_node_name(name) => name.to_string(),
            _ => {
                return Err(resolver.invalid(
                    "NodeName",
                    None,
                    "expected 1 to 64 letters, digits, '.', '_' or '-'",
                ))
            }
        };

        let metrics = match resolver
            .string("Metrics", None)
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "off" | "0" => MetricsAccess::Off,
            "local" => MetricsAccess::Local,
            "public" | "1" => MetricsAccess::Public,
            _ => return Err(resolver.invalid("Metrics", None, "expected off, local or public")),
        };

        let controller_allow = match resolver.string("ControllerAllow", None).trim() {
            "*" => None,
            "" => Some(vec![
                "127.0.0.0/8".parse().expect("valid network"),
                "::1/128".parse().expect("valid network"),
            ]),
            list => Some(
                list.split_whitespace()
                    .map(|item| {
                        item.parse::<ipnet::IpNet>()
                            .or_else(|_| item.parse::<IpAddr>().map(ipnet::IpNet::from))
                            .map_err(|_| {
                                resolver.invalid(
                                    "ControllerAllow",
                                    None,
                                    &format!(
                                        "'{item}' is not an address or a network like 10.0.0.0/8"
                                    ),
                                )
                            })
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };

        let tls = tls_mode(&resolver)?;
        let tls_on = tls != crate::tls::TlsMode::Off;

        Ok(Config {
            controller_tls: tls_on && resolver.flag("ControllerTLS", None)?,
            plain_subscriber_port: if tls_on {
                resolver.port("PlainSubscriberPort")?
            } else {
                0
            },
            hsts_max_age: resolver.number("HSTSMaxAge", None)?,
            tls,
            controller_allow,
            max_connections_per_ip: resolver.number("MaxConnectionsPerIP", None)?,
            admin_ip: resolver.ip("AdminIP", Ipv4Addr::LOCALHOST.into())?,
            admin_port: resolver.port("AdminPort")?,
            admin_ui: resolver.flag("AdminUI", None)?,
            metrics,
            allow_origin,
            persistence,
            engine,
            redis_url,
            redis_prefix,
            redis_ca_file,
            node_name,
            data_directory,
            snapshot_interval,
            controller_ip: resolver.ip("ControllerIP", Ipv4Addr::LOCALHOST.into())?,
            controller_port: resolver.port("ControllerPort")?,
            controller_shutdown_msg: Bytes::from(resolver.string("ControllerShutdownMsg", None)),
            debug: resolver.flag("Debug", None)?,
            directory_index: resolver.string("DirectoryIndex", None),
            log_time_format: resolver.string("LogTimeFormat", None),
            log_directory,
            log_retention: resolver.number("LogRetention", None)? as usize,
            log_format,
            auto_update,
            update_feed,
            update_channel,
            max_controller_connections: resolver.number("MaxControllerConnections", None)?,
            max_subscriber_connections: resolver.number("MaxSubscriberConnections", None)?,
            max_message_age: resolver.number("MaxMessageAge", None)?,
            max_messages_per_channel: resolver.number("MaxMessagesPerChannel", None)? as usize,
            ping_interval: resolver.number("PingInterval", None)?,
            subscriber_ip: resolver.ip("SubscriberIP", Ipv4Addr::UNSPECIFIED.into())?,
            subscriber_port,
            document_root: resolver.string("SubscriberDocumentRoot", None),
            dynamic_page_address,
            syslog_facility: resolver.string("SyslogFacility", None),
            udp_ip: resolver.ip("UDPIP", Ipv4Addr::LOCALHOST.into())?,
            udp_port: resolver.port("UDPPort")?,
            global,
            modes,
            file: used,
            settings,
            warnings,
        })
    }

    /// The settings for a mode named in a request: its section if the
    /// config has one (names match case-sensitively), else the globals.
    pub fn mode(&self, name: &str) -> &Arc<Mode> {
        self.modes.get(name).unwrap_or(&self.global)
    }
}

/// The TLS keys as one [`TlsMode`](crate::tls::TlsMode).
fn tls_mode(resolver: &Resolver) -> Result<crate::tls::TlsMode, ConfigError> {
    use crate::tls::TlsMode;
    let file = |key: &str| {
        let value = resolver.string(key, None);
        let value = value.trim();
        if value.is_empty() {
            Err(resolver.invalid(key, None, "TLS is on: give the path of a PEM file"))
        } else {
            Ok(PathBuf::from(value))
        }
    };
    match resolver
        .string("TLS", None)
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "off" | "0" | "" => Ok(TlsMode::Off),
        "on" | "1" => Ok(TlsMode::Files {
            cert: file("TLSCertificateFile")?,
            key: file("TLSKeyFile")?,
        }),
        "self-signed" => Ok(TlsMode::SelfSigned {
            names: resolver
                .string("TLSHostnames", None)
                .split_whitespace()
                .map(str::to_ascii_lowercase)
                .collect(),
        }),
        _ => Err(resolver.invalid("TLS", None, "expected off, on or self-signed")),
    }
}

/// Looks values up with admin UI > command line > file > default
/// precedence.
struct Resolver<'a> {
    args: &'a LegacyArgs,
    ui: &'a LegacyArgs,
    file: &'a ConfigFile,
}

impl Resolver<'_> {
    /// The raw value and its source; a mode falls back to the global value.
    fn raw(&self, key: &str, mode: Option<&str>) -> (&str, Source) {
        if let Some(mode) = mode {
            if let Some(v) = self.args.get(key, Some(mode)) {
                return (v, Source::CommandLine);
            }
            if let Some(v) = self.file.get(key, Some(mode)) {
                return (&v.raw, v.source.clone());
            }
        }
        if let Some(v) = self.ui.get(key, None) {
            return (v, Source::Ui);
        }
        if let Some(v) = self.args.get(key, None) {
            return (v, Source::CommandLine);
        }
        if let Some(v) = self.file.get(key, None) {
            return (&v.raw, v.source.clone());
        }
        (keys::find(key).map_or("", |k| k.default), Source::Default)
    }

    /// True when a mode has no value of its own for this key.
    fn is_inherited(&self, key: &str, mode: &str) -> bool {
        self.args.get(key, Some(mode)).is_none() && self.file.get(key, Some(mode)).is_none()
    }

    fn origin(&self, key: &str, mode: Option<&str>) -> String {
        let (_, source) = self.raw(key, mode);
        match mode {
            Some(m) => format!("mode [{m}], {source}"),
            None => source.to_string(),
        }
    }

    fn invalid(&self, key: &str, mode: Option<&str>, message: &str) -> ConfigError {
        let (raw, _) = self.raw(key, mode);
        ConfigError::Value {
            key: key.to_string(),
            origin: self.origin(key, mode),
            message: format!("{message} (got '{raw}')"),
        }
    }

    fn string(&self, key: &str, mode: Option<&str>) -> String {
        unescape(self.raw(key, mode).0)
    }

    fn number(&self, key: &str, mode: Option<&str>) -> Result<u64, ConfigError> {
        let value = self.string(key, mode);
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Ok(0);
        }
        trimmed
            .parse()
            .map_err(|_| self.invalid(key, mode, "expected a whole number"))
    }

    fn flag(&self, key: &str, mode: Option<&str>) -> Result<bool, ConfigError> {
        Ok(self.number(key, mode)? != 0)
    }

    fn port(&self, key: &str) -> Result<u16, ConfigError> {
        let n = self.number(key, None)?;
        u16::try_from(n).map_err(|_| self.invalid(key, None, "expected a port number (0-65535)"))
    }

    fn ip(&self, key: &str, empty: IpAddr) -> Result<IpAddr, ConfigError> {
        let value = self.string(key, None);
        let value = value.trim();
        if value.is_empty() {
            return Ok(empty);
        }
        if value.eq_ignore_ascii_case("localhost") {
            return Ok(Ipv4Addr::LOCALHOST.into());
        }
        value
            .parse()
            .map_err(|_| self.invalid(key, None, "expected an IP address"))
    }

    fn mode(&self, name: Option<&str>) -> Result<Mode, ConfigError> {
        let template = |key: &str, kind| Template::parse(self.string(key, name).as_bytes(), kind);
        Ok(Mode {
            name: name.unwrap_or_default().to_string(),
            header: template("HeaderTemplate", Kind::Header),
            message: template("MessageTemplate", Kind::Message),
            channel_info: template("ChannelInfoTemplate", Kind::ChannelInfo),
            ping: Bytes::from(self.string("PingMessage", name)),
            shutdown: Bytes::from(self.string("SubscriberShutdownMsg", name)),
            persist: self.flag("Persist", name)?,
            max_messages: self.number("MaxMessages", name)?,
            max_time: self.number("MaxTime", name)?,
        })
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
