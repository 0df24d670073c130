//! The typed values of settings that are one of a few words (`Engine
//! memory|redis`, `Persistence off|snapshot|durable`, …), and the default
//! places on disk. The modules that act on a setting read these types; none
//! of them is defined there, so the configuration imports nothing above it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
        /// Obtained and renewed from an ACME certificate authority.
        Acme = ["acme"],
    }
    expected: "off, on, self-signed or acme"
}

keyword_setting! {
    /// How the ACME server may check that this server holds the names.
    pub enum AcmeChallenge {
        /// TLS-ALPN-01, and HTTP-01 too when PlainSubscriberPort is set.
        Auto = ["auto", ""],
        /// On the TLS subscriber port (port 443 for a public CA).
        TlsAlpn01 = ["tls-alpn-01"],
        /// On the plain subscriber port (port 80 for a public CA).
        Http01 = ["http-01"],
    }
    expected: "auto, tls-alpn-01 or http-01"
}

/// Let's Encrypt's production directory, the default ACMEDirectory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory: untrusted certificates, generous
/// rate limits; for trying a setup out.
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

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
    /// Obtained from an ACME certificate authority and kept in
    /// `DataDirectory/tls/acme`.
    Acme(AcmeSettings),
}

/// What `TLS acme` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSettings {
    /// The DNS names to certify (TLSHostnames), lowercase.
    pub names: Vec<String>,
    /// The contact address given to the CA (ACMEEmail).
    pub email: Option<String>,
    /// The directory URL of the CA (ACMEDirectory).
    pub directory: String,
    /// PEM roots to trust the CA's own HTTPS server with (ACMECAFile);
    /// none: the well-known public roots.
    pub ca_file: Option<PathBuf>,
    /// The challenge types to use, in turn after a failure.
    pub challenges: Vec<AcmeChallenge>,
    /// The wait after a first failure; it doubles with each failure after
    /// it, up to [`AcmeSettings::MAX_RETRY`].
    pub first_retry: Duration,
}

impl AcmeSettings {
    /// The longest wait between two tries.
    pub const MAX_RETRY: Duration = Duration::from_secs(6 * 3600);
    /// The usual first wait: a minute, so that a fixed firewall or DNS
    /// record is noticed soon, without hammering the CA.
    pub const FIRST_RETRY: Duration = Duration::from_secs(60);
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
        assert_eq!("ACME".parse::<TlsKeyword>(), Ok(TlsKeyword::Acme));
        assert_eq!("".parse::<AcmeChallenge>(), Ok(AcmeChallenge::Auto));
        assert_eq!(AcmeChallenge::TlsAlpn01.to_string(), "tls-alpn-01");
        assert_eq!(
            "XML".parse::<LogFormat>(),
            Err("'xml' is not text or json".to_string())
        );
    }
}
