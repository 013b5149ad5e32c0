//! Delivery of results over HTTP (blocking, ureq): the wire payloads, one POST, and the retry
//! policy; the outbox dispatcher drives them.
//!
//! The payload is a wire DTO of its own ([`ExternalPayload`]); its shape is the external
//! service's contract and must not follow internal refactors.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::messages::Classification;

/// The JSON POSTed for every classification window.
#[derive(Debug, Serialize)]
pub struct ExternalPayload {
    /// The window's end, Unix seconds.
    pub timestamp: i64,
    /// The window's end, ISO-8601 UTC.
    pub date_time: String,
    pub activity: String,
    pub confidence: f32,
    pub scores: BTreeMap<String, f32>,
    pub window: WindowDto,
    pub source: String,
    pub features: serde_json::Value,
}

#[derive(Debug, Serialize)]
pub struct WindowDto {
    /// ISO-8601 UTC.
    pub start: String,
    pub end: String,
}

/// Formats Unix milliseconds as ISO-8601 UTC with millisecond precision.
pub fn iso8601(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl From<&Classification> for ExternalPayload {
    fn from(c: &Classification) -> Self {
        let end_ms = c.end().millis();
        Self {
            timestamp: end_ms.div_euclid(1000),
            date_time: iso8601(end_ms),
            activity: c.decision.activity.to_string(),
            confidence: c.decision.confidence,
            scores: c
                .decision
                .scores
                .iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            window: WindowDto {
                start: iso8601(c.start().millis()),
                end: iso8601(end_ms),
            },
            source: c.source.clone(),
            features: serde_json::to_value(&c.window).unwrap_or(serde_json::Value::Null),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },
}

/// Where and how one destination's deliveries are POSTed.
#[derive(Clone)]
pub struct Endpoint {
    agent: ureq::Agent,
    /// Overrides each entry's own URL (the external service: its configured URL, so that a
    /// corrected URL also carries the results queued before the correction).
    url: Option<String>,
    token: Option<String>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Endpoint {
    pub fn new(url: Option<String>, token: Option<String>, timeout: Duration) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout(timeout)
            .user_agent(concat!("classify-audio-video/", env!("CARGO_PKG_VERSION")))
            .build();
        Self { agent, url, token }
    }

    /// The URL a delivery addressed to `entry_url` goes to.
    pub fn url_for<'a>(&'a self, entry_url: &'a str) -> &'a str {
        self.url.as_deref().unwrap_or(entry_url)
    }

    /// POSTs one delivery once, with its idempotency key and the bearer token if any; Ok with
    /// the status code on 2xx.
    pub fn post(
        &self,
        entry_url: &str,
        idempotency_key: &str,
        payload: &impl Serialize,
    ) -> Result<u16, DeliveryError> {
        let url = self.url_for(entry_url);
        let mut req = self.agent.post(url).set("Idempotency-Key", idempotency_key);
        if let Some(token) = &self.token {
            req = req.set("Authorization", &format!("Bearer {token}"));
        }
        send_json(req, url, payload)
    }
}

/// Delays between attempts: exponential from `initial`, capped at `max`, with "equal jitter"
/// (half the delay fixed, half random) so that many daemons behind one failed receiver do not
/// retry in lockstep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay after `failures` failed attempts (1 = the first failure); `unit` is a random
    /// number in [0, 1).
    pub fn delay(&self, failures: u32, unit: f64) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        let full = self
            .initial
            .saturating_mul(1u32 << exp.min(20))
            .min(self.max);
        full / 2 + full.mul_f64(unit.clamp(0.0, 1.0) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_half_jitter() {
        let b = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        };
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(b.delay(1, 0.5), Duration::from_millis(750));
        assert_eq!(b.delay(3, 0.0), Duration::from_secs(2));
        assert_eq!(b.delay(3, 1.0), Duration::from_secs(4));
        assert_eq!(b.delay(10, 1.0), Duration::from_secs(60));
        assert_eq!(b.delay(10, 0.0), Duration::from_secs(30));
        assert_eq!(b.delay(u32::MAX, 0.5), Duration::from_secs(45));
    }

    #[test]
    fn iso8601_is_utc_with_milliseconds() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}

/// The JSON POSTed to a source's webhook for each sound event.
#[derive(Debug, Serialize)]
pub struct EventWebhookPayload {
    /// `clap`, `applause`, … or `test` for `/api/webhooks/test`.
    pub event: String,
    pub source: String,
    /// The onset, ISO-8601 UTC.
    pub timestamp: String,
    pub onset_ms: i64,
    pub score: f32,
    /// The end of an event with a duration (applause).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_ms: Option<i64>,
}

impl From<&crate::events::SoundEventRecord> for EventWebhookPayload {
    fn from(e: &crate::events::SoundEventRecord) -> Self {
        Self {
            event: e.kind.clone(),
            source: e.source.clone(),
            timestamp: iso8601(e.onset_ms),
            onset_ms: e.onset_ms,
            score: e.score,
            end_ms: e.end_ms,
        }
    }
}

/// POSTs JSON to a webhook URL once; Ok with the status code on 2xx.
pub fn post_json(
    agent: &ureq::Agent,
    url: &str,
    payload: &impl Serialize,
) -> Result<u16, DeliveryError> {
    send_json(agent.post(url), url, payload)
}

/// Sends a prepared request with a JSON body; Ok with the status code on 2xx.
fn send_json(
    req: ureq::Request,
    url: &str,
    payload: &impl Serialize,
) -> Result<u16, DeliveryError> {
    match req.send_json(payload) {
        Ok(resp) => Ok(resp.status()),
        Err(ureq::Error::Status(status, _)) => Err(DeliveryError::Status {
            url: url.to_string(),
            status,
        }),
        Err(e) => Err(DeliveryError::Transport {
            url: url.to_string(),
            reason: e.to_string(),
        }),
    }
}

impl DeliveryError {
    /// Worth another try: the receiver may be back soon (refused, timed out, 5xx, 408, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            Self::Transport { .. } => true,
        }
    }

    /// The HTTP status the receiver answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            Self::Transport { .. } => None,
        }
    }
}
