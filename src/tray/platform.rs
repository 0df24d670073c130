//! Each desktop's UI loop, on the main thread: the tray is built inside
//! the running loop (macOS requires it) and ticked until it says stop.

use super::{Ticker, TICK};

/// Build the tray with `build` once the loop runs, and tick it until it
/// returns false.
pub fn run(build: impl FnOnce() -> anyhow::Result<Box<dyn Ticker>>) -> anyhow::Result<()> {
    imp::run(build)
}

#[cfg(target_os = "linux")]
mod imp {
    use gtk::glib;

    use super::{Ticker, TICK};

    /// Initialise GTK, show the icon, and run GTK's main loop.
    pub fn run(build: impl FnOnce() -> anyhow::Result<Box<dyn Ticker>>) -> anyhow::Result<()> {
        gtk::init()?;
        let mut tray = build()?;
        let _source = glib::timeout_add_local(TICK, move || {
            if tray.tick() {
                glib::ControlFlow::Continue
            } else {
                gtk::main_quit();
                glib::ControlFlow::Break
            }
        });
        gtk::main();
        Ok(())
    }
}

#[cfg(windows)]
mod imp {
    use windows_sys::Win32::UI::WindowsAndMessaging::{
        DispatchMessageW, PeekMessageW, TranslateMessage, MSG, PM_REMOVE,
    };

    use super::{Ticker, TICK};

    /// Show the icon and pump this thread's window messages (which the
    /// icon's hidden window needs).
    pub fn run(build: impl FnOnce() -> anyhow::Result<Box<dyn Ticker>>) -> anyhow::Result<()> {
        let mut tray = build()?;
        loop {
            // SAFETY: a zeroed MSG is a valid out-parameter, and these
            // calls only touch this thread's message queue.
            unsafe {
                let mut msg: MSG = std::mem::zeroed();
                while PeekMessageW(&mut msg, std::ptr::null_mut(), 0, 0, PM_REMOVE) != 0 {
                    TranslateMessage(&msg);
                    DispatchMessageW(&msg);
                }
            }
            if !tray.tick() {
                return Ok(());
            }
            std::thread::sleep(TICK);
        }
    }
}

#[cfg(target_os = "macos")]
mod imp {
    use std::time::Instant;

    use tao::event::{Event, StartCause};
    use tao::event_loop::{ControlFlow, EventLoopBuilder};
    use tao::platform::macos::{ActivationPolicy, EventLoopExtMacOS};
    use tao::platform::run_return::EventLoopExtRunReturn;

    use super::{Ticker, TICK};

    /// Run AppKit's loop through tao (as tray-icon documents): the icon is
    /// made once the loop has started, then ticked on a timer. The app
    /// shows no Dock icon, only the menu-bar item.
    pub fn run(build: impl FnOnce() -> anyhow::Result<Box<dyn Ticker>>) -> anyhow::Result<()> {
        let mut event_loop = EventLoopBuilder::new().build();
        event_loop.set_activation_policy(ActivationPolicy::Accessory);
        let mut build = Some(build);
        let mut tray: Option<Box<dyn Ticker>> = None;
        let mut failed: Option<anyhow::Error> = None;
        event_loop.run_return(|event, _, control_flow| {
            *control_flow = ControlFlow::WaitUntil(Instant::now() + TICK);
            if let Event::NewEvents(StartCause::Init) = event {
                match build.take().map(|build| build()) {
                    Some(Ok(built)) => tray = Some(built),
                    Some(Err(e)) => {
                        failed = Some(e);
                        *control_flow = ControlFlow::Exit;
                    }
                    None => {}
                }
            }
            if let Some(tray) = tray.as_mut() {
                if !tray.tick() {
                    *control_flow = ControlFlow::Exit;
                }
            }
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
mod imp {
    use super::Ticker;

    pub fn run(_build: impl FnOnce() -> anyhow::Result<Box<dyn Ticker>>) -> anyhow::Result<()> {
        anyhow::bail!("the tray icon is not supported on this platform")
    }
}
