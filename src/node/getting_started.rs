//! First steps: the exact commands that publish to and subscribe from
//! this server, with its real addresses, for the subscriber port's home
//! page and the dashboard of a fresh install.

use std::net::{IpAddr, SocketAddr};

use super::Node;

/// The channel the first steps use.
pub const DEMO_CHANNEL: &str = "demo";

/// Where this server's listeners are bound (ports chosen at start
/// included).
#[derive(Debug, Clone, Copy)]
pub struct Addresses {
    pub control: SocketAddr,
    pub subscriber: SocketAddr,
    pub admin: Option<SocketAddr>,
}

/// The commands and snippets, ready to copy.
#[derive(Debug, Clone)]
pub struct FirstSteps {
    /// `http://host:port` of the subscriber port.
    pub subscriber_url: String,
    /// Publish with the control protocol from a shell.
    pub publish_shell: String,
    /// Where that command must run, when the control port is this
    /// machine's only.
    pub publish_note: &'static str,
    /// Publish with the HTTP API (needs a token).
    pub publish_api: String,
    /// Watch the channel from a shell.
    pub subscribe_shell: String,
    /// A page of one's own that shows the channel live.
    pub html_snippet: String,
    /// The admin UI, as this machine reaches it (none when it is off).
    pub admin_url: Option<String>,
}

/// The host part of a `Host` header, if it looks like a host name or an
/// address (it is shown on pages, so nothing else is taken).
pub fn host_of(header: &str) -> Option<&str> {
    let header = header.trim();
    let host = match header.strip_prefix('[') {
        Some(v6) => &header[..v6.find(']')? + 2],
        None => header.rsplit_once(':').map_or(header, |(host, _)| host),
    };
    let fine = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    fine.then_some(host)
}

/// How to name `bound` to someone who reached this server as `seen` (a
/// host from a request; `None` if unknown).
fn reach(bound: IpAddr, seen: Option<&str>) -> String {
    let literal = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    };
    if bound.is_loopback() {
        return literal(bound);
    }
    if bound.is_unspecified() {
        return seen.map_or_else(|| "127.0.0.1".to_string(), str::to_string);
    }
    literal(bound)
}

impl Node {
    /// The first steps for someone who reached this server as `seen`.
    pub fn first_steps(&self, seen: Option<&str>) -> FirstSteps {
        let config = self.config.load();
        let Addresses {
            control,
            subscriber,
            admin,
        } = self.addresses;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let subscriber_url = format!(
            "{scheme}://{}:{}",
            reach(subscriber.ip(), seen),
            subscriber.port()
        );
        let control_host = reach(control.ip(), seen);
        let line = format!("ADDMESSAGE {DEMO_CHANNEL} Hello from the shell");
        let publish_shell = if config.controller_tls {
            format!(
                "printf '{line}\\r\\nQUIT\\r\\n' | openssl s_client -quiet -connect {control_host}:{}",
                control.port()
            )
        } else {
            format!(
                "printf '{line}\\r\\nQUIT\\r\\n' | nc {control_host} {}",
                control.port()
            )
        };
        let publish_note = if control.ip().is_loopback() {
            "Run it on the server itself: the control port listens on this machine only."
        } else {
            "Publishers on other machines need their address in ControllerAllow."
        };
        let publish_api = format!(
            "curl -X POST -H \"Authorization: Bearer $TOKEN\" --data 'Hello from curl' {subscriber_url}/api/channels/{DEMO_CHANNEL}/messages"
        );
        let subscribe_shell = format!("curl -N {subscriber_url}/sse/{DEMO_CHANNEL}");
        let html_snippet = format!(
            "<ul id=\"messages\"></ul>\n\
             <script src=\"{subscriber_url}/meteor.js\"></script>\n\
             <script>\n\
             \x20 var client = Meteor.client({{ url: \"{subscriber_url}\", channels: {{ {DEMO_CHANNEL}: {{ last: 10 }} }} }});\n\
             \x20 client.on(\"message\", function (m) {{\n\
             \x20   var item = document.createElement(\"li\");\n\
             \x20   item.textContent = m.text;\n\
             \x20   document.getElementById(\"messages\").appendChild(item);\n\
             \x20 }});\n\
             </script>"
        );
        let admin_url =
            admin.map(|admin| format!("{scheme}://{}:{}/", reach(admin.ip(), seen), admin.port()));
        FirstSteps {
            admin_url,
            subscriber_url,
            publish_shell,
            publish_note,
            publish_api,
            subscribe_shell,
            html_snippet,
        }
    }

    /// True until the first message is published on this server (ids
    /// are global and survive restarts, so a server that ever published
    /// has moved past id 0).
    pub fn never_published(&self) -> bool {
        self.hub.next_message_id() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_from_headers() {
        assert_eq!(host_of("example.com:4670"), Some("example.com"));
        assert_eq!(host_of("example.com"), Some("example.com"));
        assert_eq!(host_of("[::1]:4670"), Some("[::1]"));
        assert_eq!(host_of("10.0.0.5"), Some("10.0.0.5"));
        assert_eq!(host_of("<script>:1"), None);
        assert_eq!(host_of("a b"), None);
        assert_eq!(host_of(""), None);
        assert_eq!(host_of("[::1"), None);
    }

    #[test]
    fn addresses_as_seen() {
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let lan: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(reach(any, Some("pi.local")), "pi.local");
        assert_eq!(reach(any, None), "127.0.0.1");
        assert_eq!(reach(lo, Some("pi.local")), "127.0.0.1");
        assert_eq!(reach(lan, Some("pi.local")), "192.0.2.7");
        assert_eq!(reach("::1".parse().unwrap(), None), "[::1]");
    }
}
