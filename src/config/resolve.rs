//! Looking one setting up through the layers (admin UI > command line >
//! file > default) and reading it as a typed value, with errors that name
//! the key and where its value came from.

use std::net::{IpAddr, Ipv4Addr};

use bytes::Bytes;

use super::cli::LegacyArgs;
use super::file::ConfigFile;
use super::{keys, unescape, ConfigError, Mode, Source};
use crate::template::{Kind, Template};

pub(super) struct Resolver<'a> {
    pub args: &'a LegacyArgs,
    pub ui: &'a LegacyArgs,
    pub file: &'a ConfigFile,
}

impl Resolver<'_> {
    /// The raw value and its source; a mode falls back to the global value.
    pub fn raw(&self, key: &str, mode: Option<&str>) -> (&str, Source) {
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
    pub fn is_inherited(&self, key: &str, mode: &str) -> bool {
        self.args.get(key, Some(mode)).is_none() && self.file.get(key, Some(mode)).is_none()
    }

    pub fn origin(&self, key: &str, mode: Option<&str>) -> String {
        let (_, source) = self.raw(key, mode);
        match mode {
            Some(m) => format!("mode [{m}], {source}"),
            None => source.to_string(),
        }
    }

    /// An error about a global key's value, without repeating the value
    /// (for messages that quote it already, or values that are secret).
    pub fn problem(&self, key: &str, message: String) -> ConfigError {
        ConfigError::Value {
            key: key.to_string(),
            origin: self.origin(key, None),
            message,
        }
    }

    /// An error about a key's value, quoting the value.
    pub fn invalid(&self, key: &str, mode: Option<&str>, message: &str) -> ConfigError {
        let (raw, _) = self.raw(key, mode);
        ConfigError::Value {
            key: key.to_string(),
            origin: self.origin(key, mode),
            message: format!("{message} (got '{raw}')"),
        }
    }

    pub fn string(&self, key: &str, mode: Option<&str>) -> String {
        unescape(self.raw(key, mode).0)
    }

    /// A global key's value, trimmed.
    pub fn trimmed(&self, key: &str) -> String {
        self.string(key, None).trim().to_string()
    }

    pub fn number(&self, key: &str, mode: Option<&str>) -> Result<u64, ConfigError> {
        let value = self.string(key, mode);
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Ok(0);
        }
        trimmed
            .parse()
            .map_err(|_| self.invalid(key, mode, "expected a whole number"))
    }

    pub fn flag(&self, key: &str, mode: Option<&str>) -> Result<bool, ConfigError> {
        Ok(self.number(key, mode)? != 0)
    }

    pub fn port(&self, key: &str) -> Result<u16, ConfigError> {
        let n = self.number(key, None)?;
        u16::try_from(n).map_err(|_| self.invalid(key, None, "expected a port number (0-65535)"))
    }

    /// A global key that is one of a few words (see `values.rs`).
    pub fn keyword<T: std::str::FromStr<Err = String>>(&self, key: &str) -> Result<T, ConfigError> {
        self.string(key, None)
            .parse()
            .map_err(|e: String| self.problem(key, e))
    }

    pub fn ip(&self, key: &str, empty: IpAddr) -> Result<IpAddr, ConfigError> {
        let value = self.trimmed(key);
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

    /// The settings of one subscriber mode (`None`: the global defaults).
    pub fn mode(&self, name: Option<&str>) -> Result<Mode, ConfigError> {
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
