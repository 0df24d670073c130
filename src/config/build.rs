//! Building the typed [`Config`] from its layers, one topic at a time.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::cli::LegacyArgs;
use super::file::ConfigFile;
use super::keys::{self, Scope};
use super::resolve::Resolver;
use super::values::{
    default_data_dir, default_log_directory, AcmeChallenge, AcmeSettings, EngineKind, TlsKeyword,
    TlsMode,
};
use super::{check_redis_url, host_name, redact_url, valid_node_name};
use super::{Config, ConfigError, PublishRate, Setting, Source, WebhookEvent};

impl Config {
    /// Build from every layer: admin UI > command line > file > default.
    pub fn from_layers(
        args: &LegacyArgs,
        ui: &LegacyArgs,
        file: &ConfigFile,
        used: Option<PathBuf>,
    ) -> Result<Config, ConfigError> {
        let r = Resolver { args, ui, file };
        let mut mode_names: BTreeSet<String> = file.modes().cloned().collect();
        mode_names.extend(args.modes().cloned());

        let global = Arc::new(r.mode(None)?);
        let mut modes = HashMap::new();
        for name in &mode_names {
            modes.insert(name.clone(), Arc::new(r.mode(Some(name))?));
        }

        let dynamic_page_address = r.string("SubscriberDynamicPageAddress", None);
        if !dynamic_page_address.starts_with('/') {
            return Err(r.invalid("SubscriberDynamicPageAddress", None, "must start with '/'"));
        }
        let data_directory = match r.trimmed("DataDirectory").as_str() {
            "" => default_data_dir(),
            dir => PathBuf::from(dir),
        };
        let log_directory = match r.trimmed("LogDirectory").as_str() {
            "" => Some(default_log_directory(&data_directory)),
            off if off.eq_ignore_ascii_case("off") => None,
            dir => Some(PathBuf::from(dir)),
        };
        // "off" (or an empty value given on purpose) turns the feed built
        // into official releases off too.
        let update_feed_set = r.raw("UpdateFeed", None).1 != Source::Default;
        let mut update_feed = r.trimmed("UpdateFeed");
        if update_feed.eq_ignore_ascii_case("off") {
            update_feed.clear();
        }
        if !(update_feed.is_empty()
            || update_feed.starts_with("https://")
            || is_loopback_http(&update_feed))
        {
            return Err(r.invalid(
                "UpdateFeed",
                None,
                "expected an https:// URL (plain http:// only to this machine: 127.0.0.1, [::1], localhost)",
            ));
        }
        let subscriber_port = r.port("SubscriberPort")?;
        let engine = r.keyword("Engine")?;
        // Read only with TLS on: without it the key means nothing.
        let plain_port = match r.keyword::<TlsKeyword>("TLS")? {
            TlsKeyword::Off => 0,
            _ => r.port("PlainSubscriberPort")?,
        };
        let tls = tls_mode(&r, plain_port)?;
        let tls_on = tls != TlsMode::Off;

        Ok(Config {
            controller_tls: tls_on && r.flag("ControllerTLS", None)?,
            plain_subscriber_port: plain_port,
            hsts_max_age: r.number("HSTSMaxAge", None)?,
            tls,
            controller_allow: match r.trimmed("ControllerAllow").as_str() {
                "*" => None,
                "" => Some(vec![
                    "127.0.0.0/8".parse().expect("valid network"),
                    "::1/128".parse().expect("valid network"),
                ]),
                _ => Some(networks(&r, "ControllerAllow")?),
            },
            trusted_proxies: networks(&r, "TrustedProxies")?,
            private_channels: patterns(&r, "PrivateChannels")?,
            token_secret: r.trimmed("TokenSecret"),
            token_public_key_file: Some(r.trimmed("TokenPublicKeyFile"))
                .filter(|path| !path.is_empty())
                .map(PathBuf::from),
            authorize_url: http_url(&r, "AuthorizeURL")?,
            authorize_cache_seconds: r.number("AuthorizeCacheSeconds", None)?,
            presence_leave_delay: Duration::from_secs(r.number("PresenceLeaveDelay", None)?),
            client_publish_rate: publish_rate(&r)?,
            webhook_urls: webhook_urls(&r)?,
            webhook_secret: r.trimmed("WebhookSecret"),
            webhook_events: webhook_events(&r)?,
            webhook_retry: Duration::from_secs(r.number("WebhookRetrySeconds", None)?),
            max_connections_per_ip: r.number("MaxConnectionsPerIP", None)?,
            max_channels: r.number("MaxChannels", None)? as usize,
            max_channels_per_subscription: r.number("MaxChannelsPerSubscription", None)?.max(1)
                as usize,
            max_queued_bytes: (r.number("MaxQueuedMB", None)? as usize).saturating_mul(1 << 20),
            admin_ip: r.ip("AdminIP", Ipv4Addr::LOCALHOST.into())?,
            admin_port: r.port("AdminPort")?,
            admin_ui: r.flag("AdminUI", None)?,
            metrics: r.keyword("Metrics")?,
            allow_origin: allow_origin(&r)?,
            persistence: r.keyword("Persistence")?,
            engine,
            redis_url: redis_url(&r, engine)?,
            redis_prefix: redis_prefix(&r)?,
            redis_ca_file: Some(r.trimmed("RedisCAFile"))
                .filter(|path| !path.is_empty())
                .map(PathBuf::from),
            node_name: node_name(&r, subscriber_port)?,
            data_directory,
            snapshot_interval: r.number("SnapshotInterval", None)?.max(1),
            controller_ip: r.ip("ControllerIP", Ipv4Addr::LOCALHOST.into())?,
            controller_port: r.port("ControllerPort")?,
            controller_shutdown_msg: Bytes::from(r.string("ControllerShutdownMsg", None)),
            debug: r.flag("Debug", None)?,
            directory_index: r.string("DirectoryIndex", None),
            log_time_format: r.string("LogTimeFormat", None),
            log_directory,
            log_retention: r.number("LogRetention", None)? as usize,
            log_format: r.keyword("LogFormat")?,
            auto_update: r.keyword("AutoUpdate")?,
            update_feed,
            update_feed_set,
            update_channel: r.keyword("UpdateChannel")?,
            max_controller_connections: r.number("MaxControllerConnections", None)?,
            max_subscriber_connections: r.number("MaxSubscriberConnections", None)?,
            max_message_age: r.number("MaxMessageAge", None)?,
            max_messages_per_channel: r.number("MaxMessagesPerChannel", None)? as usize,
            ping_interval: r.number("PingInterval", None)?,
            subscriber_ip: r.ip("SubscriberIP", Ipv4Addr::UNSPECIFIED.into())?,
            subscriber_port,
            document_root: r.string("SubscriberDocumentRoot", None),
            dynamic_page_address,
            syslog_facility: r.string("SyslogFacility", None),
            udp_ip: r.ip("UDPIP", Ipv4Addr::LOCALHOST.into())?,
            udp_port: r.port("UDPPort")?,
            global,
            modes,
            file: used,
            settings: settings_list(&r, &mode_names),
            warnings: mode_warnings(args, file),
        })
    }
}

/// An `http://` URL to this machine (a feed that no network can alter).
fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Global keys set inside a `[mode]` section do nothing there: say so.
fn mode_warnings(args: &LegacyArgs, file: &ConfigFile) -> Vec<String> {
    let from_file = file.entries().map(|(k, m, v)| (k, m, v.source.to_string()));
    let from_args = args
        .entries()
        .map(|(k, m, _)| (k, m, Source::CommandLine.to_string()));
    from_file
        .chain(from_args)
        .filter_map(|(key, mode, origin)| {
            let (mode, key) = (mode?, keys::find(key)?);
            (key.scope == Scope::Global).then(|| {
                format!(
                    "{} in mode [{mode}] ({origin}) has no effect per mode; it applies to the whole server only when set outside any section",
                    key.name
                )
            })
        })
        .collect()
}

/// Every key, and each mode's own values, as shown to people.
fn settings_list(r: &Resolver, mode_names: &BTreeSet<String>) -> Vec<Setting> {
    let mut settings = Vec::new();
    for key in keys::KEYS.iter().filter(|k| k.name != "Help") {
        let (raw, source) = r.raw(key.name, None);
        settings.push(Setting {
            key: key.name,
            mode: None,
            raw: raw.to_string(),
            source,
        });
        if key.scope != Scope::PerMode {
            continue;
        }
        for name in mode_names {
            let (raw, source) = r.raw(key.name, Some(name));
            if matches!(source, Source::Default) || r.is_inherited(key.name, name) {
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
    settings
}

/// AllowOrigin: `*` (any origin) or a list of origins.
fn allow_origin(r: &Resolver) -> Result<Option<Vec<String>>, ConfigError> {
    let value = r.trimmed("AllowOrigin");
    if value == "*" {
        return Ok(None);
    }
    let origins: Vec<String> = value.split_whitespace().map(str::to_string).collect();
    let bad = origins
        .iter()
        .find(|o| !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/'));
    match bad {
        Some(bad) => Err(r.invalid(
            "AllowOrigin",
            None,
            &format!("'{bad}' is not an origin like https://example.com"),
        )),
        None => Ok(Some(origins)),
    }
}

/// Channel names and `*` patterns, space-separated.
fn patterns(r: &Resolver, key: &str) -> Result<Vec<String>, ConfigError> {
    let value = r.trimmed(key);
    let patterns: Vec<String> = value.split_whitespace().map(str::to_string).collect();
    match patterns
        .iter()
        .find(|p| !crate::names::valid_channel_name(p))
    {
        Some(bad) => Err(r.invalid(
            key,
            None,
            &format!("'{bad}' is not a channel name or pattern (1 to 256 bytes)"),
        )),
        None => Ok(patterns),
    }
}

/// ClientPublishRate: `rate` or `rate burst` (the burst is at least the
/// rate, and twice it when not given).
fn publish_rate(r: &Resolver) -> Result<PublishRate, ConfigError> {
    let value = r.trimmed("ClientPublishRate");
    let numbers: Vec<Option<u32>> = value.split_whitespace().map(|n| n.parse().ok()).collect();
    let bad = || {
        r.invalid(
            "ClientPublishRate",
            None,
            "expected a rate and an optional burst, such as '10 20'",
        )
    };
    match numbers.as_slice() {
        [Some(rate)] => Ok(PublishRate {
            per_second: *rate,
            burst: rate.saturating_mul(2),
        }),
        [Some(rate), Some(burst)] => Ok(PublishRate {
            per_second: *rate,
            burst: (*burst).max(*rate),
        }),
        _ => Err(bad()),
    }
}

/// WebhookURL: http(s) URLs, space-separated.
fn webhook_urls(r: &Resolver) -> Result<Vec<String>, ConfigError> {
    let urls: Vec<String> = r
        .trimmed("WebhookURL")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    match urls
        .iter()
        .find(|u| !(u.starts_with("http://") || u.starts_with("https://")))
    {
        Some(bad) => Err(r.invalid(
            "WebhookURL",
            None,
            &format!("'{bad}' is not an http:// or https:// URL"),
        )),
        None => Ok(urls),
    }
}

/// WebhookEvents: event names, space-separated.
fn webhook_events(r: &Resolver) -> Result<Vec<WebhookEvent>, ConfigError> {
    let mut events = Vec::new();
    for name in r.trimmed("WebhookEvents").split_whitespace() {
        match WebhookEvent::from_name(name) {
            Some(event) if !events.contains(&event) => events.push(event),
            Some(_) => {}
            None => {
                let known: Vec<&str> = WebhookEvent::ALL.iter().map(|e| e.name()).collect();
                return Err(r.invalid(
                    "WebhookEvents",
                    None,
                    &format!("'{name}' is not one of {}", known.join(", ")),
                ));
            }
        }
    }
    Ok(events)
}

/// An http(s) URL, or nothing.
fn http_url(r: &Resolver, key: &str) -> Result<String, ConfigError> {
    let url = r.trimmed(key);
    if url.is_empty() || url.starts_with("https://") || url.starts_with("http://") {
        Ok(url)
    } else {
        Err(r.invalid(key, None, "expected an http:// or https:// URL"))
    }
}

/// A list of addresses and networks (`10.0.0.0/8 192.168.1.7 ::1`).
fn networks(r: &Resolver, key: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    r.trimmed(key)
        .split_whitespace()
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    r.invalid(
                        key,
                        None,
                        &format!("'{item}' is not an address or a network like 10.0.0.0/8"),
                    )
                })
        })
        .collect()
}

fn redis_url(r: &Resolver, engine: EngineKind) -> Result<String, ConfigError> {
    let url = r.trimmed("RedisURL");
    if engine == EngineKind::Redis {
        if let Err(problem) = check_redis_url(&url) {
            // Not `invalid`: that would repeat the password.
            return Err(r.problem(
                "RedisURL",
                format!("{problem} (got '{}')", redact_url(&url)),
            ));
        }
    }
    Ok(url)
}

fn redis_prefix(r: &Resolver) -> Result<String, ConfigError> {
    let prefix = r.trimmed("RedisPrefix");
    if prefix.is_empty() || prefix.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(r.invalid("RedisPrefix", None, "expected a word without spaces"));
    }
    Ok(prefix)
}

fn node_name(r: &Resolver, subscriber_port: u16) -> Result<String, ConfigError> {
    match r.trimmed("NodeName").as_str() {
        "" => Ok(format!("{}-{subscriber_port}", host_name())),
        name if valid_node_name(name) => Ok(name.to_string()),
        _ => Err(r.invalid(
            "NodeName",
            None,
            "expected 1 to 64 letters, digits, '.', '_' or '-'",
        )),
    }
}

/// The TLS keys as one [`TlsMode`].
fn tls_mode(r: &Resolver, plain_port: u16) -> Result<TlsMode, ConfigError> {
    let file = |key: &str| {
        let value = r.trimmed(key);
        if value.is_empty() {
            Err(r.invalid(key, None, "TLS is on: give the path of a PEM file"))
        } else {
            Ok(PathBuf::from(value))
        }
    };
    let hostnames = || -> Vec<String> {
        r.string("TLSHostnames", None)
            .split_whitespace()
            .map(str::to_ascii_lowercase)
            .collect()
    };
    Ok(match r.keyword::<TlsKeyword>("TLS")? {
        TlsKeyword::Off => TlsMode::Off,
        TlsKeyword::On => TlsMode::Files {
            cert: file("TLSCertificateFile")?,
            key: file("TLSKeyFile")?,
        },
        TlsKeyword::SelfSigned => TlsMode::SelfSigned { names: hostnames() },
        TlsKeyword::Acme => TlsMode::Acme(acme_settings(r, hostnames(), plain_port)?),
    })
}

/// The ACME keys, checked: names a CA can certify, an https directory, a
/// challenge this configuration can answer.
fn acme_settings(
    r: &Resolver,
    names: Vec<String>,
    plain_port: u16,
) -> Result<AcmeSettings, ConfigError> {
    let mut names: Vec<String> = names
        .into_iter()
        .map(|name| name.trim_end_matches('.').to_string())
        .collect();
    let mut seen = BTreeSet::new();
    names.retain(|name| seen.insert(name.clone()));
    if names.is_empty() {
        return Err(r.problem(
            "TLSHostnames",
            "TLS acme needs the names to certify, such as push.example.com".into(),
        ));
    }
    if let Some(problem) = names.iter().find_map(|name| acme_name_problem(name)) {
        return Err(r.problem("TLSHostnames", problem));
    }
    let email = r.trimmed("ACMEEmail");
    if !email.is_empty()
        && (!email.contains('@') || email.contains(|c: char| c.is_whitespace() || c == ','))
    {
        return Err(r.invalid("ACMEEmail", None, "expected one e-mail address"));
    }
    let directory = r.trimmed("ACMEDirectory");
    let host = directory
        .strip_prefix("https://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    if host.is_empty() {
        return Err(r.invalid(
            "ACMEDirectory",
            None,
            "expected the https:// URL of an ACME directory",
        ));
    }
    let challenges = match r.keyword::<AcmeChallenge>("ACMEChallenge")? {
        AcmeChallenge::Auto if plain_port > 0 => {
            vec![AcmeChallenge::TlsAlpn01, AcmeChallenge::Http01]
        }
        AcmeChallenge::Auto => vec![AcmeChallenge::TlsAlpn01],
        AcmeChallenge::Http01 if plain_port == 0 => {
            return Err(r.problem(
                "ACMEChallenge",
                "http-01 is answered on PlainSubscriberPort: set it (to the port the CA reaches as port 80)".into(),
            ))
        }
        one => vec![one],
    };
    Ok(AcmeSettings {
        names,
        email: (!email.is_empty()).then_some(email),
        directory,
        ca_file: Some(r.trimmed("ACMECAFile"))
            .filter(|path| !path.is_empty())
            .map(PathBuf::from),
        challenges,
        first_retry: AcmeSettings::FIRST_RETRY,
    })
}

/// Why an ACME CA cannot certify `name` with the challenges served here.
fn acme_name_problem(name: &str) -> Option<String> {
    if name.starts_with("*.") {
        return Some(format!(
            "'{name}': a wildcard needs the DNS-01 challenge, which meteord does not answer; list the names"
        ));
    }
    if name.parse::<IpAddr>().is_ok() {
        return Some(format!(
            "'{name}' is an address: TLS acme certifies DNS names (use TLS self-signed or on for addresses)"
        ));
    }
    let valid_label = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    (name.len() > 253 || !name.split('.').all(valid_label))
        .then(|| format!("'{name}' is not a DNS name"))
}
