//! systemd integration: readiness, status and the watchdog (`sd_notify`), all no-ops when the
//! daemon was not started by systemd (no `NOTIFY_SOCKET`).
//!
//! The watchdog is pinged at half the interval systemd asks for (`WATCHDOG_USEC`), and only
//! while every pipeline stage answers a liveness probe within a quarter of it: a pipeline whose
//! threads are stuck misses its pings, and systemd restarts the service.

use std::time::Duration;

use cav_actors::pipeline::LivenessProbe;
use sd_notify::NotifyState;

fn send(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// The pipeline and the API are up.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Shutting down (so systemd does not take a slow stop for a hang).
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// Reloading the configuration.
pub fn reloading() {
    send(&[NotifyState::Reloading]);
}

/// The watchdog interval systemd asked for, if any: `WATCHDOG_USEC`, for this process when
/// `WATCHDOG_PID` names it or is absent (as libsystemd's `sd_watchdog_enabled` reads them; the
/// sd-notify crate insists on the PID).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Pings the watchdog for as long as the pipeline answers; runs until dropped (spawn it).
pub async fn watchdog(probe: LivenessProbe, interval: Duration) {
    let period = interval / 2;
    let mut ticker = actix_rt::time::interval(period);
    let mut wedged = false;
    loop {
        ticker.tick().await;
        match probe.check(interval / 4).await {
            Ok(()) => {
                if wedged {
                    tracing::info!("pipeline answers again; watchdog pings resume");
                    wedged = false;
                }
                send(&[NotifyState::Watchdog]);
            }
            Err(stage) => {
                if !wedged {
                    tracing::error!(
                        stage,
                        "pipeline stage not answering; withholding the watchdog ping"
                    );
                    wedged = true;
                }
            }
        }
    }
}
