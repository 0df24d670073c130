//! A tiny browser for the admin UI tests: keeps cookies, signs up and in,
//! and posts forms with the page's CSRF token.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::{request, Response, TestServer};

/// The admin password the tests set.
pub const PASSWORD: &str = "correct horse battery";

/// A tiny browser: keeps cookies between requests.
pub struct Browser {
    pub addr: SocketAddr,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new(addr: SocketAddr) -> Browser {
        Browser {
            addr,
            cookies: BTreeMap::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn session(&self) -> Option<&str> {
        self.cookies.get("meteord_session").map(String::as_str)
    }

    /// Remember the response's cookies (an empty value with Max-Age=0
    /// deletes one).
    pub fn keep(&mut self, response: &Response) {
        for line in response.head.lines() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if !name.trim().eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let mut parts = value.trim().split(';');
            let (k, v) = parts.next().unwrap().split_once('=').unwrap();
            let attributes: Vec<&str> = parts.map(str::trim).collect();
            assert!(attributes.contains(&"HttpOnly"), "{line}");
            assert!(attributes.contains(&"SameSite=Strict"), "{line}");
            assert!(attributes.contains(&"Path=/"), "{line}");
            if attributes.contains(&"Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
    }

    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let cookie = self.cookie_header();
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if !cookie.is_empty() {
            headers.push(("Cookie", &cookie));
        }
        let response = request(self.addr, method, path, &headers, body).await;
        self.keep(&response);
        response
    }

    pub async fn get(&mut self, path: &str) -> Response {
        self.send("GET", path, &[], b"").await
    }

    /// POST a urlencoded form.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.post_with(path, fields, &[]).await
    }

    pub async fn post_with(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        extra: &[(&str, &str)],
    ) -> Response {
        let body = form(fields);
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        headers.extend_from_slice(extra);
        self.send("POST", path, &headers, body.as_bytes()).await
    }

    /// The CSRF token the forms of a page carry.
    pub async fn csrf(&mut self, path: &str) -> String {
        let page = self.get(path).await;
        assert_eq!(page.status, 200, "GET {path}: {}", page.head);
        csrf_of(&page)
    }

    /// The first-run form: a user name and the new password, twice.
    pub async fn setup(&mut self, user: &str, password: &str, again: &str) -> Response {
        let fields = [
            ("username", user),
            ("password", password),
            ("password2", again),
        ];
        self.post("/setup", &fields).await
    }

    /// The sign-in form.
    pub async fn login(&mut self, user: &str, password: &str) -> Response {
        self.post("/login", &[("username", user), ("password", password)])
            .await
    }

    /// The password form of the tokens page.
    pub async fn change_password(&mut self, current: &str, new: &str, again: &str) -> Response {
        let fields = [
            ("current", current),
            ("password", new),
            ("password2", again),
        ];
        self.submit("/tokens", "/password", &fields).await
    }

    /// POST a form the way the page at `page` would, with its CSRF token.
    pub async fn submit(&mut self, page: &str, action: &str, fields: &[(&str, &str)]) -> Response {
        let csrf = self.csrf(page).await;
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }
}

pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn html(response: &Response) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

pub fn csrf_of(response: &Response) -> String {
    let body = html(response);
    let at = body
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF field in {body}"));
    let rest = &body[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

pub fn location(response: &Response) -> &str {
    response.header("location").unwrap_or("")
}

pub async fn admin_server() -> (TestServer, SocketAddr) {
    admin_server_with(&[]).await
}

pub async fn admin_server_with(options: &[(&str, &str)]) -> (TestServer, SocketAddr) {
    let server = TestServer::start(options).await;
    let admin = server.admin.expect("the admin listener");
    (server, admin)
}

/// A server whose admin password is set, and a browser signed in to it.
pub async fn signed_in() -> (TestServer, Browser) {
    signed_in_with(&[]).await
}

pub async fn signed_in_with(options: &[(&str, &str)]) -> (TestServer, Browser) {
    let (server, admin) = admin_server_with(options).await;
    let mut browser = Browser::new(admin);
    let done = browser.setup("admin", PASSWORD, PASSWORD).await;
    assert_eq!(done.status, 303, "{}", html(&done));
    assert!(browser.session().is_some());
    (server, browser)
}
