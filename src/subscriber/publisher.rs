//! Publishing from the browser over the WebSocket: the token's `publish`
//! claim (or an API token's `publish` scope) must cover the channel, and
//! each connection may publish `ClientPublishRate` messages a second with
//! a burst. Accepted messages go through the node's publish door like any
//! other; refusals are answers with a status, never a dropped connection.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::config::PublishRate;
use crate::names::{valid_channel_name, CHANNEL_NAME_RULE};
use crate::node::access::Denied;
use crate::node::{Node, PublishError};

/// One connection's publishing: its rate limit, made on first use (and
/// again if `ClientPublishRate` changes).
#[derive(Default)]
pub struct Publisher {
    limiter: Option<(PublishRate, DefaultDirectRateLimiter)>,
}

impl Publisher {
    /// Publish `text` on `channel` for a client holding `token`: the id, or
    /// a status and why not.
    pub async fn publish(
        &mut self,
        node: &Arc<Node>,
        channel: &str,
        text: &str,
        token: Option<&str>,
    ) -> Result<u64, (u16, String)> {
        if !valid_channel_name(channel) {
            return Err((400, CHANNEL_NAME_RULE.to_string()));
        }
        let rate = node.config.load().client_publish_rate;
        self.within_rate(rate)?;
        node.may_publish(token, channel.as_bytes())
            .await
            .map_err(|denied| {
                let status = match denied {
                    Denied::Unauthorized(_) => 401,
                    Denied::Transport(_) | Denied::Forbidden(_) => 403,
                };
                (status, denied.message().to_string())
            })?;
        node.publish(channel.as_bytes(), text.as_bytes())
            .await
            .map_err(|e| {
                let status = match e {
                    PublishError::TooLong => 413,
                    PublishError::BadChannel => 400,
                    PublishError::Paused | PublishError::Unavailable(_) => 503,
                };
                (status, e.to_string())
            })
    }

    fn within_rate(&mut self, rate: PublishRate) -> Result<(), (u16, String)> {
        let Some(per_second) = NonZeroU32::new(rate.per_second) else {
            return Err((403, "browsers may not publish on this server".to_string()));
        };
        let burst = NonZeroU32::new(rate.burst).unwrap_or(per_second);
        if self.limiter.as_ref().is_none_or(|(r, _)| *r != rate) {
            let quota = Quota::per_second(per_second).allow_burst(burst);
            self.limiter = Some((rate, RateLimiter::direct(quota)));
        }
        match self.limiter.as_ref().map(|(_, l)| l.check()) {
            Some(Err(_)) => Err((
                429,
                format!("publishing too fast: at most {per_second} messages a second"),
            )),
            _ => Ok(()),
        }
    }
}
