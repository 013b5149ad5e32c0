//! The broker connection: rumqttc's blocking `Client` and `Connection` on a thread of its own
//! (the actix system runs on a current-thread runtime that must never block on the network).
//!
//! The link keeps what the broker must hold — discovery documents and retained states — and
//! publishes all of it again after every (re)connect, then `online`: a broker that restarted
//! without persistence is restored at once. Messages are handed to the client only while it is
//! connected, so events that happen while the broker is away are dropped instead of piling up.
//! Connection failures are retried after a delay doubling from 1 s to `reconnect_max` (with
//! jitter, so daemons sharing a broker do not all come back in the same instant).
//!
//! The broker's last will (`offline`, retained) covers a crash or a lost connection;
//! [`MqttLink::shutdown`] publishes `offline` itself and disconnects cleanly.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rumqttc::{Client, Connection, Event, LastWill, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::oneshot;

use super::topics::{OFFLINE, ONLINE};
use crate::delivery::Backoff;

/// Requests the client may hold before the connection thread takes them (a reconnect publishes
/// a few per source).
const CHANNEL: usize = 1024;
/// Discovery documents can be a few KiB; rumqttc's default limit is 10 KiB.
const MAX_PACKET: usize = 256 * 1024;

/// How to connect.
#[derive(Clone)]
pub struct LinkOptions {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub keepalive: Duration,
    pub reconnect_max: Duration,
    /// The availability topic: `online` / `offline` and the last will.
    pub availability: String,
}

/// What the connection is doing, reported to the link's owner from the connection thread.
#[derive(Clone, Debug, PartialEq)]
pub enum LinkState {
    Connected,
    /// Not connected; the next attempt is in `retry_in`.
    Disconnected {
        error: String,
        retry_in: Duration,
        /// Whether this link had been connected before (a lost connection, not a first try).
        was_connected: bool,
    },
    /// The thread has ended.
    Stopped,
}

#[derive(Default)]
struct Inner {
    connected: bool,
    /// Topic → payload, published (retained) on every connect; an empty payload deletes.
    discovery: BTreeMap<String, Vec<u8>>,
    retained: BTreeMap<String, Vec<u8>>,
}

struct Shared {
    inner: Mutex<Inner>,
    stopping: AtomicBool,
    /// Messages the client refused (its queue was full).
    dropped: AtomicU64,
    availability: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Hands one message to the client; never blocks.
    fn send(&self, client: &Client, topic: &str, payload: Vec<u8>, retain: bool) -> bool {
        match client.try_publish(topic, QoS::AtLeastOnce, retain, payload) {
            Ok(()) => true,
            Err(e) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(topic, error = %e, "MQTT message dropped");
                false
            }
        }
    }

    /// After a CONNACK: everything the broker must hold, then `online`. False when stopping.
    fn on_connect(&self, client: &Client) -> bool {
        let mut inner = self.lock();
        if self.stopping() {
            return false;
        }
        inner.connected = true;
        for (topic, payload) in inner.discovery.iter().chain(&inner.retained) {
            self.send(client, topic, payload.clone(), true);
        }
        self.send(client, &self.availability, ONLINE.into(), true);
        true
    }
}

/// A connection to one broker, kept up by a thread of its own until [`MqttLink::shutdown`] (or
/// drop).
pub struct MqttLink {
    client: Client,
    shared: Arc<Shared>,
    wake: crossbeam_channel::Sender<()>,
    done: Option<oneshot::Receiver<()>>,
}

impl MqttLink {
    /// Starts the connection thread; `on_state` is called from it on every change.
    pub fn start(
        options: LinkOptions,
        on_state: impl Fn(&LinkState) + Send + 'static,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            inner: Mutex::default(),
            stopping: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            availability: options.availability.clone(),
        });
        let (wake_tx, wake_rx) = crossbeam_channel::bounded(1);
        let (done_tx, done_rx) = oneshot::channel();
        let (client_tx, client_rx) = std::sync::mpsc::sync_channel(1);
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("mqtt".into())
            .spawn(move || {
                // Built here: the connection owns a tokio runtime, which must be neither driven
                // nor dropped on the actix thread.
                let (client, connection) = Client::new(mqtt_options(&options), CHANNEL);
                let _ = client_tx.send(client.clone());
                run(
                    connection,
                    &client,
                    &thread_shared,
                    &options,
                    &wake_rx,
                    &on_state,
                );
                thread_shared.lock().connected = false;
                on_state(&LinkState::Stopped);
                let _ = done_tx.send(());
            })?;
        let client = client_rx
            .recv()
            .map_err(|_| std::io::Error::other("the MQTT thread ended at start"))?;
        Ok(Self {
            client,
            shared,
            wake: wake_tx,
            done: Some(done_rx),
        })
    }

    pub fn is_connected(&self) -> bool {
        self.shared.lock().connected
    }

    /// Messages dropped because the client's queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Sets a discovery document (an empty payload removes the entity); published now when
    /// connected and it changed, and again on every reconnect.
    pub fn set_discovery(&self, topic: String, payload: Vec<u8>) {
        self.keep(topic, payload, true);
    }

    /// Sets a retained state (an empty payload deletes it); published now when connected and it
    /// changed, and again on every reconnect.
    pub fn set_retained(&self, topic: String, payload: Vec<u8>) {
        self.keep(topic, payload, false);
    }

    fn keep(&self, topic: String, payload: Vec<u8>, discovery: bool) {
        let mut inner = self.shared.lock();
        let connected = inner.connected;
        let map = if discovery {
            &mut inner.discovery
        } else {
            &mut inner.retained
        };
        if map.get(&topic) == Some(&payload) {
            return;
        }
        map.insert(topic.clone(), payload.clone());
        if connected && !self.shared.stopping() {
            self.shared.send(&self.client, &topic, payload, true);
        }
    }

    /// Publishes a message that is not retained; false (dropped) when not connected.
    pub fn publish(&self, topic: &str, payload: Vec<u8>) -> bool {
        let inner = self.shared.lock();
        inner.connected
            && !self.shared.stopping()
            && self.shared.send(&self.client, topic, payload, false)
    }

    /// Publishes `offline` (retained) and disconnects cleanly when connected, and ends the
    /// thread. The receiver (given once) completes when the thread has ended.
    pub fn shutdown(&mut self) -> Option<oneshot::Receiver<()>> {
        if !self.shared.stopping.swap(true, Ordering::SeqCst) {
            let inner = self.shared.lock();
            if inner.connected {
                self.shared.send(
                    &self.client,
                    &self.shared.availability,
                    OFFLINE.into(),
                    true,
                );
                let _ = self.client.try_disconnect();
            }
            drop(inner);
            // Cuts a reconnect delay short.
            let _ = self.wake.try_send(());
        }
        self.done.take()
    }
}

impl Drop for MqttLink {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn mqtt_options(o: &LinkOptions) -> MqttOptions {
    // rumqttc refuses an empty id or one starting with a space (config validation prevents both).
    let id = if o.client_id.trim().is_empty() {
        "cav".to_string()
    } else {
        o.client_id.clone()
    };
    let mut options = MqttOptions::new(id, o.host.clone(), o.port);
    options
        .set_keep_alive(o.keepalive.max(Duration::from_secs(1)))
        .set_clean_session(true)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET)
        .set_last_will(LastWill::new(
            o.availability.clone(),
            OFFLINE,
            QoS::AtLeastOnce,
            true,
        ));
    if let Some(user) = &o.username {
        options.set_credentials(user.clone(), o.password.clone().unwrap_or_default());
    }
    options
}

/// The connection thread: polls the event loop (which connects, reconnects, sends and pings),
/// waits between failed attempts, and ends on shutdown.
fn run(
    mut connection: Connection,
    client: &Client,
    shared: &Shared,
    options: &LinkOptions,
    wake: &crossbeam_channel::Receiver<()>,
    on_state: &dyn Fn(&LinkState),
) {
    let backoff = Backoff {
        initial: Duration::from_secs(1),
        max: options.reconnect_max.max(Duration::from_secs(1)),
    };
    let mut failures = 0u32;
    let mut was_connected = false;
    let mut last_error = String::new();
    let broker = format!("{}:{}", options.host, options.port);
    loop {
        // Connected: the loop goes on until our DISCONNECT (queued by `shutdown`) is out.
        if shared.stopping() && !shared.lock().connected {
            return;
        }
        // Err: every client is gone (cannot happen while this thread holds one).
        let Ok(event) = connection.recv() else {
            return;
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if !shared.on_connect(client) {
                    return;
                }
                failures = 0;
                was_connected = true;
                last_error.clear();
                tracing::info!(%broker, client_id = %options.client_id, "MQTT connected");
                on_state(&LinkState::Connected);
            }
            // Our own DISCONNECT (after `offline`) has been written: done.
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                let lost = std::mem::take(&mut shared.lock().connected);
                if shared.stopping() {
                    return;
                }
                failures = failures.saturating_add(1);
                let retry_in = backoff.delay(failures, fastrand::f64());
                let error = e.to_string();
                if lost || error != last_error {
                    tracing::warn!(%broker, %error, retry_in_s = retry_in.as_secs_f64(), "MQTT not connected; retrying");
                } else {
                    tracing::debug!(%broker, %error, retry_in_s = retry_in.as_secs_f64(), "MQTT still not connected");
                }
                on_state(&LinkState::Disconnected {
                    error: error.clone(),
                    retry_in,
                    was_connected,
                });
                last_error = error;
                // Woken early by shutdown.
                let _ = wake.recv_timeout(retry_in);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn options(port: u16) -> LinkOptions {
        LinkOptions {
            host: "127.0.0.1".into(),
            port,
            client_id: "cav-test".into(),
            username: None,
            password: None,
            keepalive: Duration::from_secs(5),
            reconnect_max: Duration::from_secs(60),
            availability: "t/availability".into(),
        }
    }

    #[test]
    fn without_a_broker_it_retries_keeps_state_drops_events_and_stops_at_once() {
        // A port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (tx, rx) = mpsc::channel();
        let mut link = MqttLink::start(options(port), move |s| {
            let _ = tx.send(s.clone());
        })
        .unwrap();
        match rx.recv_timeout(Duration::from_secs(10)).unwrap() {
            LinkState::Disconnected {
                error,
                retry_in,
                was_connected,
            } => {
                assert!(!error.is_empty());
                assert!(retry_in <= Duration::from_secs(1), "{retry_in:?}");
                assert!(!was_connected);
            }
            other => panic!("{other:?}"),
        }
        assert!(!link.is_connected());
        assert!(
            !link.publish("t/event", b"{}".to_vec()),
            "dropped while away"
        );
        link.set_retained("t/state".into(), b"1".to_vec());
        assert_eq!(link.dropped(), 0, "nothing was handed to the client");
        // Shutdown cuts the reconnect delay short.
        let started = std::time::Instant::now();
        let done = link.shutdown().expect("done receiver");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(2), done).await })
            .expect("thread ended within 2 s")
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(link.shutdown().is_none(), "given once");
        let last = rx.try_iter().last();
        assert_eq!(last, Some(LinkState::Stopped));
    }
}
