//! The dashboard: what the server is doing right now.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;

use super::certificate::{tls_card, TlsCard};
use super::live::{self, Sample};
use super::security::Viewer;
use super::view::{self, Layout};
use super::Admin;
use crate::config::Persistence;
use crate::hub::Transport;
use crate::node::getting_started::{host_of, FirstSteps, DEMO_CHANNEL};
use crate::node::stats::stats_json;

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    version: String,
    uptime: String,
    channels: usize,
    subscribers: usize,
    transports: Vec<(String, usize)>,
    messages_per_s: String,
    delivered_per_s: String,
    bytes_out_per_s: String,
    bytes_in_per_s: String,
    total_messages: u64,
    /// "off", "snapshot", "durable", or "unavailable".
    persistence_mode: String,
    /// Seconds since the epoch of the last successful write.
    last_write: Option<u64>,
    last_error: Option<String>,
    persistence_note: &'static str,
    /// What, where, and a note.
    listeners: Vec<(&'static str, String, &'static str)>,
    paused: bool,
    /// The folder of the log files, if they are written.
    log_directory: Option<String>,
    log_files: String,
    update: UpdateView,
    /// The nodes sharing the redis engine (none with the memory engine).
    cluster: Option<ClusterCard>,
    /// Until the first message is published: how to publish one.
    first_steps: Option<FirstSteps>,
    demo_channel: &'static str,
    /// The certificate, with TLS on.
    tls: Option<TlsCard>,
}

/// The dashboard's update card.
struct UpdateView {
    /// Empty when updating is off.
    feed: String,
    /// Where the feed comes from, or why there is none.
    origin: String,
    /// The version kept by the last update, to roll back to.
    previous: Option<String>,
    channel: String,
    auto: String,
    last_check: Option<u64>,
    available: Option<String>,
    last_error: Option<String>,
    installing: bool,
}

struct ClusterCard {
    node: String,
    /// Live subscribers and channels of every node that is up.
    subscribers: usize,
    channels: usize,
    url: String,
    connected: bool,
    /// Seconds since the epoch of the last change of the link.
    since: Option<u64>,
    last_error: Option<String>,
    ttl: u64,
    nodes: Vec<NodeRow>,
}

struct NodeRow {
    name: String,
    is_self: bool,
    up: bool,
    /// How long ago it was last heard from.
    seen: String,
    subscribers: String,
    uptime: String,
    address: String,
    next_id: String,
}

fn cluster_card(cluster: &crate::cluster::Cluster) -> ClusterCard {
    let link = cluster.link();
    let view = cluster.view();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let nodes = view
        .nodes
        .iter()
        .map(|n| {
            let info = n.info.as_ref().filter(|_| n.up);
            let or_dash = |v: Option<String>| v.unwrap_or_else(|| "—".into());
            NodeRow {
                name: n.name.clone(),
                is_self: n.is_self,
                up: n.up,
                seen: format!(
                    "{} ago",
                    view::duration(now_ms.saturating_sub(n.last_seen_ms) / 1000)
                ),
                subscribers: or_dash(info.map(|i| i.subscribers.to_string())),
                uptime: or_dash(info.map(|i| view::duration(i.uptime))),
                address: or_dash(info.map(|i| i.subscriber.clone())),
                next_id: or_dash(info.map(|i| i.next_id.to_string())),
            }
        })
        .collect();
    ClusterCard {
        node: cluster.node.clone(),
        subscribers: view
            .nodes
            .iter()
            .filter(|n| n.up)
            .filter_map(|n| n.info.as_ref())
            .map(|i| i.subscribers)
            .sum(),
        channels: cluster.list_channels().len(),
        url: cluster.url.clone(),
        connected: link.connected,
        since: link
            .since
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs()),
        last_error: link.last_error,
        ttl: crate::cluster::NODE_TTL.as_secs(),
        nodes,
    }
}

impl DashboardPage {
    pub fn utc(&self, ts: impl view::UnixTime) -> String {
        view::utc(ts.unix())
    }
}

pub async fn page(State(admin): State<Arc<Admin>>, viewer: Viewer, headers: HeaderMap) -> Response {
    let node = &admin.node;
    let first_steps = node.never_published().then(|| {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        node.first_steps(host.and_then(host_of))
    });
    let stats = stats_json(node);
    let by_transport = node.hub.subscribers_by_transport();
    let latest = admin
        .live
        .latest()
        .map_or_else(Sample::default, |s| (*s).clone());
    let config = node.config.load();
    let persisted = live::persistence(node);
    let (persistence_mode, persistence_note) = match (&persisted, config.persistence) {
        (Some(p), _) => (p.mode.clone(), ""),
        (None, _) if node.cluster().is_some() => (
            "redis".to_string(),
            "Channel caches and message ids live in Redis (see Cluster below); the database keeps accounts and settings.",
        ),
        (None, Persistence::Off) => (
            "off".to_string(),
            "Channel caches live in memory only; a restart empties them.",
        ),
        (None, _) => (
            "unavailable".to_string(),
            "Persistence is configured but could not start (the database could not be opened or read): \
             channel caches live in memory only for this run. The log says why.",
        ),
    };
    let addr = |what: &'static str, ip: std::net::IpAddr, port: u16| {
        if port == 0 {
            (what, ip.to_string(), "port chosen at start (see the log)")
        } else {
            (what, std::net::SocketAddr::new(ip, port).to_string(), "")
        }
    };
    let tls = admin.node.tls.as_ref();
    // The control and subscriber ports as bound (ports chosen at start
    // included).
    let bound = node.addresses;
    let mut listeners = vec![(
        if tls.is_some() {
            "Subscribers (HTTPS)"
        } else {
            "Subscribers (HTTP)"
        },
        bound.subscriber.to_string(),
        "",
    )];
    if tls.is_some() && config.plain_subscriber_port > 0 {
        listeners.push(addr(
            "Subscribers (plain HTTP)",
            config.subscriber_ip,
            config.plain_subscriber_port,
        ));
    }
    listeners.push((
        if config.controller_tls {
            "Publishers (control, TLS)"
        } else {
            "Publishers (control)"
        },
        bound.control.to_string(),
        "",
    ));
    if config.udp_port > 0 {
        listeners.push(addr("Publishers (UDP)", config.udp_ip, config.udp_port));
    }
    listeners.push(match admin.local_addr {
        Some(bound) => ("Admin UI", bound.to_string(), ""),
        None => addr("Admin UI", config.admin_ip, config.admin_port),
    });
    let updates = node.updates.status();
    let feed = crate::update::feed::resolve(&config);
    let update = UpdateView {
        feed: feed.url.clone().unwrap_or_default(),
        origin: {
            let text = feed.explain();
            let mut chars = text.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        },
        previous: crate::update::kept_previous(),
        channel: format!("{:?}", config.update_channel).to_lowercase(),
        auto: format!("{:?}", config.auto_update).to_lowercase(),
        last_check: updates
            .last_check
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs()),
        available: updates.available.map(|a| a.version),
        last_error: updates.last_error,
        installing: updates.installing,
    };
    let format = format!("{:?}", config.log_format).to_lowercase();
    let log_files = match config.log_retention {
        0 => format!("one file a day ({format}), all kept"),
        n => format!("one file a day ({format}), the newest {n} kept"),
    };
    let page = DashboardPage {
        layout: viewer.layout("Dashboard", "dashboard"),
        version: stats["version"].as_str().unwrap_or_default().to_string(),
        uptime: view::duration(stats["uptime"].as_u64().unwrap_or_default()),
        // This node's, as the live figures next to it (the cluster's are
        // in the Cluster card).
        channels: node.hub.channel_count(),
        subscribers: by_transport.values().sum(),
        transports: Transport::ALL
            .iter()
            .map(|t| (t.to_string(), by_transport.get(t).copied().unwrap_or(0)))
            .collect(),
        messages_per_s: view::rate(latest.messages_per_s),
        delivered_per_s: view::rate(latest.delivered_per_s),
        bytes_out_per_s: format!("{}/s", view::bytes(latest.bytes_out_per_s)),
        bytes_in_per_s: format!("{}/s", view::bytes(latest.bytes_in_per_s)),
        total_messages: stats["counters"]["unique_messages"]
            .as_u64()
            .unwrap_or_default(),
        persistence_mode,
        last_write: persisted.as_ref().and_then(|p| p.last_write),
        last_error: persisted.and_then(|p| p.last_error),
        persistence_note,
        listeners,
        paused: node.publishing_paused(),
        log_directory: crate::logging::directory().map(|d| d.display().to_string()),
        log_files,
        update,
        cluster: node.cluster().map(|c| cluster_card(c)),
        first_steps,
        demo_channel: DEMO_CHANNEL,
        tls: tls.map(|tls| tls_card(tls, &config)),
    };
    viewer.page(StatusCode::OK, &page)
}
