//! Sound-event webhooks: POSTs each event to its source's webhook URL, with a timeout and
//! retries (0.5 s, 1 s, 2 s apart) while the receiver is unreachable or answers 5xx/408/429.
//!
//! Runs on a [`actix::SyncArbiter`] (blocking HTTP) with a few threads, so that one slow
//! receiver does not hold up the events of the others.

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix::prelude::*;

use crate::delivery::{post_json, EventWebhookPayload};
use crate::events::SoundEventRecord;
use crate::health::StatusBoard;

/// Delays before the 2nd, 3rd and 4th attempts.
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// POST this event to this URL.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SendEvent {
    pub url: String,
    pub event: SoundEventRecord,
}

pub struct WebhookSender {
    board: StatusBoard,
    agent: ureq::Agent,
}

impl WebhookSender {
    pub const NAME: &'static str = "webhooks";

    pub fn new(board: StatusBoard, timeout: Duration) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout(timeout)
            .user_agent(concat!("classify-audio-video/", env!("CARGO_PKG_VERSION")))
            .build();
        Self { board, agent }
    }
}

impl Actor for WebhookSender {
    type Context = SyncContext<Self>;
}

impl Handler<SendEvent> for WebhookSender {
    type Result = ();
    fn handle(&mut self, msg: SendEvent, _: &mut Self::Context) {
        let payload = EventWebhookPayload::from(&msg.event);
        let mut attempt = 0;
        loop {
            match post_json(&self.agent, &msg.url, &payload) {
                Ok(status) => {
                    self.board
                        .counters()
                        .webhooks_sent
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(url = %msg.url, status, event = %payload.event, source = %payload.source, "webhook delivered");
                    return;
                }
                Err(e) if e.is_transient() && attempt < RETRY_DELAYS.len() => {
                    tracing::debug!(url = %msg.url, error = %e, attempt, "webhook failed; retrying");
                    std::thread::sleep(RETRY_DELAYS[attempt]);
                    attempt += 1;
                }
                Err(e) => {
                    self.board
                        .counters()
                        .webhook_errors
                        .fetch_add(1, Ordering::Relaxed);
                    self.board.actor_error(Self::NAME, e.to_string());
                    tracing::warn!(url = %msg.url, error = %e, event = %payload.event, "webhook failed");
                    return;
                }
            }
        }
    }
}
