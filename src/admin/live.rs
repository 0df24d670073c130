//! The dashboard's live numbers: a sample of the server's counters every
//! second, kept for the last few minutes, and streamed to signed-in
//! dashboards over Server-Sent Events (`GET /live`).

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::watch;

use super::security::Viewer;
use super::Admin;
use crate::hub::{Stat, Transport};
use crate::node::Node;

/// Samples kept: five minutes.
pub const HISTORY: usize = 300;
const PERIOD: Duration = Duration::from_secs(1);
/// A live stream re-checks its session this often.
const SESSION_CHECK: u32 = 30;

/// One second of the server's life.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: u64,
    pub uptime: u64,
    pub channels: usize,
    /// Live subscriptions, in total and by transport.
    pub subscribers: usize,
    pub by_transport: BTreeMap<Transport, usize>,
    /// Messages published per second.
    pub messages_per_s: f64,
    /// Messages written to subscribers per second.
    pub delivered_per_s: f64,
    pub bytes_in_per_s: f64,
    pub bytes_out_per_s: f64,
    pub persistence: Option<Persistence>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Persistence {
    pub mode: String,
    /// Unix seconds.
    pub last_write: Option<u64>,
    pub last_error: Option<String>,
}

pub fn persistence(node: &Node) -> Option<Persistence> {
    node.persister.as_ref().map(|p| {
        let status = p.status();
        Persistence {
            mode: format!("{:?}", p.mode()).to_lowercase(),
            last_write: status
                .last_write
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs()),
            last_error: status.last_error,
        }
    })
}

pub struct Live {
    history: Mutex<VecDeque<Arc<Sample>>>,
    latest: watch::Sender<Arc<Sample>>,
}

impl Live {
    pub fn new() -> Live {
        Live {
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
            latest: watch::channel(Arc::new(Sample::default())).0,
        }
    }

    pub fn history(&self) -> Vec<Arc<Sample>> {
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// The newest sample, if any was taken yet.
    pub fn latest(&self) -> Option<Arc<Sample>> {
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .back()
            .cloned()
    }

    fn push(&self, sample: Sample) {
        let sample = Arc::new(sample);
        {
            let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
            if history.len() == HISTORY {
                history.pop_front();
            }
            history.push_back(sample.clone());
        }
        self.latest.send_replace(sample);
    }
}

struct Counters {
    at: Instant,
    messages: u64,
    delivered: u64,
    bytes_in: u64,
    bytes_out: u64,
}

impl Counters {
    fn read(node: &Node) -> Counters {
        let stats = &node.hub.stats;
        Counters {
            at: Instant::now(),
            messages: stats.get(Stat::UniqueMessages),
            delivered: stats.get(Stat::MessagesServed),
            bytes_in: stats.get(Stat::TotalInboundBytes),
            bytes_out: stats.get(Stat::TotalOutboundBytes),
        }
    }
}

/// Take a sample every second until shutdown. The counters are atomics;
/// what needs the hub's lock (channels, subscribers by transport) is read
/// only while a dashboard is watching, or for the first sample.
pub async fn sample(admin: Arc<Admin>) {
    let node = admin.node.clone();
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = Counters::read(&node);
    let mut counts: Option<(usize, BTreeMap<Transport, usize>)> = None;
    tick.tick().await;
    loop {
        tokio::select! {
            _ = node.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = Counters::read(&node);
        let secs = now.at.duration_since(last.at).as_secs_f64().max(0.001);
        let per_s = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
        if counts.is_none() || admin.live.latest.receiver_count() > 0 {
            counts = Some((
                node.hub.channel_count(),
                node.hub.subscribers_by_transport(),
            ));
        }
        let (channels, by_transport) = counts.clone().unwrap_or_default();
        admin.live.push(Sample {
            t: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            uptime: node.hub.uptime(),
            channels,
            subscribers: by_transport.values().sum(),
            by_transport,
            messages_per_s: per_s(now.messages, last.messages),
            delivered_per_s: per_s(now.delivered, last.delivered),
            bytes_in_per_s: per_s(now.bytes_in, last.bytes_in),
            bytes_out_per_s: per_s(now.bytes_out, last.bytes_out),
            persistence: persistence(&node),
        });
        last = now;
    }
}

struct StreamState {
    admin: Arc<Admin>,
    token: String,
    latest: watch::Receiver<Arc<Sample>>,
    history: Option<Vec<Arc<Sample>>>,
    sent: u32,
}

/// `GET /live`: first an `event: history` with the samples kept, then
/// each new sample as it is taken, until the session ends or the server
/// shuts down.
pub async fn stream(State(admin): State<Arc<Admin>>, viewer: Viewer) -> Response {
    let mut latest = admin.live.latest.subscribe();
    latest.mark_unchanged();
    let state = StreamState {
        history: Some(admin.live.history()),
        admin,
        token: viewer.token,
        latest,
        sent: 0,
    };
    let events = futures_util::stream::unfold(state, |mut state| async move {
        if let Some(history) = state.history.take() {
            let event = Event::default()
                .event("history")
                .json_data(history.iter().map(|s| &**s).collect::<Vec<&Sample>>())
                .unwrap_or_default();
            return Some((Ok::<_, Infallible>(event), state));
        }
        let shutdown = state.admin.node.shutdown.clone();
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            changed = state.latest.changed() => changed.ok()?,
        }
        state.sent += 1;
        if state.sent % SESSION_CHECK == 0 {
            let accounts = state.admin.node.accounts.clone()?;
            let token = state.token.clone();
            let alive = tokio::task::spawn_blocking(move || accounts.session(&token))
                .await
                .ok()
                .and_then(Result::ok)
                .flatten()
                .is_some();
            if !alive {
                return None;
            }
        }
        let sample = state.latest.borrow_and_update().clone();
        let event = Event::default().json_data(&*sample).unwrap_or_default();
        Some((Ok(event), state))
    });
    Sse::new(events).into_response()
}
