//! The Windows service itself: the service control manager's side
//! (install, start, stop, uninstall) and the service's main function.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

use super::{ADMIN_URL_FILE, NAME};
use crate::config::cli::ServiceAction as Action;
use crate::config::{Config, LegacyArgs};
use crate::update::rollback;

/// The exit code that asks the recovery actions for a restart (after an
/// update or a rollback).
const RESTART_ME: u32 = 3;
/// How long `start`, `stop` and `uninstall` wait for the state to change.
const STATE_WAIT: Duration = Duration::from_secs(30);

/// The options `meteord service run` was started with, for the service's
/// main function (which the dispatcher calls without them).
static ARGS: OnceLock<LegacyArgs> = OnceLock::new();

pub fn command(action: Action, args: &LegacyArgs) -> anyhow::Result<String> {
    match action {
        Action::Install => install(args),
        Action::Uninstall => uninstall(),
        Action::Start => wait_for_state("start", ServiceState::Running, |s| s.start::<&OsStr>(&[])),
        Action::Stop => wait_for_state("stop", ServiceState::Stopped, |s| s.stop().map(|_| ())),
        Action::Run => {
            let _ = ARGS.set(args.clone());
            service_dispatcher::start(NAME, ffi_service_main).context(
                "not started by the service control manager (use 'meteord service start')",
            )?;
            Ok(String::new())
        }
    }
}

/// `C:\ProgramData\meteord`: configuration, data and logs of the service.
/// Asked of the shell (as the .msi does) rather than read from the
/// environment, which a service's may not carry.
fn folder() -> PathBuf {
    use windows_sys::Win32::System::Com::CoTaskMemFree;
    use windows_sys::Win32::UI::Shell::{FOLDERID_ProgramData, SHGetKnownFolderPath};

    let mut path: windows_sys::core::PWSTR = std::ptr::null_mut();
    // SAFETY: the out-pointer is valid; on success the shell hands over a
    // NUL-terminated string that is read once and freed here.
    let found = unsafe {
        if SHGetKnownFolderPath(&FOLDERID_ProgramData, 0, std::ptr::null_mut(), &mut path) == 0
            && !path.is_null()
        {
            let len = (0..).take_while(|&i| *path.add(i) != 0).count();
            let wide = std::slice::from_raw_parts(path, len);
            Some(PathBuf::from(String::from_utf16_lossy(wide)))
        } else {
            None
        }
    };
    if !path.is_null() {
        // SAFETY: allocated by SHGetKnownFolderPath, freed once.
        unsafe { CoTaskMemFree(path as *const _) };
    }
    found
        .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"))
        .join("meteord")
}

/// A path as meteord's options take it: backslashes are escapes there.
fn option_path(path: &Path) -> String {
    path.display().to_string().replace('\\', "/")
}

/// The service's options: the ProgramData locations unless given.
fn with_service_defaults(args: &LegacyArgs) -> LegacyArgs {
    let dir = folder();
    let mut args = args.clone();
    let defaults = [
        ("ConfigFileLocation", dir.join("meteord.conf")),
        ("DataDirectory", dir.clone()),
        ("LogDirectory", dir.join("logs")),
    ];
    for (key, path) in defaults {
        if args.get(key, None).is_none() {
            args.set(key, None, option_path(&path));
        }
    }
    args
}

/// The service's command line: `service run` and the options given to
/// `install` (`run` adds the ProgramData locations itself).
fn launch_arguments(args: &LegacyArgs) -> Vec<OsString> {
    let mut out: Vec<OsString> = vec!["service".into(), "run".into()];
    for (key, mode, value) in args.entries() {
        let name = match mode {
            Some(mode) => format!("-{key}.{mode}"),
            None => format!("-{key}"),
        };
        out.push(name.into());
        // A value starting with a dash is written with two.
        let value = match value.strip_prefix('-') {
            Some(rest) => format!("--{rest}"),
            None => value.clone(),
        };
        out.push(value.into());
    }
    out
}

fn manager(access: ServiceManagerAccess) -> anyhow::Result<ServiceManager> {
    ServiceManager::local_computer(None::<&str>, access)
        .context("cannot reach the service control manager (run this as an administrator)")
}

fn install(args: &LegacyArgs) -> anyhow::Result<String> {
    let dir = folder();
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let info = ServiceInfo {
        name: NAME.into(),
        display_name: "meteord realtime push server".into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe,
        launch_arguments: launch_arguments(args),
        dependencies: vec![],
        account_name: None, // LocalSystem
        account_password: None,
    };
    let manager = manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
    let service = manager
        .create_service(&info, ServiceAccess::CHANGE_CONFIG | ServiceAccess::START)
        .context("cannot create the service (is it installed already?)")?;
    service.set_description(
        "Realtime HTTP push server (meteord). Configuration, data and logs in %ProgramData%\\meteord.",
    )?;
    if let Err(e) = set_recovery(&service) {
        eprintln!("meteord service: the service will not restart by itself after a failure: {e}");
    }
    Ok(format!(
        "service '{NAME}' installed; it starts at boot. Configuration {} (when it exists), \
         data {}, logs {}. 'meteord service start' starts it now.",
        dir.join("meteord.conf").display(),
        dir.display(),
        dir.join("logs").display()
    ))
}

/// Restart after a crash, and after the deliberate error exit that
/// follows an update or a rollback.
fn set_recovery(service: &windows_service::service::Service) -> windows_service::Result<()> {
    let restart = |secs| ServiceAction {
        action_type: ServiceActionType::Restart,
        delay: Duration::from_secs(secs),
    };
    service.update_failure_actions(ServiceFailureActions {
        reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(24 * 60 * 60)),
        reboot_msg: None,
        command: None,
        actions: Some(vec![restart(2), restart(5), restart(30)]),
    })?;
    service.set_failure_actions_on_non_crash_failures(true)
}

/// A service installed by the .msi has no recovery actions (the package
/// format cannot set them): the service sets its own at start.
fn ensure_recovery() {
    let set = manager(ServiceManagerAccess::CONNECT).and_then(|manager| {
        let service =
            manager.open_service(NAME, ServiceAccess::CHANGE_CONFIG | ServiceAccess::START)?;
        set_recovery(&service)?;
        Ok(())
    });
    if let Err(e) = set {
        tracing::warn!("service: cannot set its recovery actions: {e:#}");
    }
}

fn uninstall() -> anyhow::Result<String> {
    wait_for_state("stop", ServiceState::Stopped, |s| s.stop().map(|_| ()))?;
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    open(&manager, ServiceAccess::DELETE)?.delete()?;
    Ok(format!(
        "service '{NAME}' removed; {} (configuration, data, logs) stays",
        folder().display()
    ))
}

/// Open the service; a service manager that is still loading its
/// database right after it started is given a moment.
fn open(
    manager: &ServiceManager,
    access: ServiceAccess,
) -> anyhow::Result<windows_service::service::Service> {
    let mut tries = 0;
    loop {
        match manager.open_service(NAME, access) {
            Ok(service) => return Ok(service),
            Err(_) if tries < 10 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context("the service is not installed ('meteord service install')"))
            }
        }
    }
}

/// Start or stop the service and wait until it is in `want`.
fn wait_for_state(
    what: &str,
    want: ServiceState,
    act: impl FnOnce(&windows_service::service::Service) -> windows_service::Result<()>,
) -> anyhow::Result<String> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let service = open(
        &manager,
        ServiceAccess::QUERY_STATUS | ServiceAccess::START | ServiceAccess::STOP,
    )?;
    // The request may race with the service manager doing the same (an
    // automatic start): what counts is the state reached.
    let refused = match service.query_status()?.current_state {
        state if state == want => None,
        _ => act(&service).err(),
    };
    let started = Instant::now();
    loop {
        let state = service.query_status()?.current_state;
        if state == want {
            return Ok(format!("service '{NAME}': {state:?}"));
        }
        if started.elapsed() > STATE_WAIT {
            if let Some(e) = &refused {
                anyhow::bail!("cannot {what} the service: {e}");
            }
            anyhow::bail!(
                "the service is {state:?} after {STATE_WAIT:?}; the log in {} says why",
                folder().join("logs").display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn program_data() -> Option<PathBuf> {
    Some(folder())
}

pub fn running_admin_url() -> Option<String> {
    let manager =
        ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT).ok()?;
    let service = manager
        .open_service(NAME, ServiceAccess::QUERY_STATUS)
        .ok()?;
    if service.query_status().ok()?.current_state != ServiceState::Running {
        return None;
    }
    let written = std::fs::read_to_string(folder().join(ADMIN_URL_FILE)).ok();
    Some(
        written
            .map(|url| url.trim().to_string())
            .filter(|url| url.starts_with("http://") || url.starts_with("https://"))
            .unwrap_or_else(|| "http://127.0.0.1:4672/".into()),
    )
}

define_windows_service!(ffi_service_main, service_main);

fn service_main(_arguments: Vec<OsString>) {
    let stop_asked = Arc::new(AtomicBool::new(false));
    let shutdown: Arc<Mutex<Option<CancellationToken>>> = Arc::default();
    let handler = {
        let (stop_asked, shutdown) = (stop_asked.clone(), shutdown.clone());
        move |control| match control {
            ServiceControl::Stop | ServiceControl::Shutdown | ServiceControl::Preshutdown => {
                stop_asked.store(true, Ordering::Release);
                if let Some(token) = shutdown.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                    token.cancel();
                }
                ServiceControlHandlerResult::NoError
            }
            ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
            _ => ServiceControlHandlerResult::NotImplemented,
        }
    };
    let Ok(status) = service_control_handler::register(NAME, handler) else {
        return;
    };
    let report = |state, exit: ServiceExitCode| {
        let _ = status.set_service_status(ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: if state == ServiceState::Running {
                ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
            } else {
                ServiceControlAccept::empty()
            },
            exit_code: exit,
            checkpoint: 0,
            wait_hint: Duration::from_secs(15),
            process_id: None,
        });
    };
    report(ServiceState::StartPending, ServiceExitCode::NO_ERROR);
    let exit = serve(&stop_asked, &shutdown, || {
        report(ServiceState::Running, ServiceExitCode::NO_ERROR)
    });
    report(ServiceState::Stopped, exit);
}

/// Run the server as the service; the exit code for the service manager.
fn serve(
    stop_asked: &AtomicBool,
    shutdown: &Mutex<Option<CancellationToken>>,
    running: impl FnOnce(),
) -> ServiceExitCode {
    let args = with_service_defaults(&ARGS.get().cloned().unwrap_or_default());
    if let Ok(exe) = rollback::exe() {
        // A service cannot exec: the previous program is back in place,
        // and the recovery actions start it.
        if let rollback::OnStart::RolledBack { .. } = rollback::on_start(exe) {
            return ServiceExitCode::ServiceSpecific(RESTART_ME);
        }
    }
    let config = match Config::load(&args) {
        Ok(config) => config,
        Err(e) => {
            // No log file yet: say why where the logs go.
            let note = folder().join("logs").join("service-start-error.txt");
            let _ = std::fs::write(&note, format!("configuration error: {e}\r\n"));
            return failed();
        }
    };
    let _log = crate::logging::init(&crate::logging::LogSettings::from_config(&config));
    tracing::info!("running as the Windows service '{NAME}'");
    ensure_recovery();
    let url_file = config.data_directory.join(ADMIN_URL_FILE);
    let result = crate::server::runtime::serve(config, args, |ready| {
        *shutdown.lock().unwrap_or_else(|e| e.into_inner()) = Some(ready.node.shutdown.clone());
        if stop_asked.load(Ordering::Acquire) {
            ready.node.shutdown.cancel();
        }
        if let Some(admin) = ready.admin {
            let scheme = if ready.node.tls.is_some() {
                "https"
            } else {
                "http"
            };
            let port = admin.port();
            let _ = std::fs::write(&url_file, format!("{scheme}://127.0.0.1:{port}/\n"));
        }
        running();
    });
    let _ = std::fs::remove_file(&url_file);
    match result {
        Ok(node) if node.updates.restart_pending() => {
            tracing::info!(
                "service: stopping so that the service manager starts the updated program"
            );
            ServiceExitCode::ServiceSpecific(RESTART_ME)
        }
        Ok(_) => {
            // A clean stop proves an updated program.
            if let Ok(exe) = rollback::exe() {
                rollback::confirm(exe);
            }
            ServiceExitCode::NO_ERROR
        }
        Err(e) => {
            tracing::error!("{e:#}");
            failed()
        }
    }
}

/// The service could not start: an update on trial is rolled back first.
fn failed() -> ServiceExitCode {
    if let Ok(exe) = rollback::exe() {
        if rollback::on_trial(exe) && rollback::roll_back(exe).is_ok() {
            return ServiceExitCode::ServiceSpecific(RESTART_ME);
        }
    }
    ServiceExitCode::ServiceSpecific(1)
}
