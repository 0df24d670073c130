//! Log output: human-readable lines on standard error, and the same events
//! in daily log files (text or JSON lines) that are deleted after
//! LogRetention days.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer, Registry};

use crate::config::{Config, LogFormat};

/// Log files are named `meteord.YYYY-MM-DD.log`.
pub const FILE_PREFIX: &str = "meteord";
pub const FILE_SUFFIX: &str = "log";

/// What [`init`] sets up, from the configuration.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub debug: bool,
    /// `LogTimeFormat unix`: seconds since the epoch instead of dates.
    pub unix_time: bool,
    /// Where the daily files go; `None`: standard error only.
    pub directory: Option<PathBuf>,
    /// Files kept (0: all).
    pub retention: usize,
    pub format: LogFormat,
}

impl LogSettings {
    /// How logging is set up (at start; a reload does not change it).
    pub fn from_config(config: &Config) -> LogSettings {
        LogSettings {
            debug: config.debug,
            unix_time: config.log_time_format.eq_ignore_ascii_case("unix"),
            directory: config.log_directory.clone(),
            retention: config.log_retention,
            format: config.log_format,
        }
    }
}

/// The directory the log files are actually written to (set by [`init`];
/// `None` when file logging is off or could not start).
pub fn directory() -> Option<&'static Path> {
    ACTIVE_DIRECTORY.get().and_then(|d| d.as_deref())
}

static ACTIVE_DIRECTORY: OnceLock<Option<PathBuf>> = OnceLock::new();

/// `LogTimeFormat unix`: seconds since the epoch, as meteord could log.
struct UnixTime;

impl FormatTime for UnixTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        write!(w, "{}", crate::hub::unix_now())
    }
}

/// Keeps the background log writers alive; logs are flushed when dropped.
pub struct LogGuard {
    _guards: Vec<WorkerGuard>,
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Install the global logger. `RUST_LOG` overrides the level.
///
/// Lines are handed to background threads, so a busy server never blocks
/// on a slow terminal, pipe or disk (a full buffer drops lines rather than
/// stalling subscribers). A log directory that cannot be used is reported
/// on standard error and the server logs there only.
pub fn init(settings: &LogSettings) -> LogGuard {
    let level = if settings.debug {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    };
    let filter = filter(std::env::var("RUST_LOG").ok().as_deref(), level);
    let mut guards = Vec::new();

    let (console, guard) = non_blocking(std::io::stderr());
    guards.push(guard);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut layers: Vec<BoxedLayer> = vec![text_layer(console, ansi, settings.unix_time)];

    let mut file_error = None;
    let active = match &settings.directory {
        Some(dir) => match open_files(dir, settings.retention) {
            Ok(appender) => {
                let (writer, guard) = non_blocking(appender);
                guards.push(guard);
                layers.push(match settings.format {
                    LogFormat::Text => text_layer(writer, false, settings.unix_time),
                    LogFormat::Json => json_layer(writer, settings.unix_time),
                });
                Some(dir.clone())
            }
            Err(e) => {
                file_error = Some(format!(
                    "no log files: cannot write to {}: {e}",
                    dir.display()
                ));
                None
            }
        },
        None => None,
    };
    let _ = ACTIVE_DIRECTORY.set(active);
    let _ = tracing_subscriber::registry()
        .with(layers.with_filter(filter))
        .try_init();
    if let Some(message) = file_error {
        tracing::warn!("{message}");
    }
    LogGuard { _guards: guards }
}

/// Lines waiting for each writer thread. The queue is allocated whole at
/// start (32 bytes a line on 64-bit machines): tracing-appender's default of
/// 128,000 lines held 4 MiB per destination in an idle server, most of its
/// memory. 16,384 lines still ride out a burst of thousands of connections
/// while a slow disk catches up; past that, lines are dropped.
const QUEUED_LINES: usize = 16_384;

/// A writer fed by a background thread, so that logging never blocks.
fn non_blocking<W: std::io::Write + Send + 'static>(writer: W) -> (NonBlocking, WorkerGuard) {
    NonBlockingBuilder::default()
        .buffered_lines_limit(QUEUED_LINES)
        .lossy(true)
        .finish(writer)
}

/// `RUST_LOG` (`debug`, or `info,meteord::tls=debug`: levels per target,
/// without the regular expressions of tracing's EnvFilter, which cost a
/// regex engine in the binary), else `level`. A bare name is a target with
/// every level; a spec that does not parse is ignored.
fn filter(spec: Option<&str>, level: LevelFilter) -> Targets {
    spec.and_then(|spec| spec.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(level))
}

/// The daily-rotated files in `dir` (created if missing), keeping the
/// newest `retention` (0: all).
fn open_files(dir: &Path, retention: usize) -> anyhow::Result<RollingFileAppender> {
    std::fs::create_dir_all(dir)?;
    let mut builder = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(FILE_PREFIX)
        .filename_suffix(FILE_SUFFIX);
    if retention > 0 {
        builder = builder.max_log_files(retention);
    }
    Ok(builder.build(dir)?)
}

fn text_layer(writer: NonBlocking, ansi: bool, unix_time: bool) -> BoxedLayer {
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(false);
    if unix_time {
        layer.with_timer(UnixTime).boxed()
    } else {
        layer.boxed()
    }
}

fn json_layer(writer: NonBlocking, unix_time: bool) -> BoxedLayer {
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(writer)
        .with_target(false);
    if unix_time {
        layer.with_timer(UnixTime).boxed()
    } else {
        layer.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn rust_log_sets_levels_per_target() {
        let f = filter(Some("info,meteord::tls=debug"), LevelFilter::WARN);
        assert!(f.would_enable("meteord::tls::acme", &Level::DEBUG));
        assert!(!f.would_enable("meteord::hub", &Level::DEBUG));
        assert!(f.would_enable("meteord::hub", &Level::INFO));
        // A bare name is a target with every level, as with EnvFilter.
        let f = filter(Some("meteord"), LevelFilter::WARN);
        assert!(f.would_enable("meteord::tls", &Level::TRACE));
        assert!(!f.would_enable("hyper", &Level::ERROR));
        // A level that is not one: the default stays.
        let f = filter(Some("meteord=loud"), LevelFilter::WARN);
        assert!(!f.would_enable("meteord", &Level::INFO));
        assert!(f.would_enable("meteord", &Level::WARN));
        let f = filter(None, LevelFilter::DEBUG);
        assert!(f.would_enable("hyper", &Level::DEBUG));
    }
}
