//! The dispatch stage: POSTs every classification to the external service.
//!
//! It runs on a [`actix::SyncArbiter`] thread because the HTTP client blocks; the arbiter
//! recreates the actor if it stops. Delivery here is best effort (logged and counted); the
//! durable outbox replaces it.

use std::sync::atomic::Ordering;

use actix::prelude::*;

use crate::delivery::{ExternalPayload, ExternalService};
use crate::health::StatusBoard;
use crate::messages::Classification;

pub struct Dispatcher {
    board: StatusBoard,
    service: ExternalService,
}

impl Dispatcher {
    pub const NAME: &'static str = "dispatcher";

    pub fn new(board: StatusBoard, service: ExternalService) -> Self {
        Self { board, service }
    }
}

impl Actor for Dispatcher {
    type Context = SyncContext<Self>;
}

impl Handler<Classification> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: Classification, _: &mut Self::Context) {
        let payload = ExternalPayload::from(&msg);
        match self.service.post(&payload) {
            Ok(status) => {
                self.board
                    .counters()
                    .delivered
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(url = self.service.url(), status, activity = %payload.activity, "result delivered");
            }
            Err(e) => {
                self.board
                    .counters()
                    .delivery_errors
                    .fetch_add(1, Ordering::Relaxed);
                self.board.actor_error(Self::NAME, e.to_string());
                tracing::warn!(error = %e, "result delivery failed");
            }
        }
    }
}
