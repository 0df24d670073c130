//! Rendering helpers: the page layout, flash messages, redirects, and
//! formatting of times, sizes and names.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

/// The cookie carrying a one-time notice to the next page.
pub const FLASH_COOKIE: &str = "meteord_flash";
/// Longest notice kept in the flash cookie.
const FLASH_MAX: usize = 600;

/// A notice shown at the top of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// "ok", "warn" or "error".
    pub kind: &'static str,
    pub text: String,
}

impl Flash {
    pub fn ok(text: impl Into<String>) -> Flash {
        Flash {
            kind: "ok",
            text: text.into(),
        }
    }

    pub fn warn(text: impl Into<String>) -> Flash {
        Flash {
            kind: "warn",
            text: text.into(),
        }
    }

    pub fn error(text: impl Into<String>) -> Flash {
        Flash {
            kind: "error",
            text: text.into(),
        }
    }

    /// `role` for the notice: errors and warnings interrupt, others don't.
    pub fn role(&self) -> &'static str {
        if self.kind == "ok" {
            "status"
        } else {
            "alert"
        }
    }

    fn encode(&self) -> String {
        let mut text = self.text.clone();
        if text.len() > FLASH_MAX {
            let mut cut = FLASH_MAX;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        serde_urlencoded::to_string([("k", self.kind), ("t", text.as_str())]).unwrap_or_default()
    }

    /// Read a notice back from its cookie value.
    pub fn decode(value: &str) -> Option<Flash> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(value).ok()?;
        let mut kind = None;
        let mut text = None;
        for (k, v) in pairs {
            match k.as_str() {
                "k" => {
                    kind = match v.as_str() {
                        "ok" => Some("ok"),
                        "warn" => Some("warn"),
                        "error" => Some("error"),
                        _ => None,
                    }
                }
                "t" => text = Some(v),
                _ => {}
            }
        }
        Some(Flash {
            kind: kind?,
            text: text?,
        })
    }
}

/// What every signed-in page shows around its content.
pub struct Layout {
    pub title: String,
    /// Which navigation entry is current.
    pub nav: &'static str,
    pub user: String,
    pub csrf: String,
    pub flash: Option<Flash>,
    pub version: &'static str,
}

impl Layout {
    /// `aria-current` for a navigation entry.
    pub fn current(&self, nav: &str) -> &'static str {
        if self.nav == nav {
            "page"
        } else {
            "false"
        }
    }
}

/// A page shown without the signed-in navigation: errors and notices.
#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    text: &'a str,
    version: &'static str,
}

/// Render a template into an HTML answer.
pub fn render<T: Template>(status: StatusCode, template: &T) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!("admin UI: rendering a page failed: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "rendering failed").into_response()
        }
    }
}

/// A short page saying what went wrong (or what happened).
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    render(
        status,
        &MessagePage {
            title,
            text,
            version: crate::config::VERSION,
        },
    )
}

/// `303 See Other` to a path of this UI.
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A cookie for this UI: HttpOnly, SameSite=Strict, whole site.
pub fn cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> HeaderValue {
    let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Redirect, carrying a notice to the page redirected to.
pub fn see_other_with(location: &str, flash: Flash, secure: bool) -> Response {
    let mut response = see_other(location);
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie(FLASH_COOKIE, &flash.encode(), Some(60), secure),
    );
    response
}

/// Percent-encode everything but unreserved characters (for a path
/// segment or a query value).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The admin path of a channel.
pub fn channel_path(name: &str) -> String {
    format!("/channels/{}", encode(name))
}

/// A Unix time in seconds, however many references deep a template
/// passes it.
pub trait UnixTime {
    fn unix(&self) -> u64;
}

impl UnixTime for u64 {
    fn unix(&self) -> u64 {
        *self
    }
}

impl<T: UnixTime + ?Sized> UnixTime for &T {
    fn unix(&self) -> u64 {
        (**self).unix()
    }
}

/// A Unix time as `2024-05-01 12:34:56 UTC`.
pub fn utc(ts: u64) -> String {
    let days = (ts / 86_400) as i64;
    let secs = ts % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A duration in seconds as `3d 4h`, `5h 12m`, `4m 10s`, `9s`.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// A byte count as `512 B`, `1.5 KiB`, `3.2 MiB`.
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A rate such as messages per second: whole numbers, or one decimal
/// below 10.
pub fn rate(n: f64) -> String {
    if n < 10.0 && n.fract() != 0.0 {
        format!("{n:.1}")
    } else {
        format!("{n:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(3 * 86_400 + 4 * 3600 + 5), "3d 4h");
        assert_eq!(rate(2.25), "2.2");
        assert_eq!(rate(120.4), "120");
    }

    #[test]
    fn flash_round_trip() {
        let flash = Flash::warn("Sent \"as is\"; <b> & ü");
        let encoded = flash.encode();
        assert!(!encoded.contains([';', ' ', '"', ',']));
        assert_eq!(Flash::decode(&encoded), Some(flash));
        assert_eq!(Flash::decode("k=evil&t=x"), None);
    }

    #[test]
    fn cookies() {
        let plain = cookie("meteord_session", "abc", Some(60), false);
        assert_eq!(
            plain.to_str().unwrap(),
            "meteord_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=60"
        );
        let secure = cookie("meteord_session", "abc", None, true);
        assert_eq!(
            secure.to_str().unwrap(),
            "meteord_session=abc; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
    }

    #[test]
    fn paths() {
        assert_eq!(channel_path("chat.room-1"), "/channels/chat.room-1");
        assert_eq!(channel_path("a/b c"), "/channels/a%2Fb%20c");
    }
}
