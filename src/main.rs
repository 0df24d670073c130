//! The `meteord` binary: parse the command line, load the configuration,
//! and serve until a signal (or the tray, or the admin UI) says stop — or
//! update this executable (`meteord update`), or manage the Windows
//! service (`meteord service`).

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
            println!("meteord {}", meteord::config::VERSION);
            return ExitCode::SUCCESS;
        }
        Invocation::Update {
            args,
            check_only,
            allow_downgrade,
            rollback,
        } => return update(&args, check_only, allow_downgrade, rollback),
        Invocation::Service { action, args } => return meteord::service::command(action, &args),
        Invocation::Run { args, no_tray } => (args, !no_tray),
    };
    // A program that failed to start after its update is replaced by the
    // one it replaced, which starts instead.
    app::roll_back_a_failed_update();
    let config = match Config::load(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("meteord: configuration error: {e}");
            app::failed_to_start();
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
        Ok(Exit::Stopped) => {
            app::stopped_cleanly();
            ExitCode::SUCCESS
        }
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
            drop(log);
            app::failed_to_start();
            ExitCode::FAILURE
        }
    }
}

/// `meteord update [--check] [--allow-downgrade] [--rollback]`.
fn update(args: &LegacyArgs, check_only: bool, allow_downgrade: bool, rollback: bool) -> ExitCode {
    if rollback {
        return match meteord::update::rollback_cli() {
            Ok(message) => {
                println!("{message}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("meteord update --rollback: {e}");
                ExitCode::FAILURE
            }
        };
    }
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
