//! Log output: human-readable lines on standard error, and the same events
//! in daily log files (text or JSON lines) that are deleted after
//! LogRetention days.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

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
    let level = if settings.debug { "debug" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let mut guards = Vec::new();

    let (console, guard) = tracing_appender::non_blocking(std::io::stderr());
    guards.push(guard);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut layers: Vec<BoxedLayer> = vec![text_layer(console, ansi, settings.unix_time)];

    let mut file_error = None;
    let active = match &settings.directory {
        Some(dir) => match open_files(dir, settings.retention) {
            Ok(appender) => {
                let (writer, guard) = tracing_appender::non_blocking(appender);
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
