//! The command line: meteord's `-Key value` options, plus `--help` and
//! `--version` in the modern spelling.
//!
//! Besides those: `meteord update [--check] [--allow-downgrade] [--rollback]`
//! (self-update), `meteord service install|uninstall|start|stop` (the
//! Windows service) and `--no-tray` (run headless even where a tray icon
//! could show).
//!
//! Legacy rules: a key may be abbreviated to any unambiguous prefix (case
//! does not matter), `-Key.mode` sets a key for one mode, `-d` means
//! `-Debug`, a key not followed by a value is set to `1`, and a value that
//! must start with a dash is written with two (`--5` means `-5`).

use std::collections::{BTreeMap, BTreeSet};

use super::entries_of;
use super::keys::{self, PrefixError};

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    /// Serve. `no_tray`: no tray icon even when the build has one.
    Run {
        args: LegacyArgs,
        no_tray: bool,
    },
    /// `meteord update [--check] [--allow-downgrade]`: update this
    /// executable from UpdateFeed.
    Update {
        args: LegacyArgs,
        check_only: bool,
        /// Install the feed's newest release even when it is older than
        /// the running one.
        allow_downgrade: bool,
        /// Put the program kept by the last update back instead.
        rollback: bool,
    },
    /// `meteord service <action>`: the Windows service. `args` are the
    /// options the service is installed with (`install`) or runs with
    /// (`run`, which the service manager starts).
    Service {
        action: ServiceAction,
        args: LegacyArgs,
    },
    Help,
    Version,
}

/// What `meteord service` is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceAction {
    Install,
    Uninstall,
    Start,
    Stop,
    /// Run as the service (the service manager's command line).
    Run,
}

impl std::str::FromStr for ServiceAction {
    type Err = String;
    fn from_str(word: &str) -> Result<Self, String> {
        Ok(match word {
            "install" => ServiceAction::Install,
            "uninstall" => ServiceAction::Uninstall,
            "start" => ServiceAction::Start,
            "stop" => ServiceAction::Stop,
            "run" => ServiceAction::Run,
            other => {
                return Err(format!(
                    "'service {other}' invalid: use service install, uninstall, start or stop"
                ))
            }
        })
    }
}

/// `-Key[.mode] value` pairs given on the command line.
#[derive(Debug, Default, Clone)]
pub struct LegacyArgs {
    values: BTreeMap<(String, Option<String>), String>,
    modes: BTreeSet<String>,
}

impl LegacyArgs {
    pub fn get(&self, key: &str, mode: Option<&str>) -> Option<&str> {
        self.values
            .get(&(key.to_string(), mode.map(str::to_string)))
            .map(String::as_str)
    }

    /// Set a value as if it had been given on the command line.
    pub fn set(&mut self, key: &str, mode: Option<&str>, value: impl Into<String>) {
        if let Some(m) = mode {
            self.modes.insert(m.to_string());
        }
        self.values
            .insert((key.to_string(), mode.map(str::to_string)), value.into());
    }

    /// Forget a global value.
    pub fn remove(&mut self, key: &str) {
        self.values.remove(&(key.to_string(), None));
    }

    pub fn modes(&self) -> impl Iterator<Item = &String> {
        self.modes.iter()
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, Option<&str>, &String)> {
        entries_of(&self.values)
    }
}

/// Parse the arguments after the program name.
pub fn parse_args<I, S>(args: I) -> Result<Invocation, String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut args: Vec<String> = args.into_iter().map(Into::into).collect();
    // A legacy command line starts with a -Key, so a first word is free
    // for subcommands.
    let update = args.first().is_some_and(|a| a == "update");
    if update {
        args.remove(0);
    }
    let service = match args.first().map(String::as_str) {
        Some("service") => {
            args.remove(0);
            if args.is_empty() {
                return Err("'service' needs an action: install, uninstall, start or stop".into());
            }
            Some(args.remove(0).parse::<ServiceAction>()?)
        }
        _ => None,
    };
    let flag = |args: &mut Vec<String>, name: &str| {
        let before = args.len();
        args.retain(|a| a != name);
        args.len() != before
    };
    let check_only = update && flag(&mut args, "--check");
    let allow_downgrade = update && flag(&mut args, "--allow-downgrade");
    let rollback = update && flag(&mut args, "--rollback");
    let no_tray = !update && flag(&mut args, "--no-tray");
    if args.iter().any(|a| a == "--help") {
        return Ok(Invocation::Help);
    }
    // meteord accepts -v, -ve, ... -version anywhere and ignores the rest.
    if args
        .iter()
        .any(|a| a == "--version" || (a.starts_with("-v") && "-version".starts_with(a.as_str())))
    {
        return Ok(Invocation::Version);
    }

    let mut parsed = LegacyArgs::default();
    let mut rest = args.into_iter().peekable();
    while let Some(arg) = rest.next() {
        let name = match arg.strip_prefix('-') {
            Some(name) if !name.is_empty() => name,
            _ => return Err(format!("'{arg}' invalid: options look like -Key value")),
        };
        let name = if name == "d" { "Debug" } else { name };
        let (name, mode) = match name.find('.') {
            Some(dot) if dot + 1 < name.len() => (&name[..dot], Some(&name[dot + 1..])),
            _ => (name, None),
        };
        let key = match keys::resolve_prefix(name) {
            Ok(key) => key,
            Err(PrefixError::Ambiguous) => {
                return Err(format!("ambiguous parameter name '{name}'"))
            }
            Err(PrefixError::Unknown) => return Err(format!("unknown parameter name '{name}'")),
        };
        if key.name == "Help" {
            return Ok(Invocation::Help);
        }
        let takes_value = rest
            .peek()
            .is_some_and(|next| !next.starts_with('-') || next.starts_with("--"));
        let value = if takes_value {
            let next = rest.next().unwrap_or_default();
            match next.strip_prefix("--") {
                Some(stripped) => format!("-{stripped}"),
                None => next,
            }
        } else {
            "1".to_string()
        };
        parsed.set(key.name, mode, value);
    }
    Ok(if update {
        Invocation::Update {
            args: parsed,
            check_only,
            allow_downgrade,
            rollback,
        }
    } else if let Some(action) = service {
        Invocation::Service {
            action,
            args: parsed,
        }
    } else {
        Invocation::Run {
            args: parsed,
            no_tray,
        }
    })
}

/// The `--help` text: the modern usage line and every legacy key.
pub fn help_text() -> String {
    let mut legacy = String::from(
        "Commands and flags:\n  \
         update                          Install the newest signed release from UpdateFeed over this program\n  \
         update --check                  Only say whether a newer release is available\n  \
         update --allow-downgrade        Install the feed's newest release even if it is older than this one\n  \
         update --rollback               Put back the program the last update replaced\n  \
         service install [-Key value]... Windows: install the service (starts at boot, logs and data in ProgramData)\n  \
         service uninstall|start|stop    Windows: remove, start or stop the service\n  \
         --no-tray                       No tray icon, even in a desktop build (services, servers, Raspberry Pi)\n\n",
    );
    legacy.push_str("Options (meteord 1.06 style, any unambiguous prefix; -Key.mode sets a key for one [mode]):\n");
    for key in keys::KEYS.iter().filter(|k| k.name != "Help") {
        let default = if key.default.len() > 40 {
            format!("{}...", &key.default[..37])
        } else {
            key.default.to_string()
        };
        legacy.push_str(&format!(
            "  -{:<30} {}\n  {:<31} default: '{}'\n",
            key.name, key.help, "", default
        ));
    }
    legacy.push_str("  -d                             Same as -Debug 1\n");
    legacy.push_str("  -v, -version, --version         Print the version\n");
    legacy.push_str("  -help, --help                   Print this help\n");
    legacy.push_str(
        "\nWithout a config file at the default location (/etc/meteord.conf) the built-in\nconfiguration is used: every mode of the meteord 1.06 example config.\n",
    );
    let default_logs = super::values::default_log_directory(&super::values::default_data_dir());
    legacy.push_str(&format!(
        "\nLogs: standard error, and one file a day (meteord.YYYY-MM-DD.log) in LogDirectory,\nby default {}\n",
        default_logs.display()
    ));
    clap::Command::new("meteord")
        .version(super::VERSION)
        .about("Realtime HTTP push server, a drop-in replacement for meteord 1.06")
        .override_usage(
            "meteord [--no-tray] [-Key value]...\n       meteord update [--check | --rollback] [-Key value]...\n       meteord service install|uninstall|start|stop\n       meteord --help | --version",
        )

        .disable_help_flag(true)
        .disable_version_flag(true)
        .after_help(legacy)
        .render_help()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> LegacyArgs {
        match parse_args(args.iter().copied()).unwrap() {
            Invocation::Run {
                args,
                no_tray: false,
            } => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn subcommand_and_flags() {
        match parse_args(["update", "--check", "-UpdateFeed", "http://x/m.json"]).unwrap() {
            Invocation::Update {
                args, check_only, ..
            } => {
                assert!(check_only);
                assert_eq!(args.get("UpdateFeed", None), Some("http://x/m.json"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_args(["update"]),
            Ok(Invocation::Update {
                check_only: false,
                ..
            })
        ));
        match parse_args(["-d", "--no-tray", "-ControllerPort", "5"]).unwrap() {
            Invocation::Run { args, no_tray } => {
                assert!(no_tray);
                assert_eq!(args.get("ControllerPort", None), Some("5"));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_args(["update", "--no-tray"]).is_err());
        assert!(help_text().contains("--no-tray"));
        assert!(help_text().contains("LogDirectory"));
    }

    #[test]
    fn legacy_options() {
        let a = run(&["-ControllerP", "5000", "-d", "-MaxMessages.longpoll", "3"]);
        assert_eq!(a.get("ControllerPort", None), Some("5000"));
        assert_eq!(a.get("Debug", None), Some("1"));
        assert_eq!(a.get("MaxMessages", Some("longpoll")), Some("3"));
        assert_eq!(a.modes().collect::<Vec<_>>(), ["longpoll"]);
        // PingInterval and PingMessage both start with "Ping".
        assert!(parse_args(["-Ping", "1"]).is_err());
        let a = run(&["-PingI", "--1", "-Persist"]);
        assert_eq!(a.get("PingInterval", None), Some("-1"));
        assert_eq!(a.get("Persist", None), Some("1"));
    }

    #[test]
    fn help_version_and_errors() {
        assert!(matches!(parse_args(["--help"]), Ok(Invocation::Help)));
        assert!(matches!(parse_args(["-help"]), Ok(Invocation::Help)));
        assert!(matches!(parse_args(["-Hel"]), Ok(Invocation::Help)));
        assert!(matches!(parse_args(["-v"]), Ok(Invocation::Version)));
        assert!(matches!(
            parse_args(["-d", "-vers"]),
            Ok(Invocation::Version)
        ));
        assert_eq!(
            parse_args(["-Nope"]).unwrap_err(),
            "unknown parameter name 'Nope'"
        );
        assert_eq!(
            parse_args(["-h"]).unwrap_err(),
            "ambiguous parameter name 'h'"
        );
        assert!(parse_args(["value"]).is_err());
        assert!(help_text().contains("-SubscriberDynamicPageAddress"));
    }
}
