//! Static files on the subscriber port: meteord's header bytes, path rules,
//! document root and built-in files, pipelining.

mod common;

use common::{get, http_raw, TestServer};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn head(status: &str, content_type: &str, length: usize) -> String {
    // Scripts also carry a CORS header (ES modules from other sites need it).
    let cors = if content_type == "text/javascript" {
        "Access-Control-Allow-Origin: *\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 {status}\r\nServer: meteord\r\nContent-Type: {content_type}; charset=utf-8\r\nPragma: no-cache\r\nCache-Control: no-cache, no-store, must-revalidate\r\nExpires: Thu, 1 Jan 1970 00:00:00 GMT\r\n{cors}Content-length: {length}\r\n\r\n"
    )
}

const NOT_FOUND: &str = "HTTP/1.1 404 Not Found\r\nServer: meteord\r\nContent-Type: text/html; charset=utf-8\r\nPragma: no-cache\r\nCache-Control: no-cache, no-store, must-revalidate\r\nExpires: Thu, 1 Jan 1970 00:00:00 GMT\r\nContent-length: 0\r\n\r\n";

fn docroot() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("meteor.js"), "var fromDisk = 1;\n").unwrap();
    std::fs::write(dir.path().join("index.html"), "<p>root index</p>").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/index.html"), "<p>sub index</p>").unwrap();
    std::fs::write(dir.path().join("sub/data.txt"), "plain").unwrap();
    dir
}

#[tokio::test]
async fn builtin_client_files_when_no_document_root_exists() {
    let server = TestServer::start(&[("SubscriberDocumentRoot", "/nonexistent/meteor")]).await;
    let body = get(server.subscriber, "/meteor.js").await;
    let js = meteord::assets::get("meteor.js").unwrap();
    assert_eq!(
        body,
        [head("200 OK", "text/javascript", js.len()).as_bytes(), &js].concat()
    );
    for path in ["/crossdomain.xml", "/", "/index.html"] {
        let body = text(&get(server.subscriber, path).await);
        assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{path}: {body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn files_from_the_document_root_with_legacy_headers() {
    let dir = docroot();
    let root = dir.path().to_str().unwrap();
    let server = TestServer::start(&[("SubscriberDocumentRoot", root)]).await;
    assert_eq!(
        text(&get(server.subscriber, "/meteor.js?v=3").await),
        format!(
            "{}var fromDisk = 1;\n",
            head("200 OK", "text/javascript", 18)
        )
    );
    // HTML documents may be framed by legacy pages that set document.domain.
    let index = text(&get(server.subscriber, "/").await);
    assert_eq!(
        index,
        format!(
            "{}<p>root index</p>",
            head("200 OK", "text/html", 17).replace(
                "Content-length",
                "Origin-Agent-Cluster: ?0\r\nContent-length"
            )
        )
    );
    assert!(text(&get(server.subscriber, "/sub/").await).ends_with("<p>sub index</p>"));
    assert!(text(&get(server.subscriber, "/sub").await).ends_with("<p>sub index</p>"));
    // Everything that is not .js is text/html, as in meteord.
    assert!(text(&get(server.subscriber, "/sub/data.txt").await)
        .contains("Content-Type: text/html; charset=utf-8"));
    assert_eq!(
        text(&get(server.subscriber, "/missing.js").await),
        NOT_FOUND
    );
    server.stop().await;
}

#[tokio::test]
async fn traversal_and_illegal_paths_serve_nothing() {
    let dir = docroot();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        dir.path().join("link.txt"),
    )
    .unwrap();
    let root = dir.path().join("sub");
    let server = TestServer::start(&[("SubscriberDocumentRoot", root.to_str().unwrap())]).await;
    for path in [
        "/../meteor.js",
        "/..",
        "/%2e%2e/meteor.js",
        "/..%2fmeteor.js",
        "/sub/..\\meteor.js",
        "/.../x",
        "//etc/passwd",
        "/etc/passwd",
        "/data.txt%00",
        "/../link.txt",
    ] {
        assert_eq!(
            text(&get(server.subscriber, path).await),
            NOT_FOUND,
            "{path}"
        );
    }
    server.stop().await;

    // A symbolic link that leads out of the root is not followed.
    let server =
        TestServer::start(&[("SubscriberDocumentRoot", dir.path().to_str().unwrap())]).await;
    assert_eq!(text(&get(server.subscriber, "/link.txt").await), NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn pipelined_static_requests_are_all_answered() {
    let dir = docroot();
    let server =
        TestServer::start(&[("SubscriberDocumentRoot", dir.path().to_str().unwrap())]).await;
    let body = text(
        &http_raw(
            server.subscriber,
            b"GET /meteor.js HTTP/1.1\r\nHost: a\r\n\r\nGET /missing HTTP/1.1\r\nHost: a\r\n\r\nGET /sub/data.txt HTTP/1.1\r\n\r\n",
        )
        .await,
    );
    assert_eq!(body.matches("HTTP/1.1 ").count(), 3, "{body}");
    assert!(body.ends_with("plain"));
    server.stop().await;
}

#[tokio::test]
async fn oversized_and_malformed_requests_are_refused() {
    let server = TestServer::start(&[]).await;
    let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(20_000));
    assert!(text(&http_raw(server.subscriber, long.as_bytes()).await).starts_with("HTTP/1.1 414 "));
    let mut big_head = b"GET /meteor.js HTTP/1.1\r\n".to_vec();
    for i in 0..5000 {
        big_head.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "y".repeat(10)).as_bytes());
    }
    big_head.extend_from_slice(b"\r\n");
    assert!(text(&http_raw(server.subscriber, &big_head).await).starts_with("HTTP/1.1 431 "));
    assert!(
        text(&http_raw(server.subscriber, b"\x16\x03\x01garbage\r\n\r\n").await)
            .starts_with("HTTP/1.1 400 ")
    );
    // The server still serves normal requests.
    assert!(text(&get(server.subscriber, "/meteor.js").await).starts_with("HTTP/1.1 200 OK"));
    server.stop().await;
}

#[tokio::test]
async fn other_methods_and_new_endpoints_go_to_the_http_router() {
    let server = TestServer::start(&[]).await;
    let body = text(
        &http_raw(
            server.subscriber,
            b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
        .await,
    );
    assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
    assert!(body.ends_with("ok\n"));
    let body = text(&http_raw(server.subscriber, b"POST /meteor.js HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await);
    assert!(body.starts_with("HTTP/1.1 404 Not Found\r\n"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn subscriber_connections_over_the_cap_get_503() {
    let server = TestServer::start(&[("MaxSubscriberConnections", "1")]).await;
    let mut held = common::Stream::open(server.subscriber, "/push/h/xhrinteractive/cap").await;
    held.until(b"ch(\"cap\", 0)").await;
    let body = text(&get(server.subscriber, "/meteor.js").await);
    assert!(
        body.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{body}"
    );
    drop(held);
    // The slot frees up once the server has seen the close.
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let body = text(&get(server.subscriber, "/meteor.js").await);
        if body.starts_with("HTTP/1.1 200 OK\r\n") {
            break;
        }
        assert!(body.starts_with("HTTP/1.1 503 "), "{body}");
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn shutdown_does_not_wait_for_idle_connections() {
    let server = TestServer::start(&[]).await;
    // A client that connected and never sent its request, and one half-way.
    let _idle = tokio::net::TcpStream::connect(server.subscriber)
        .await
        .unwrap();
    let mut partial = tokio::net::TcpStream::connect(server.subscriber)
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut partial, b"GET /meteor.js HTTP/1.1\r\nHost:")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    server.stop().await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
