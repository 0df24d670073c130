//! An application's webhook endpoint for tests: a real HTTP server on a
//! loopback port that records every delivery, can refuse some with `503`,
//! and can be taken down (port closed) and brought back on the same port.
//! It checks signatures with its own HMAC-SHA256 code, as an application
//! in any language would.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::WAIT;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub signature: Option<String>,
    pub delivery_id: Option<String>,
    pub body: Vec<u8>,
    pub json: Value,
    /// Whether it was answered 2xx.
    pub accepted: bool,
}

#[derive(Default)]
struct Shared {
    got: Mutex<Vec<Delivery>>,
    /// Requests still to refuse with 503.
    refuse: AtomicUsize,
}

pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
}

async fn record(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let refuse = shared
        .refuse
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    shared.got.lock().unwrap().push(Delivery {
        signature: header("x-meteord-signature"),
        delivery_id: header("x-meteord-delivery"),
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        body: body.to_vec(),
        accepted: !refuse,
    });
    if refuse {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::NO_CONTENT
    }
}

impl Receiver {
    /// A receiver on a new loopback port.
    pub async fn start() -> Receiver {
        Receiver::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// A receiver on this address (the port of one taken down).
    pub async fn start_on(addr: SocketAddr) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let app = axum::Router::new()
            .fallback(record)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            addr,
            shared,
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks/meteord", self.addr)
    }

    /// Answer the next `n` requests with 503.
    pub fn refuse_next(&self, n: usize) {
        self.shared.refuse.store(n, Ordering::SeqCst);
    }

    /// Close the port: deliveries find nobody there.
    pub fn take_down(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.got.lock().unwrap().clone()
    }

    /// The accepted deliveries, each event once (repeats dropped by id,
    /// as the application is told to).
    pub fn accepted_events(&self) -> Vec<Value> {
        let mut seen = std::collections::HashSet::new();
        self.deliveries()
            .into_iter()
            .filter(|d| d.accepted)
            .filter(|d| seen.insert(d.json["id"].as_str().unwrap_or_default().to_string()))
            .map(|d| d.json)
            .collect()
    }

    /// Wait until `done` holds for the accepted events.
    pub async fn wait_until(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + WAIT * 2;
        loop {
            let events = self.accepted_events();
            if done(&events) {
                return events;
            }
            assert!(
                Instant::now() < deadline,
                "never got {what}; got {:#?}",
                events
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.take_down();
    }
}

/// HMAC-SHA256 (RFC 2104) written out, as a receiver would: hex.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

/// Does the delivery carry the signature `secret` makes of its body?
pub fn signed_with(secret: &str, delivery: &Delivery) -> bool {
    let expected = format!(
        "sha256={}",
        hmac_sha256_hex(secret.as_bytes(), &delivery.body)
    );
    delivery.signature.as_deref() == Some(expected.as_str())
}
