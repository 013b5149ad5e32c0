//! Supervision: a crashed actor is restarted, and the restart is counted.
//!
//! actix's [`actix::Supervisor`] restarts an actor whose context stops, but a panic inside a
//! handler unwinds through the arbiter instead. [`guarded`] turns a panic into a logged error and
//! a stop, so that the supervisor restarts the actor with its address (and queued messages)
//! intact. Each actor resets its per-run state in `Supervised::restarting` and reports it to the
//! [`StatusBoard`](crate::health::StatusBoard).

use std::panic::{catch_unwind, AssertUnwindSafe};

use actix::{Actor, ActorContext, Context, Message};

use crate::health::StatusBoard;

/// Runs a handler body; on panic, records the error and stops the actor so its supervisor
/// restarts it. Returns `None` when the body panicked.
pub fn guarded<A, R>(
    actor: &mut A,
    ctx: &mut Context<A>,
    name: &str,
    board: &StatusBoard,
    body: impl FnOnce(&mut A, &mut Context<A>) -> R,
) -> Option<R>
where
    A: Actor<Context = Context<A>>,
{
    match catch_unwind(AssertUnwindSafe(|| body(actor, ctx))) {
        Ok(r) => Some(r),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            tracing::error!(actor = name, error = %what, "actor crashed; restarting");
            board.actor_error(name, format!("crashed: {what}"));
            ctx.stop();
            None
        }
    }
}

/// Makes an actor crash as if a handler had hit a bug: used by the tests that check supervision.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct InjectPanic;

/// Implements [`InjectPanic`] for an actor with a `board` field and a `NAME` constant.
#[macro_export]
macro_rules! impl_inject_panic {
    ($actor:ty) => {
        impl actix::Handler<$crate::supervise::InjectPanic> for $actor {
            type Result = ();
            fn handle(
                &mut self,
                _: $crate::supervise::InjectPanic,
                ctx: &mut actix::Context<Self>,
            ) {
                let board = self.board.clone();
                $crate::supervise::guarded(self, ctx, Self::NAME, &board, |_, _| {
                    panic!("panic injected into {}", Self::NAME)
                });
            }
        }
    };
}

/// Asks an actor whether it is alive and how many messages it has handled since (re)start.
#[derive(Debug, Message)]
#[rtype(result = "u64")]
pub struct Ping;

/// Answers when the actor's thread is free to handle messages: the watchdog's liveness probe.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Alive;

/// Implements [`Alive`] for an actor (any context).
#[macro_export]
macro_rules! impl_alive {
    ($actor:ty) => {
        impl actix::Handler<$crate::supervise::Alive> for $actor {
            type Result = ();
            fn handle(&mut self, _: $crate::supervise::Alive, _: &mut Self::Context) {}
        }
    };
}
