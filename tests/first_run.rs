//! A first run that teaches, through real HTTP requests: the subscriber
//! port's home page with this server's own commands, the dashboard's first
//! steps until the first message, the settings page by topic with its
//! filter, and the update card saying which feed applies.

mod common;

use common::admin::*;
use common::{http_raw, parse_response, Control, TestServer};

async fn home(server: &TestServer, host: &str) -> String {
    let raw = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let reply = parse_response(&http_raw(server.subscriber, raw.as_bytes()).await);
    assert_eq!(reply.status, 200);
    String::from_utf8_lossy(&reply.body).into_owned()
}

#[tokio::test]
async fn the_home_page_is_a_live_demo_with_this_servers_commands() {
    let server = TestServer::start(&[]).await;
    let (control, sub) = (server.control.port(), server.subscriber.port());
    let page = home(&server, &format!("127.0.0.1:{sub}")).await;
    // It loads the client and subscribes to demo.
    assert!(
        page.contains("<script src=\"/meteor.js\"></script>"),
        "{page}"
    );
    assert!(page.contains("channels: { demo: { last: 10 } }"), "{page}");
    // The commands name the real ports (chosen at start here).
    assert!(
        page.contains(&format!(
            "printf &#39;ADDMESSAGE demo Hello from the shell\\r\\nQUIT\\r\\n&#39; | nc 127.0.0.1 {control}"
        )),
        "{page}"
    );
    assert!(page.contains("Run it on the server itself"), "{page}");
    assert!(
        page.contains(&format!("curl -N http://127.0.0.1:{sub}/sse/demo")),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "&lt;script src=&quot;http://127.0.0.1:{sub}/meteor.js&quot;&gt;&lt;/script&gt;"
        )),
        "the snippet is shown, escaped: {page}"
    );
    let admin = server.admin.unwrap().port();
    assert!(
        page.contains(&format!("http://127.0.0.1:{admin}/")),
        "{page}"
    );
    assert!(!page.contains("{{"), "a placeholder is left: {page}");
    // A hostile Host header is never written into the page.
    let page = home(&server, "<script>alert(1)</script>").await;
    assert!(!page.contains("<script>alert"), "{page}");
    server.stop().await;
}

#[tokio::test]
async fn a_document_root_replaces_the_home_page() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join("index.html"),
        "<p>{{PUBLISH_SHELL}} mine</p>",
    )
    .unwrap();
    let server =
        TestServer::start(&[("SubscriberDocumentRoot", root.path().to_str().unwrap())]).await;
    assert_eq!(
        home(&server, "localhost").await,
        "<p>{{PUBLISH_SHELL}} mine</p>"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_dashboard_shows_first_steps_until_the_first_message() {
    let (server, mut browser) = signed_in_with(&[]).await;
    let dashboard = html(&browser.get("/").await);
    assert!(dashboard.contains("id=\"first-steps\""), "{dashboard}");
    let (control, sub) = (server.control.port(), server.subscriber.port());
    assert!(
        dashboard.contains(&format!("nc 127.0.0.1 {control}")),
        "{dashboard}"
    );
    assert!(
        dashboard.contains(&format!("href=\"http://127.0.0.1:{sub}/\"")),
        "a link to the live demo: {dashboard}"
    );
    assert!(
        dashboard.contains("action=\"/channels/demo/publish\""),
        "{dashboard}"
    );

    // Publishing from the card's form is a first message: the card goes.
    let published = browser
        .submit(
            "/",
            "/channels/demo/publish",
            &[("text", "Hello, world"), ("escape", "on")],
        )
        .await;
    assert_eq!(published.status, 303, "{}", html(&published));
    let dashboard = html(&browser.get("/").await);
    assert!(!dashboard.contains("id=\"first-steps\""), "{dashboard}");
    server.stop().await;
}

#[tokio::test]
async fn a_message_from_the_control_port_ends_the_first_steps_too() {
    let (server, mut browser) = signed_in_with(&[]).await;
    let mut publisher = Control::connect(server.control).await;
    assert_eq!(publisher.command("ADDMESSAGE demo hi").await, "OK\t0\r\n");
    let dashboard = html(&browser.get("/").await);
    assert!(!dashboard.contains("id=\"first-steps\""), "{dashboard}");
    server.stop().await;
}

#[tokio::test]
async fn settings_are_grouped_by_topic_with_a_filter() {
    let (server, mut browser) = signed_in_with(&[]).await;
    let page = html(&browser.get("/settings").await);
    let topics = [
        "network",
        "limits",
        "security",
        "tls",
        "private",
        "browser-publishing",
        "presence",
        "webhooks",
        "persistence",
        "cluster",
        "logs",
        "updates",
        "legacy",
        "modes",
    ];
    let mut last = 0;
    for topic in topics {
        let at = page
            .find(&format!("id=\"topic-{topic}\""))
            .unwrap_or_else(|| panic!("no {topic} section: {page}"));
        assert!(at > last, "{topic} is out of order");
        last = at;
    }
    // Each key sits in its topic.
    let section = |page: &str, topic: &str| {
        let start = page.find(&format!("id=\"topic-{topic}\"")).unwrap();
        let end = page[start..].find("</section>").unwrap() + start;
        page[start..end].to_string()
    };
    assert!(section(&page, "updates").contains("id=\"setting-UpdateFeed\""));
    assert!(section(&page, "webhooks").contains("id=\"setting-WebhookURL\""));
    assert!(section(&page, "cluster").contains("id=\"setting-RedisURL\""));
    assert!(!section(&page, "network").contains("id=\"setting-RedisURL\""));

    // The filter (without JavaScript: the server filters).
    let filtered = html(&browser.get("/settings?q=redis").await);
    assert!(filtered.contains("id=\"setting-RedisURL\""), "{filtered}");
    assert!(!filtered.contains("id=\"setting-AdminPort\""), "{filtered}");
    assert!(!filtered.contains("id=\"topic-network\""), "{filtered}");
    assert!(filtered.contains("settings shown."), "{filtered}");
    let none = html(&browser.get("/settings?q=no-such-setting-anywhere").await);
    assert!(none.contains("No setting matches."), "{none}");

    // Only the changed ones: the test's command line, and one set here.
    let saved = browser
        .submit(
            "/settings",
            "/settings",
            &[("key", "MaxMessagesPerChannel"), ("value", "77")],
        )
        .await;
    assert_eq!(saved.status, 303);
    let changed = html(&browser.get("/settings?changed=1").await);
    assert!(
        changed.contains("id=\"setting-MaxMessagesPerChannel\""),
        "{changed}"
    );
    assert!(
        changed.contains("id=\"setting-ControllerPort\""),
        "{changed}"
    );
    assert!(!changed.contains("id=\"setting-WebhookURL\""), "{changed}");
    assert!(
        !changed.contains("id=\"setting-HeaderTemplate\""),
        "{changed}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_update_card_says_which_feed_applies() {
    let (server, mut browser) = signed_in_with(&[]).await;
    let dashboard = html(&browser.get("/").await);
    assert!(
        dashboard.contains("Updating is off: this build carries no release feed"),
        "{dashboard}"
    );
    server.stop().await;

    let feed = "https://updates.example.com/meteord/manifest.json";
    let (server, mut browser) = signed_in_with(&[("UpdateFeed", feed)]).await;
    let dashboard = html(&browser.get("/").await);
    assert!(
        dashboard.contains(&format!("<code>{feed}</code>")),
        "{dashboard}"
    );
    assert!(dashboard.contains("Set by UpdateFeed"), "{dashboard}");
    // No update was installed by this program: nothing to roll back to.
    assert!(!dashboard.contains("/update/rollback"), "{dashboard}");
    server.stop().await;
}
