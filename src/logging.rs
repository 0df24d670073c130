//! Log output: human-readable lines on standard error.

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::EnvFilter;

/// `LogTimeFormat unix`: seconds since the epoch, as meteord could log.
struct UnixTime;

impl FormatTime for UnixTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        write!(w, "{}", crate::hub::unix_now())
    }
}

/// Keeps the background log writer alive; logs are flushed when dropped.
pub type LogGuard = tracing_appender::non_blocking::WorkerGuard;

/// Install the global logger. `RUST_LOG` overrides the level.
///
/// Lines are handed to a background thread, so a busy server never blocks
/// on a slow terminal or pipe (a full buffer drops lines rather than
/// stalling subscribers).
pub fn init(debug: bool, time_format: &str) -> LogGuard {
    let level = if debug { "debug" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = if time_format.eq_ignore_ascii_case("unix") {
        builder.with_timer(UnixTime).try_init()
    } else {
        builder.try_init()
    };
    guard
}
