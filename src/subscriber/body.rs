//! A streaming HTTP body fed by a subscriber's outbox, for the transports
//! served through hyper (Server-Sent Events, long-poll).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;

use crate::hub::{Hub, Next, Stat, Subscriber};

pub struct OutboxBody {
    subscriber: Arc<Subscriber>,
    hub: Arc<Hub>,
}

impl OutboxBody {
    pub fn new(subscriber: Arc<Subscriber>, hub: Arc<Hub>) -> OutboxBody {
        OutboxBody { subscriber, hub }
    }
}

impl http_body::Body for OutboxBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.subscriber.poll_next(cx) {
            Poll::Ready(Next::Write(bytes)) => {
                self.hub
                    .stats
                    .add(Stat::TotalOutboundBytes, bytes.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(Bytes::from(bytes)))))
            }
            Poll::Ready(Next::Finish) => Poll::Ready(None),
            // An error, not an end: the connection is cut, so the client
            // does not take a truncated stream for a complete one.
            Poll::Ready(Next::Abort) => {
                Poll::Ready(Some(Err(std::io::Error::other("subscriber dropped"))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for OutboxBody {
    /// The response is over (finished, or the client went away).
    fn drop(&mut self) {
        self.hub.unsubscribe(self.subscriber.id);
    }
}
