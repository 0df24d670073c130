//! The tray's status icons, drawn at start: a disc whose colour and mark
//! say the state, and a dot in the corner while an update is available.

use tray_icon::menu::Menu;
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};

/// What the icon shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Running,
    /// Publishing is paused (two bars).
    Paused,
    /// Something needs attention: writing to the database fails, Redis is
    /// unreachable, the server does not answer (an exclamation mark).
    Error,
}

impl State {
    pub fn word(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Paused => "publishing paused",
            State::Error => "needs attention",
        }
    }
}

const SIZE: u32 = 32;

/// The tray icon with its menu, showing "running" until told otherwise.
pub fn tray_icon(menu: Menu) -> anyhow::Result<TrayIcon> {
    Ok(TrayIconBuilder::new()
        .with_menu(Box::new(menu))
        .with_tooltip("meteord")
        .with_icon(icon(State::Running, false)?)
        .build()?)
}

/// The icon for `state`, with the update dot when `update`.
pub fn icon(state: State, update: bool) -> anyhow::Result<Icon> {
    let disc = match state {
        State::Running => [0xe8, 0x59, 0x0c],
        State::Paused => [0x86, 0x8e, 0x96],
        State::Error => [0xc9, 0x2a, 0x2a],
    };
    let centre = (SIZE as f32 - 1.0) / 2.0;
    let mut rgba = Vec::with_capacity((SIZE * SIZE * 4) as usize);
    for y in 0..SIZE {
        for x in 0..SIZE {
            let (fx, fy) = (x as f32, y as f32);
            let d = ((fx - centre).powi(2) + (fy - centre).powi(2)).sqrt();
            let alpha = (15.0 - d).clamp(0.0, 1.0);
            let mut pixel = [disc[0], disc[1], disc[2], (alpha * 255.0) as u8];
            if alpha > 0.0 && mark(state, x, y) {
                pixel = [0xff, 0xff, 0xff, 0xff];
            }
            // The update dot: top right, green with a white ring.
            let dot = ((fx - 25.0).powi(2) + (fy - 6.0).powi(2)).sqrt();
            if update && dot <= 6.5 {
                pixel = if dot <= 5.0 {
                    [0x2b, 0x8a, 0x3e, 0xff]
                } else {
                    [0xff, 0xff, 0xff, 0xff]
                };
            }
            rgba.extend_from_slice(&pixel);
        }
    }
    Ok(Icon::from_rgba(rgba, SIZE, SIZE)?)
}

/// The white mark inside the disc.
fn mark(state: State, x: u32, y: u32) -> bool {
    match state {
        State::Running => false,
        State::Paused => {
            (9..=22).contains(&y) && ((10..=13).contains(&x) || (18..=21).contains(&x))
        }
        State::Error => (14..=17).contains(&x) && ((7..=19).contains(&y) || (22..=25).contains(&y)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_draws() {
        for state in [State::Running, State::Paused, State::Error] {
            for update in [false, true] {
                icon(state, update).unwrap();
            }
        }
        assert!(mark(State::Paused, 11, 15) && !mark(State::Paused, 16, 15));
        assert!(mark(State::Error, 15, 10) && !mark(State::Error, 15, 21));
        assert!(!mark(State::Running, 15, 15));
    }
}
