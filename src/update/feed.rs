//! Which release feed applies, and why.
//!
//! Official release builds carry their feed's URL, set when they were
//! built (`METEORD_UPDATE_FEED`, which `scripts/release.sh` passes), so a
//! downloaded binary checks for updates out of the box. A source build
//! carries none. A program installed by a package (`.deb`, `.msi`, the
//! macOS app) is updated by the next package, so it ignores the built-in
//! feed; the package leaves a marker file next to the program that says
//! which package manager owns it. `UpdateFeed`, when given, wins over all
//! of this (`off` or an empty value turns updating off).

use std::path::{Path, PathBuf};

use crate::config::Config;

/// The feed an official build was made with (empty in source builds).
pub const OFFICIAL: &str = match option_env!("METEORD_UPDATE_FEED") {
    Some(url) => url,
    None => "",
};

/// The marker a package puts beside the program: one word naming the
/// package manager that installs its updates (`deb`, `msi`, `pkg`).
pub const MARKER: &str = "meteord-package";

/// Where the feed in force came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `UpdateFeed` in the file, on the command line or in the admin UI.
    Configured,
    /// The URL this official build carries.
    Official,
    /// `UpdateFeed off` (or empty, on purpose).
    TurnedOff,
    /// Installed by a package manager (named): its next package updates it.
    Package(String),
    /// A build from source without a feed.
    SourceBuild,
}

/// The feed in force: its URL (none: updating is off) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    pub url: Option<String>,
    pub origin: Origin,
}

impl Feed {
    /// One sentence for the admin UI, the tray and `meteord update`.
    pub fn explain(&self) -> String {
        match &self.origin {
            Origin::Configured => "set by UpdateFeed".into(),
            Origin::Official => "the feed this official release was built with".into(),
            Origin::TurnedOff => "updating is off: UpdateFeed is set to off".into(),
            Origin::Package(manager) => format!(
                "updating is off: this copy was installed by a package ({manager}); \
                 install the newer package to update (or set UpdateFeed)"
            ),
            Origin::SourceBuild => {
                "updating is off: this build carries no release feed (a build from source); \
                 set UpdateFeed to use one"
                    .into()
            }
        }
    }
}

/// The feed in force for this configuration and this executable.
pub fn resolve(config: &Config) -> Feed {
    let exe = std::env::current_exe().ok();
    resolve_with(config, OFFICIAL, exe.as_deref())
}

/// [`resolve`], with the built-in feed and the executable's path given.
pub fn resolve_with(config: &Config, official: &str, exe: Option<&Path>) -> Feed {
    let (url, origin) = if config.update_feed_set {
        match config.update_feed.as_str() {
            "" => (None, Origin::TurnedOff),
            url => (Some(url.to_string()), Origin::Configured),
        }
    } else if let Some(manager) = exe.and_then(package_manager) {
        (None, Origin::Package(manager))
    } else if official.is_empty() {
        (None, Origin::SourceBuild)
    } else {
        (Some(official.to_string()), Origin::Official)
    };
    Feed { url, origin }
}

/// The places a package puts its marker for the program at `exe`: beside
/// it (Windows), in `../share/meteord/` (Linux: `/usr/bin` and
/// `/usr/share/meteord`) and in the app bundle's `Resources` (macOS).
fn marker_paths(exe: &Path) -> Vec<PathBuf> {
    let Some(dir) = exe.parent() else {
        return Vec::new();
    };
    let mut paths = vec![dir.join(MARKER)];
    if let Some(prefix) = dir.parent() {
        paths.push(prefix.join("share/meteord").join(MARKER));
        paths.push(prefix.join("Resources").join(MARKER));
    }
    paths
}

/// The package manager that installed the program at `exe`, if any.
pub fn package_manager(exe: &Path) -> Option<String> {
    marker_paths(exe).iter().find_map(|path| {
        let text = std::fs::read_to_string(path).ok()?;
        let word = text.split_whitespace().next()?;
        // One short word: anything else is not our marker.
        (word.len() <= 16 && word.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| word.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LegacyArgs;

    fn config(args: &[(&str, &str)]) -> Config {
        let mut legacy = LegacyArgs::default();
        for (key, value) in args {
            legacy.set(key, None, *value);
        }
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/meteord.conf");
        legacy.set("ConfigFileLocation", None, file);
        Config::load(&legacy).unwrap()
    }

    #[test]
    fn the_configured_feed_wins() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("meteord");
        std::fs::write(dir.path().join(MARKER), "deb\n").unwrap();
        let url = "https://example.com/feed.json";
        let feed = resolve_with(&config(&[("UpdateFeed", url)]), "", Some(&exe));
        assert_eq!(feed.url.as_deref(), Some(url));
        assert_eq!(feed.origin, Origin::Configured);
        let off = resolve_with(&config(&[("UpdateFeed", "off")]), "https://x/f.json", None);
        assert_eq!((off.url, off.origin), (None, Origin::TurnedOff));
    }

    #[test]
    fn official_builds_use_their_feed_unless_a_package_owns_them() {
        let official = "https://releases.example.com/meteord/manifest.json";
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let exe = bin.join("meteord");
        let feed = resolve_with(&config(&[]), official, Some(&exe));
        assert_eq!(feed.url.as_deref(), Some(official));
        assert_eq!(feed.origin, Origin::Official);

        std::fs::create_dir_all(dir.path().join("share/meteord")).unwrap();
        std::fs::write(dir.path().join("share/meteord").join(MARKER), "deb\n").unwrap();
        let feed = resolve_with(&config(&[]), official, Some(&exe));
        assert_eq!(feed.url, None);
        assert_eq!(feed.origin, Origin::Package("deb".into()));
        assert!(feed.explain().contains("installed by a package (deb)"));
    }

    #[test]
    fn source_builds_have_no_feed() {
        let feed = resolve_with(&config(&[]), "", None);
        assert_eq!((feed.url, feed.origin), (None, Origin::SourceBuild));
    }

    #[test]
    fn a_marker_is_one_short_word() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("meteord.exe");
        std::fs::write(dir.path().join(MARKER), "<script>alert(1)</script>").unwrap();
        assert_eq!(package_manager(&exe), None);
        std::fs::write(dir.path().join(MARKER), "msi").unwrap();
        assert_eq!(package_manager(&exe).as_deref(), Some("msi"));
    }
}
