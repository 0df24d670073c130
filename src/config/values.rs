//! The typed values of settings that are one of a few words (`Engine
//! memory|redis`, `Persistence off|snapshot|durable`, …), and the default
//! places on disk. The modules that act on a setting read these types; none
//! of them is defined there, so the configuration imports nothing above it.

use std::fmt;
use std::path::{Path, PathBuf};

/// A setting that is one of a few words. Each value lists the words that
/// spell it, case-insensitively; the first is its name (Display), and an
/// empty value picks the one that lists `""`.
macro_rules! keyword_setting {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = [$($word:literal),+] ),+ $(,)?
        }
        expected: $expected:literal
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let word = s.trim().to_ascii_lowercase();
                $( if [$($word),+].contains(&word.as_str()) {
                    return Ok($name::$variant);
                } )+
                Err(format!("'{word}' is not {}", $expected))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    $( $name::$variant => [$($word),+][0] ),+
                })
            }
        }
    };
}

keyword_setting! {
    /// Where channels, ids and backlogs live.
    pub enum EngineKind {
        /// In this process: one server alone.
        Memory = ["memory", ""],
        /// In Redis, shared by every node using the same RedisURL and prefix.
        Redis = ["redis"],
    }
    expected: "memory or redis"
}

keyword_setting! {
    /// Who may read `/metrics`.
    pub enum MetricsAccess {
        Off = ["off", "0"],
        /// Clients on this machine, or with an API token.
        Local = ["local"],
        Public = ["public", "1"],
    }
    expected: "off, local or public"
}

keyword_setting! {
    /// How channel caches are kept on disk.
    pub enum Persistence {
        /// Nothing on disk (meteord's behaviour).
        Off = ["off", "0", ""],
        /// Caches written every SnapshotInterval seconds and at shutdown.
        Snapshot = ["snapshot"],
        /// Every message on disk before its publisher gets `OK`.
        Durable = ["durable"],
    }
    expected: "off, snapshot or durable"
}

keyword_setting! {
    /// The format of the log files.
    pub enum LogFormat {
        Text = ["text", ""],
        /// One JSON object a line, for log shippers.
        Json = ["json"],
    }
    expected: "text or json"
}

keyword_setting! {
    /// The AutoUpdate setting.
    pub enum AutoUpdate {
        /// Only when asked (`meteord update`, the admin UI, the tray).
        Off = ["off", "0"],
        /// Look once a day and report a newer release; never install by itself.
        Check = ["check", ""],
        /// Look once a day, install and restart.
        Install = ["install", "1"],
    }
    expected: "off, check or install"
}

keyword_setting! {
    /// The UpdateChannel setting.
    pub enum UpdateChannel {
        /// Releases without a pre-release part (1.2.0, not 1.2.0-beta.1).
        Stable = ["stable", ""],
        /// Every release, pre-releases included.
        Beta = ["beta"],
    }
    expected: "stable or beta"
}

keyword_setting! {
    /// The TLS setting as written; [`TlsMode`] adds what each needs.
    pub enum TlsKeyword {
        Off = ["off", "0", ""],
        On = ["on", "1"],
        SelfSigned = ["self-signed"],
    }
    expected: "off, on or self-signed"
}

/// Where the TLS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    Off,
    /// PEM files: the chain (leaf first) and its key.
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    /// Made on first start and kept in the data directory, for these
    /// extra host names besides the machine's own.
    SelfSigned {
        names: Vec<String>,
    },
}

/// Where data goes when DataDirectory is empty: `/var/lib/meteord` for a
/// system service (root on Unix), else the user's local data directory.
pub fn default_data_dir() -> PathBuf {
    if running_as_root() {
        return PathBuf::from("/var/lib/meteord");
    }
    dirs::data_local_dir()
        .map(|d| d.join("meteord"))
        .unwrap_or_else(|| PathBuf::from("meteord-data"))
}

/// The LogDirectory used when none is configured: `/var/log/meteord` for a
/// system service (root on Linux), else `logs` in the data directory.
pub fn default_log_directory(data_directory: &Path) -> PathBuf {
    if cfg!(target_os = "linux") && running_as_root() {
        return PathBuf::from("/var/log/meteord");
    }
    data_directory.join("logs")
}

fn running_as_root() -> bool {
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }
    #[cfg(not(unix))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_parse_and_print() {
        assert_eq!("".parse::<EngineKind>(), Ok(EngineKind::Memory));
        assert_eq!(" Redis ".parse::<EngineKind>(), Ok(EngineKind::Redis));
        assert_eq!(EngineKind::Redis.to_string(), "redis");
        assert_eq!("1".parse::<MetricsAccess>(), Ok(MetricsAccess::Public));
        assert_eq!("".parse::<Persistence>(), Ok(Persistence::Off));
        assert_eq!("".parse::<AutoUpdate>(), Ok(AutoUpdate::Check));
        assert_eq!(
            "self-signed".parse::<TlsKeyword>(),
            Ok(TlsKeyword::SelfSigned)
        );
        assert_eq!(
            "XML".parse::<LogFormat>(),
            Err("'xml' is not text or json".to_string())
        );
    }
}
