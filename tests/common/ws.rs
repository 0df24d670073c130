//! A WebSocket client speaking the server's JSON protocol.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message as Frame;

use super::WAIT;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Ws(pub Socket);

/// Open `/ws` with this query string (`""` or `"?token=…"`).
pub async fn ws_connect(addr: SocketAddr, query: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws{query}"))
        .await
        .unwrap();
    Ws(ws)
}

impl Ws {
    pub async fn send(&mut self, value: Value) {
        self.0
            .send(Frame::Text(value.to_string().into()))
            .await
            .unwrap();
    }

    /// The next JSON frame that is not a ping.
    pub async fn next(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(WAIT, self.0.next())
                .await
                .expect("a frame")
                .expect("the connection is open")
                .unwrap();
            if let Frame::Text(text) = frame {
                let value: Value = serde_json::from_str(text.as_str()).unwrap();
                if value["type"] != "ping" {
                    return value;
                }
            }
        }
    }

    /// The next frame of this type, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let value = self.next().await;
            if value["type"] == kind {
                return value;
            }
        }
    }
}
