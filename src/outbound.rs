//! Requests this server makes to the application: a JSON POST with a
//! deadline (the authorize callback, webhooks). Blocking: run it on the
//! blocking pool, never on the async threads.

use std::time::Duration;

/// What the application answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// Why there was no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    #[error("cannot reach it: {0}")]
    Unreachable(String),
}

/// The longest answer body read.
const MAX_BODY: u64 = 64 * 1024;

/// POST `body` (JSON) to `url` with extra `headers`; any status is an
/// answer, only no answer at all is a failure.
pub fn post_json(
    url: &str,
    body: &[u8],
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<Answer, Failure> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(format!("meteord/{}", crate::config::VERSION))
        .build()
        .into();
    let mut request = agent.post(url).header("Content-Type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    match request.send(body) {
        Ok(mut response) => Ok(Answer {
            status: response.status().as_u16(),
            body: response
                .body_mut()
                .with_config()
                .limit(MAX_BODY)
                .read_to_string()
                .unwrap_or_default(),
        }),
        Err(ureq::Error::Timeout(_)) => Err(Failure::TimedOut(timeout)),
        Err(e) => Err(Failure::Unreachable(e.to_string())),
    }
}
