//! The `meteord` binary: parse the command line, load the configuration,
//! bind, and serve until a signal says stop.

use std::process::ExitCode;

use meteord::config::{cli, parse_args, Config, Invocation};
use meteord::server::{handle_signals, Server};

fn main() -> ExitCode {
    let invocation = match parse_args(std::env::args().skip(1)) {
        Ok(invocation) => invocation,
        Err(message) => {
            eprintln!("meteord: {message}\nTry 'meteord --help'.");
            return ExitCode::from(2);
        }
    };
    let args = match invocation {
        Invocation::Help => {
            print!("{}", cli::help_text());
            return ExitCode::SUCCESS;
        }
        Invocation::Version => {
            println!("meteord {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Invocation::Run(args) => args,
    };
    let config = match Config::load(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("meteord: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let _log = meteord::logging::init(config.debug, &config.log_time_format);
    match &config.file {
        Some(path) => tracing::info!("configuration from {}", path.display()),
        None => tracing::info!("no configuration file; using the built-in configuration"),
    }
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("meteord: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let server = Server::bind(config, args).await?;
        tokio::spawn(handle_signals(server.shared())?);
        server.run().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("meteord: {e:#}");
            ExitCode::FAILURE
        }
    }
}
