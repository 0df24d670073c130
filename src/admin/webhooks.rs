//! The Webhooks page (`/webhooks`): where events go, recent deliveries
//! with their outcome, dead letters with a retry button, and a test event.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use tracing::info;

use super::security::{Action, Viewer};
use super::view::{self, Flash, Layout};
use super::{blocking, Admin};
use crate::node::webhooks::now_ms;
use crate::store::webhooks::{Counts, Delivery};

/// Deliveries listed.
const SHOWN: usize = 100;

struct DeliveryRow {
    row: i64,
    event_id: String,
    event: String,
    channel: String,
    url: String,
    state: &'static str,
    attempts: u32,
    last_result: String,
    /// Seconds since the epoch.
    created: u64,
    /// When a pending one is tried next (seconds since the epoch).
    next_try: Option<u64>,
}

impl From<Delivery> for DeliveryRow {
    fn from(d: Delivery) -> DeliveryRow {
        let pending = d.state == crate::store::webhooks::DeliveryState::Pending;
        DeliveryRow {
            row: d.row,
            event_id: d.event_id,
            event: d.event,
            channel: d.channel,
            url: d.url,
            state: d.state.name(),
            attempts: d.attempts,
            last_result: d.last_result.unwrap_or_default(),
            created: d.created / 1000,
            next_try: pending.then_some(d.next_try / 1000),
        }
    }
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    layout: Layout,
    urls: Vec<String>,
    events: Vec<&'static str>,
    signed: bool,
    retry_seconds: u64,
    counts: Counts,
    dropped: u64,
    available: bool,
    deliveries: Vec<DeliveryRow>,
}

impl WebhooksPage {
    fn utc(&self, ts: impl view::UnixTime) -> String {
        view::utc(ts.unix())
    }
}

pub async fn page(State(admin): State<Arc<Admin>>, viewer: Viewer) -> Response {
    let node = &admin.node;
    let config = node.config.load();
    let (counts, deliveries) = match node.webhooks.queue.clone() {
        Some(queue) => {
            match blocking(move || {
                Ok::<_, crate::store::StoreError>((queue.counts()?, queue.recent(None, SHOWN)?))
            })
            .await
            {
                Ok(found) => found,
                Err(response) => return response,
            }
        }
        None => (Counts::default(), Vec::new()),
    };
    let page = WebhooksPage {
        layout: viewer.layout("Webhooks", "webhooks"),
        urls: config.webhook_urls.clone(),
        events: config.webhook_events.iter().map(|e| e.name()).collect(),
        signed: !config.webhook_secret.is_empty(),
        retry_seconds: config.webhook_retry.as_secs(),
        counts,
        dropped: node.webhooks.dropped(),
        available: node.webhooks.queue.is_some(),
        deliveries: deliveries.into_iter().map(DeliveryRow::from).collect(),
    };
    viewer.page(StatusCode::OK, &page)
}

/// `POST /webhooks/retry` with `row`: try a dead letter again.
pub async fn retry(State(admin): State<Arc<Admin>>, Action { viewer, form }: Action) -> Response {
    let Some(queue) = admin.node.webhooks.queue.clone() else {
        return viewer.redirect("/webhooks", Flash::error("Webhooks need the database."));
    };
    let Ok(row) = form.text("row").parse::<i64>() else {
        return viewer.redirect("/webhooks", Flash::error("No such delivery."));
    };
    match blocking(move || queue.retry(row, now_ms())).await {
        Err(response) => response,
        Ok(false) => viewer.redirect(
            "/webhooks",
            Flash::error("That delivery is not a dead letter."),
        ),
        Ok(true) => {
            info!(user = %viewer.session.user, row, "admin UI: webhook delivery retried");
            admin.node.webhooks.wake();
            viewer.redirect(
                "/webhooks",
                Flash::ok("The delivery will be tried again now."),
            )
        }
    }
}

/// `POST /webhooks/test`: send a `test` event to every URL.
pub async fn test(State(admin): State<Arc<Admin>>, Action { viewer, .. }: Action) -> Response {
    let flash = if admin.node.send_test_webhook() {
        info!(user = %viewer.session.user, "admin UI: test webhook");
        Flash::ok("A test event is on its way; its delivery shows below in a moment.")
    } else {
        Flash::error("There is no WebhookURL to send to: set one in Server settings.")
    };
    viewer.redirect("/webhooks", flash)
}
