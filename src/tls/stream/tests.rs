//! The TLS stream against a real rustls client over loopback: the move
//! to our own record layer, key updates, bad records, close_notify.

use super::*;
use rustls::pki_types::{PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Client = tokio_rustls::client::TlsStream<TcpStream>;

/// A server stream after its handshake (and the move to our record
/// layer where it applies) and a rustls client talking to it, over
/// loopback.
async fn pair(version: &'static rustls::SupportedProtocolVersion) -> (TlsStream, Client) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    server.enable_secret_extraction = true;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    tokio::join!(
        async {
            let (tcp, _) = listener.accept().await.unwrap();
            let stream = TlsStream::accept(tcp, Arc::new(server)).await.unwrap();
            stream.take_over_records().unwrap()
        },
        async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            connector.connect(name, tcp).await.unwrap()
        }
    )
}

fn records(stream: &mut TlsStream) -> &mut Records {
    match &mut stream.session {
        Session::Records(records) => records,
        Session::Rustls(_) => panic!("TLS 1.3 stayed with rustls"),
    }
}

async fn read_exactly(reader: &mut (impl AsyncRead + Unpin), len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    reader.read_exact(&mut bytes).await.unwrap();
    bytes
}

async fn send(server: &mut TlsStream, bytes: &[u8]) {
    server.write_all(bytes).await.unwrap();
    server.flush().await.unwrap();
}

#[tokio::test]
async fn tls13_moves_to_our_records_and_carries_both_ways() {
    let (mut server, mut client) = pair(&rustls::version::TLS13).await;
    records(&mut server);
    client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    client.flush().await.unwrap();
    assert_eq!(
        read_exactly(&mut server, 18).await,
        b"GET / HTTP/1.1\r\n\r\n"
    );
    // Several records' worth, and an empty write.
    let big: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    send(&mut server, &big).await;
    send(&mut server, b"").await;
    send(&mut server, b"end").await;
    assert_eq!(
        read_exactly(&mut client, big.len() + 3).await[..big.len()],
        big[..]
    );
    // Our close_notify: the client sees a clean end, not a truncation.
    server.shutdown().await.unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

/// Hand `bytes` over as a subscriber's writer does, then wait until it
/// has all gone out.
async fn send_owned(server: &mut TlsStream, bytes: &[u8]) {
    let mut owned = bytes.to_vec();
    if !server.write_now_owned(&mut owned).unwrap() {
        server.send_queued().await.unwrap();
    }
}

#[tokio::test]
async fn a_buffer_handed_over_is_sealed_where_it_lies_when_it_fits_one_record() {
    let (mut server, mut client) = pair(&rustls::version::TLS13).await;
    // One record's worth, sealed in place: the buffer holds ciphertext
    // afterwards (and one byte more: the content type).
    let small = b"one record".to_vec();
    let mut owned = small.clone();
    let before = records(&mut server).sent_with_this_key();
    assert!(server.write_now_owned(&mut owned).unwrap());
    assert_eq!(owned.len(), small.len() + 1);
    assert_ne!(owned[..small.len()], small[..]);
    assert_eq!(records(&mut server).sent_with_this_key(), before + 1);
    // Larger than a record: the usual way, in several records.
    let big: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    send_owned(&mut server, &big).await;
    // Exactly a record's worth, and nothing at all.
    let full = vec![b'x'; MAX_PLAINTEXT];
    send_owned(&mut server, &full).await;
    send_owned(&mut server, b"").await;
    send_owned(&mut server, b"end").await;
    let expected = [&small[..], &big, &full, b"end"].concat();
    assert_eq!(read_exactly(&mut client, expected.len()).await, expected);
}

#[tokio::test]
async fn buffers_handed_over_to_a_full_socket_wait_their_turn_in_the_queue() {
    let (mut server, mut client) = pair(&rustls::version::TLS13).await;
    // The client reads nothing until the socket has refused some: one
    // record went out in part or not at all, and what followed queued
    // behind it.
    let mut expected = Vec::new();
    let mut queued = false;
    for i in 0..2_000u32 {
        let chunk: Vec<u8> = (0..10_000u32).map(|j| ((i + j) % 251) as u8).collect();
        expected.extend_from_slice(&chunk);
        let mut owned = chunk;
        if !server.write_now_owned(&mut owned).unwrap() {
            queued = true;
            if server.queued() > 256 * 1024 {
                break;
            }
        }
    }
    assert!(queued, "the socket never filled");
    let (received, ()) = tokio::join!(read_exactly(&mut client, expected.len()), async {
        server.send_queued().await.unwrap()
    });
    assert!(received == expected, "bytes lost or out of order");
}

#[tokio::test]
async fn a_buffer_handed_over_when_the_key_is_due_goes_after_the_key_update() {
    let (mut server, mut client) = pair(&rustls::version::TLS13).await;
    // Counted from what the handshake already sent (session tickets).
    let layer = records(&mut server);
    layer.rotate_after(layer.sent_with_this_key() + 2);
    for text in [&b"first"[..], b"second", b"third", b"fourth"] {
        send_owned(&mut server, text).await;
    }
    // The third record went under a new key, announced before it.
    assert_eq!(records(&mut server).sent_with_this_key(), 2);
    assert_eq!(
        read_exactly(&mut client, 22).await,
        b"firstsecondthirdfourth"
    );
}

#[tokio::test]
async fn tls12_stays_with_rustls() {
    let (mut server, mut client) = pair(&rustls::version::TLS12).await;
    assert!(matches!(server.session, Session::Rustls(_)));
    client.write_all(b"ping").await.unwrap();
    client.flush().await.unwrap();
    assert_eq!(read_exactly(&mut server, 4).await, b"ping");
    send(&mut server, b"pong").await;
    send_owned(&mut server, b"pang").await;
    assert_eq!(read_exactly(&mut client, 8).await, b"pongpang");
}

#[tokio::test]
async fn our_key_is_replaced_at_its_limit_and_at_the_next_the_connection_ends_cleanly() {
    let (mut server, mut client) = pair(&rustls::version::TLS13).await;
    records(&mut server).rotate_after(3);
    let mut sent = Vec::new();
    for i in 0..20u8 {
        let byte = b'a' + i;
        if server.write_all(&[byte]).await.is_err() || server.flush().await.is_err() {
            break;
        }
        sent.push(byte);
    }
    // Four records or more cannot go under one key that is replaced
    // every three; a third key is not to be had.
    assert!((4..20).contains(&sent.len()), "{} sent", sent.len());
    let mut received = Vec::new();
    client.read_to_end(&mut received).await.unwrap();
    assert_eq!(received, sent);
}

#[tokio::test]
async fn a_key_update_from_the_peer_is_followed_and_answered() {
    let (mut server, mut client) = pair(&rustls::version::TLS13).await;
    for _ in 0..5 {
        send(&mut server, b"x").await;
    }
    assert_eq!(read_exactly(&mut client, 5).await, b"xxxxx");
    assert!(records(&mut server).sent_with_this_key() >= 5);
    // The client asks for new keys in both directions.
    client.get_mut().1.refresh_traffic_keys().unwrap();
    client.write_all(b"after").await.unwrap();
    client.flush().await.unwrap();
    assert_eq!(read_exactly(&mut server, 5).await, b"after");
    send(&mut server, b"reply").await;
    assert_eq!(read_exactly(&mut client, 5).await, b"reply");
    // The answer went out before "reply", which used the new key.
    assert_eq!(records(&mut server).sent_with_this_key(), 1);
    // The client's close_notify, under its new key, ends our side.
    client.shutdown().await.unwrap();
    let mut rest = Vec::new();
    server.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn a_second_key_update_from_the_peer_ends_the_connection_cleanly() {
    let (mut server, mut client) = pair(&rustls::version::TLS13).await;
    for round in 0..2 {
        client.get_mut().1.refresh_traffic_keys().unwrap();
        client.write_all(b"data").await.unwrap();
        client.flush().await.unwrap();
        if round == 0 {
            assert_eq!(read_exactly(&mut server, 4).await, b"data");
        }
    }
    let mut byte = [0u8; 1];
    let error = server.read(&mut byte).await.unwrap_err();
    assert!(error.to_string().contains("out of key updates"), "{error}");
    // The client is told goodbye, not sent an error.
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

/// Send `raw` bytes past the client's TLS layer: the server's read must
/// fail with `server_error`, and the client must hear the alert
/// `client_hears`.
async fn raw_bytes_are_refused(raw: &[u8], server_error: &str, client_hears: &str) {
    let (mut server, mut client) = pair(&rustls::version::TLS13).await;
    client.get_mut().0.write_all(raw).await.unwrap();
    let mut byte = [0u8; 1];
    let error = server.read(&mut byte).await.unwrap_err();
    assert!(error.to_string().contains(server_error), "{error}");
    let error = client.read(&mut byte).await.unwrap_err();
    assert!(error.to_string().contains(client_hears), "{error}");
}

#[tokio::test]
async fn a_forged_record_ends_the_connection_and_the_peer_is_told_why() {
    // Application data under no key the server knows.
    let mut forged = vec![23, 3, 3, 0, 40];
    forged.extend_from_slice(&[7; 40]);
    raw_bytes_are_refused(&forged, "decryption failed", "BadRecordMac").await;
}

#[tokio::test]
async fn records_over_the_size_limit_are_refused() {
    raw_bytes_are_refused(&[23, 3, 3, 0xff, 0xff], "record too long", "RecordOverflow").await;
}
