//! `GET /metrics`: the counters in Prometheus' text format.
//!
//! The `Metrics` setting decides who may read it: `off`, `local` (the
//! default: clients on the same machine, or anyone with an API token) or
//! `public`.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::config::MetricsAccess;
use crate::hub::Stat;
use crate::node::web::{bearer, error, from_this_machine, token_rights, PeerAddr};
use crate::node::Node;
use crate::store::accounts::Scope;

pub async fn handler(
    State(node): State<Arc<Node>>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
) -> Response {
    let (access, local) = {
        let config = node.config.load();
        // Local: on this machine, and not relayed by a proxy that could be
        // relaying anyone (see TrustedProxies).
        let proxies = &config.trusted_proxies;
        let local = peer.is_some_and(|p| from_this_machine(p.ip(), &headers, proxies));
        (config.metrics, local)
    };
    let allowed = match access {
        MetricsAccess::Off => return error(StatusCode::NOT_FOUND, "metrics are off"),
        MetricsAccess::Public => true,
        MetricsAccess::Local if local => true,
        MetricsAccess::Local => match bearer(&headers) {
            Some(token) => match token_rights(&node, token).await {
                Ok(rights) => rights.is_some_and(|r| r.may(Scope::Manage)),
                Err(response) => return response,
            },
            None => false,
        },
    };
    if !allowed {
        return error(
            StatusCode::UNAUTHORIZED,
            "metrics need an API token from other machines",
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&node),
    )
        .into_response()
}

fn render(node: &Node) -> String {
    let hub = &node.hub;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP meteord_{name} {help}");
        let _ = writeln!(out, "# TYPE meteord_{name} {kind}");
        let _ = writeln!(out, "meteord_{name} {value}");
    };
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        hub.uptime(),
    );
    metric(
        "channels",
        "gauge",
        "Channels that exist now.",
        hub.channel_count() as u64,
    );
    for stat in Stat::ALL {
        let (kind, help) = match stat {
            Stat::CurrentControllers => ("gauge", "Publisher connections open now."),
            Stat::CurrentSubscribers => ("gauge", "Subscriber-port connections open now."),
            _ => ("counter", "meteord 1.06 SHOWSTATS counter."),
        };
        let name = match kind {
            "counter" => format!("{}_total", stat.name()),
            _ => stat.name().to_string(),
        };
        metric(&name, kind, help, hub.stats.get(stat));
    }
    let _ = writeln!(
        out,
        "# HELP meteord_subscribers Live subscriptions by transport."
    );
    let _ = writeln!(out, "# TYPE meteord_subscribers gauge");
    for (transport, count) in hub.subscribers_by_transport() {
        let _ = writeln!(
            out,
            "meteord_subscribers{{transport=\"{transport}\"}} {count}"
        );
    }
    out
}
