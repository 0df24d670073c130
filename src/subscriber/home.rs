//! The built-in home page (`/`, while no SubscriberDocumentRoot is set): a
//! live demo of the `demo` channel, with the commands that publish to it
//! written for this server's real host and ports.

use crate::node::getting_started::{host_of, FirstSteps};
use crate::node::Node;

/// Is `path` the built-in home page (the directory index of `/`)?
pub fn is_home(path: &str, directory_index: &str) -> bool {
    let path = path.trim_matches('/');
    path.is_empty() || path == directory_index
}

/// The home page for a request that named `host` (its Host header).
pub fn render(template: &[u8], node: &Node, host: Option<&str>) -> Vec<u8> {
    let steps = node.first_steps(host.and_then(host_of));
    fill(&String::from_utf8_lossy(template), &steps).into_bytes()
}

fn fill(template: &str, steps: &FirstSteps) -> String {
    let admin_hint = match &steps.admin_url {
        Some(url) => format!(
            "Or publish from the admin UI, {url} on the server (Channels, then demo): \
             keep this page open beside it."
        ),
        None => "The admin UI is off (AdminUI 0).".to_string(),
    };
    [
        ("{{PUBLISH_SHELL}}", steps.publish_shell.as_str()),
        ("{{PUBLISH_NOTE}}", steps.publish_note),
        ("{{PUBLISH_API}}", steps.publish_api.as_str()),
        ("{{ADMIN_HINT}}", admin_hint.as_str()),
        ("{{HTML_SNIPPET}}", steps.html_snippet.as_str()),
        ("{{SUBSCRIBE_SHELL}}", steps.subscribe_shell.as_str()),
    ]
    .iter()
    .fold(template.to_string(), |page, (name, value)| {
        page.replace(name, &escape(value))
    })
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_paths() {
        assert!(is_home("/", "index.html"));
        assert!(is_home("/index.html", "index.html"));
        assert!(!is_home("/meteor.js", "index.html"));
    }

    #[test]
    fn values_are_escaped() {
        let steps = FirstSteps {
            subscriber_url: String::new(),
            publish_shell: "printf 'a<b>'".into(),
            publish_note: "",
            publish_api: String::new(),
            subscribe_shell: String::new(),
            html_snippet: "<script src=\"x\"></script>".into(),
            admin_url: None,
        };
        let page = fill("{{PUBLISH_SHELL}}|{{HTML_SNIPPET}}", &steps);
        assert_eq!(
            page,
            "printf &#39;a&lt;b&gt;&#39;|&lt;script src=&quot;x&quot;&gt;&lt;/script&gt;"
        );
    }
}
