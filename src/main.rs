//! The `meteord` binary: parse the command line, load the configuration,
//! and serve until a signal (or the tray, or the admin UI) says stop — or
//! update this executable (`meteord update`).

use std::process::ExitCode;

use meteord::app::{self, Exit};
use meteord::config::{cli, parse_args, Config, Invocation, LegacyArgs};

fn main() -> ExitCode {
    let invocation = match parse_args(std::env::args().skip(1)) {
        Ok(invocation) => invocation,
        Err(message) => {
            eprintln!("meteord: {message}\nTry 'meteord --help'.");
            return ExitCode::from(2);
        }
    };
    let (args, tray) = match invocation {
        Invocation::Help => {
            print!("{}", cli::help_text());
            return ExitCode::SUCCESS;
        }
        Invocation::Version => {
            println!("meteord {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Invocation::Update {
            args,
            check_only,
            allow_downgrade,
        } => return update(&args, check_only, allow_downgrade),
        Invocation::Run { args, no_tray } => (args, !no_tray),
    };
    let config = match Config::load(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("meteord: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let log = meteord::logging::init(&meteord::logging::LogSettings::from_config(&config));
    match &config.file {
        Some(path) => tracing::info!("configuration from {}", path.display()),
        None => tracing::info!("no configuration file; using the built-in configuration"),
    }
    match meteord::logging::directory() {
        Some(dir) => tracing::info!("log files in {}", dir.display()),
        None => tracing::info!("no log files; logging to standard error only"),
    }
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }

    match app::run(config, args, tray) {
        Ok(Exit::Stopped) => ExitCode::SUCCESS,
        Ok(Exit::Restart) => {
            tracing::info!("restarting into the updated executable");
            // Flush the log before this process image is replaced.
            drop(log);
            let e = meteord::update::restart();
            eprintln!("meteord: {e:#}");
            ExitCode::FAILURE
        }
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("meteord: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `meteord update [--check] [--allow-downgrade]`.
fn update(args: &LegacyArgs, check_only: bool, allow_downgrade: bool) -> ExitCode {
    let config = match Config::load(args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("meteord: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    match meteord::update::run_cli(&config, check_only, allow_downgrade) {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("meteord update: {e}");
            ExitCode::FAILURE
        }
    }
}
