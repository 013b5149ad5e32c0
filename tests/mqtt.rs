//! MQTT against a real broker: Debian's Mosquitto, started by each test on a free port, read by
//! Mosquitto's own `mosquitto_sub` (an independent MQTT implementation). The daemon runs on its
//! demo clip and publishes Home Assistant discovery documents, its availability (with a last
//! will), the current activity, source states and sound events.

mod common;

use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{cav, free_port, get_json, wait_for, Daemon, CLASSES};
use serde_json::Value;

fn mosquitto() -> &'static str {
    if Path::new("/usr/sbin/mosquitto").exists() {
        "/usr/sbin/mosquitto"
    } else {
        "mosquitto"
    }
}

/// A Mosquitto broker on 127.0.0.1:`port`, without persistence, logging everything to
/// `dir/mosquitto.log` (appended to, so a restarted broker keeps the history). Killed on drop.
struct Broker {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Broker {
    fn start(dir: &Path, port: u16) -> Broker {
        let conf = dir.join(format!("mosquitto-{port}.conf"));
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 log_dest stderr\nlog_type all\nconnection_messages true\n"
            ),
        )
        .unwrap();
        let log = dir.join("mosquitto.log");
        let log_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(mosquitto())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("mosquitto is needed (scripts/setup.sh --test installs it)");
        let broker = Broker { child, port, log };
        wait_for(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .unwrap_or_else(|| panic!("mosquitto did not listen:\n{}", broker.log_text()));
        broker
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One message as `mosquitto_sub` printed it.
#[derive(Clone, Debug)]
struct Msg {
    topic: String,
    retain: bool,
    payload: String,
}

impl Msg {
    fn json(&self) -> Value {
        serde_json::from_str(&self.payload)
            .unwrap_or_else(|e| panic!("{}: {e}: {}", self.topic, self.payload))
    }
}

fn parse_lines(text: &str) -> Vec<Msg> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|j| Msg {
            topic: j["topic"].as_str().unwrap_or_default().to_string(),
            retain: j["retain"].as_i64() == Some(1),
            payload: j["payload"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

/// `mosquitto_sub` on `#` (QoS 1), every message a JSON line in a file. Killed on drop.
struct Subscriber {
    child: Child,
    out: PathBuf,
}

impl Subscriber {
    fn start(dir: &Path, broker: &Broker, name: &str) -> Subscriber {
        let out = dir.join(format!("sub-{name}.jsonl"));
        let id = format!("test-sub-{name}");
        let child = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
            .args(["-i", &id, "-q", "1", "-t", "#", "-F", "%j"])
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub is needed (mosquitto-clients)");
        // Subscribed once the broker says so: nothing published after this is missed.
        wait_for(Duration::from_secs(10), || {
            broker
                .log_text()
                .contains(&format!("{id} 1 #"))
                .then_some(())
        })
        .unwrap_or_else(|| panic!("mosquitto_sub did not subscribe:\n{}", broker.log_text()));
        Subscriber { child, out }
    }

    fn messages(&self) -> Vec<Msg> {
        parse_lines(&std::fs::read_to_string(&self.out).unwrap_or_default())
    }

    /// The first message on `topic` that `pick` accepts.
    fn wait(&self, timeout: Duration, topic: &str, pick: impl Fn(&Msg) -> bool) -> Option<Msg> {
        wait_for(timeout, || {
            self.messages()
                .into_iter()
                .find(|m| m.topic == topic && pick(m))
        })
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a subscriber arriving now gets on `topic`: the broker's retained message, if any.
fn retained(port: u16, topic: &str) -> Option<Msg> {
    let out = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-q", "1", "-t", topic, "-C", "1", "-W", "2", "-F", "%j"])
        .output()
        .expect("mosquitto_sub");
    parse_lines(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .find(|m| m.retain && m.topic == topic)
}

/// Waits until the retained message on `topic` is `payload`.
fn wait_retained(port: u16, topic: &str, payload: &str, timeout: Duration) -> bool {
    wait_for(timeout, || {
        retained(port, topic)
            .filter(|m| m.payload == payload)
            .map(|_| ())
    })
    .is_some()
}

/// The daemon on its demo clip with 2-s windows, publishing to the broker on `port`.
fn start_daemon(dir: &Path, port: u16, node_id: &str, extra: &[(&str, &str)]) -> Daemon {
    let port = port.to_string();
    let mut env = vec![
        ("CAV_CLASSIFIER__WINDOW_S", "2"),
        ("CAV_MQTT__ENABLED", "true"),
        ("CAV_MQTT__PORT", port.as_str()),
        ("CAV_MQTT__NODE_ID", node_id),
        ("CAV_MQTT__KEEPALIVE_S", "2"),
    ];
    env.extend_from_slice(extra);
    Daemon::start(dir, &env)
}

fn mqtt_status(daemon: &Daemon) -> Option<Value> {
    let (_, status) = get_json(&daemon.url("/api/status")).ok()?;
    let mqtt = status["actors"]["mqtt"].clone();
    (!mqtt.is_null()).then_some(mqtt)
}

const BASE: &str = "classify-audio-video/living_room";

#[test]
fn publishes_discovery_states_and_sound_events_and_the_broker_sends_the_last_will_on_kill() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), free_port());
    let sub = Subscriber::start(dir.path(), &broker, "all");
    let mut daemon = start_daemon(dir.path(), broker.port, "living_room", &[]);
    let t = Duration::from_secs(40);
    let availability = format!("{BASE}/availability");

    // Home Assistant discovery: the activity sensor...
    let config = sub
        .wait(
            t,
            "homeassistant/sensor/living_room/activity/config",
            |_| true,
        )
        .unwrap_or_else(|| panic!("no discovery:\n{}", daemon.log_text()))
        .json();
    assert_eq!(
        config["state_topic"],
        format!("{BASE}/activity"),
        "{config}"
    );
    assert_eq!(config["json_attributes_topic"], config["state_topic"]);
    assert_eq!(config["value_template"], "{{ value_json.activity }}");
    assert_eq!(config["unique_id"], "cav_living_room_activity");
    assert_eq!(config["availability_topic"], availability);
    assert_eq!(config["options"].as_array().unwrap().len(), 7);
    assert_eq!(config["device"]["identifiers"][0], "cav_living_room");
    assert_eq!(config["device"]["manufacturer"], "classify-audio-video");
    // ... the file source's sound events as an event entity, and its state.
    let event = sub
        .wait(
            t,
            "homeassistant/event/living_room/file_sound/config",
            |_| true,
        )
        .expect("event entity discovery")
        .json();
    assert_eq!(event["state_topic"], format!("{BASE}/source/file/event"));
    assert_eq!(event["unique_id"], "cav_living_room_file_sound");
    assert_eq!(event["availability_topic"], availability);
    let types = event["event_types"].as_array().unwrap();
    for kind in ["clap", "applause", "speech"] {
        assert!(types.iter().any(|k| k == kind), "{event}");
    }
    assert_eq!(event["device"], config["device"]);
    let state = sub
        .wait(
            t,
            "homeassistant/sensor/living_room/file_state/config",
            |_| true,
        )
        .expect("source state discovery")
        .json();
    assert_eq!(state["state_topic"], format!("{BASE}/source/file"));
    // The discovery documents are retained: Home Assistant started later sees them too.
    assert!(retained(
        broker.port,
        "homeassistant/sensor/living_room/activity/config"
    )
    .is_some());

    // Online, retained: a late subscriber sees it.
    assert!(
        wait_retained(broker.port, &availability, "online", t),
        "{}",
        daemon.log_text()
    );
    let status = mqtt_status(&daemon).expect("mqtt on /api/status");
    assert_eq!(status["state"], "running", "{status}");

    // The activity of each 2-s window, retained, with all seven scores.
    let activity = sub
        .wait(t, &format!("{BASE}/activity"), |_| true)
        .unwrap_or_else(|| panic!("no activity:\n{}", daemon.log_text()))
        .json();
    let class = activity["activity"].as_str().unwrap();
    assert!(CLASSES.contains(&class), "{activity}");
    let scores = activity["scores"].as_object().unwrap();
    assert_eq!(scores.len(), 7);
    let sum: f64 = scores.values().map(|v| v.as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-3, "{activity}");
    assert_eq!(activity["confidence"], scores[class]);
    assert!(activity["window_start"].as_str().unwrap().ends_with('Z'));
    assert!(activity["window_end"].as_str().unwrap().ends_with('Z'));
    let span =
        activity["window_end_ms"].as_i64().unwrap() - activity["window_start_ms"].as_i64().unwrap();
    assert_eq!(span, 2000, "{activity}");
    assert_eq!(activity["source"], "file");
    let kept = retained(broker.port, &format!("{BASE}/activity")).expect("activity retained");
    assert!(CLASSES.contains(&kept.json()["activity"].as_str().unwrap()));

    // The file source's state.
    let file = sub
        .wait(t, &format!("{BASE}/source/file"), |m| {
            m.json()["state"] == "running"
        })
        .unwrap_or_else(|| panic!("no running file source:\n{:?}", sub.messages()));
    assert_eq!(file.json()["kind"], "file");

    // The demo clip opens with two voices: speech events, on the common topic and on the
    // source's event-entity topic (with the event_type Home Assistant reads).
    let speech = sub
        .wait(
            Duration::from_secs(60),
            &format!("{BASE}/sound_event"),
            |m| m.json()["event_type"] == "speech",
        )
        .unwrap_or_else(|| panic!("no speech event:\n{}", daemon.log_text()))
        .json();
    assert_eq!(speech["source"], "file");
    assert!(speech["onset"].as_str().unwrap().ends_with('Z'), "{speech}");
    assert!(speech["onset_ms"].as_i64().unwrap() > 1_600_000_000_000);
    assert!((0.0..=1.0).contains(&speech["score"].as_f64().unwrap()));
    let entity_event = sub
        .wait(t, &format!("{BASE}/source/file/event"), |_| true)
        .expect("event on the entity's topic")
        .json();
    assert!(entity_event["event_type"].is_string(), "{entity_event}");
    assert!(
        retained(broker.port, &format!("{BASE}/sound_event")).is_none(),
        "sound events are not retained"
    );

    // SIGKILL: the daemon says nothing, the broker publishes its last will.
    let onlines = sub
        .messages()
        .iter()
        .filter(|m| m.topic == availability)
        .count();
    daemon.child.kill().unwrap();
    daemon.child.wait().unwrap();
    let will = wait_for(Duration::from_secs(10), || {
        sub.messages()
            .into_iter()
            .filter(|m| m.topic == availability)
            .nth(onlines)
    })
    .unwrap_or_else(|| panic!("no last will:\n{}", broker.log_text()));
    assert_eq!(will.payload, "offline");
    assert!(wait_retained(
        broker.port,
        &availability,
        "offline",
        Duration::from_secs(5)
    ));
    let log = broker.log_text();
    assert!(
        log.contains("Client cav-living_room closed its connection"),
        "{log}"
    );
    assert!(
        !log.contains("Received DISCONNECT from cav-living_room"),
        "{log}"
    );
}

#[test]
fn sigterm_publishes_offline_itself_disconnects_cleanly_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), free_port());
    let availability = format!("{BASE}/availability");
    let mut daemon = start_daemon(dir.path(), broker.port, "living_room", &[]);
    assert!(
        wait_retained(
            broker.port,
            &availability,
            "online",
            Duration::from_secs(40)
        ),
        "{}",
        daemon.log_text()
    );
    let exit = daemon
        .signal_and_wait("TERM", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("no exit after SIGTERM:\n{}", daemon.log_text()));
    assert!(exit.success(), "{exit:?}:\n{}", daemon.log_text());
    assert!(wait_retained(
        broker.port,
        &availability,
        "offline",
        Duration::from_secs(5)
    ));
    // The daemon published "offline" (7 bytes) itself and then said DISCONNECT, so the broker
    // had no will to send.
    let log = broker.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("Received PUBLISH from cav-living_room")
                && l.contains(&format!("'{availability}', ... (7 bytes)"))),
        "{log}"
    );
    assert!(
        log.contains("Received DISCONNECT from cav-living_room"),
        "{log}"
    );
}

#[test]
fn connects_when_the_broker_comes_up_later_and_again_after_it_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = "classify-audio-video/kitchen";
    let availability = format!("{base}/availability");
    let daemon = start_daemon(
        dir.path(),
        port,
        "kitchen",
        &[("CAV_MQTT__RECONNECT_MAX_S", "2")],
    );

    // No broker yet: the daemon runs, the publisher says why it is not connected.
    let status = wait_for(Duration::from_secs(40), || {
        mqtt_status(&daemon).filter(|m| m["last_error"].is_string())
    })
    .unwrap_or_else(|| panic!("no mqtt error on /api/status:\n{}", daemon.log_text()));
    assert_eq!(status["state"], "starting", "{status}");
    let (code, _) = get_json(&daemon.url("/api/health")).unwrap();
    assert_eq!(code, 200);

    // The broker comes up: connected within the (capped) backoff.
    let mut broker = Broker::start(dir.path(), port);
    assert!(
        wait_retained(port, &availability, "online", Duration::from_secs(10)),
        "{}",
        daemon.log_text()
    );
    assert!(retained(port, "homeassistant/sensor/kitchen/activity/config").is_some());
    let status = wait_for(Duration::from_secs(5), || {
        mqtt_status(&daemon).filter(|m| m["state"] == "running")
    });
    assert!(status.is_some(), "{:?}", mqtt_status(&daemon));
    assert!(wait_for(Duration::from_secs(20), || retained(
        port,
        &format!("{base}/source/file")
    ))
    .is_some());

    // The broker restarts and has forgotten everything (no persistence): the daemon reconnects
    // and publishes its discovery documents, states and availability again.
    broker.stop();
    wait_for(Duration::from_secs(10), || {
        mqtt_status(&daemon).filter(|m| m["state"] == "restarting")
    })
    .unwrap_or_else(|| panic!("connection loss not shown: {:?}", mqtt_status(&daemon)));
    let _broker = Broker::start(dir.path(), port);
    assert!(
        wait_retained(port, &availability, "online", Duration::from_secs(10)),
        "{}",
        daemon.log_text()
    );
    assert!(retained(port, "homeassistant/sensor/kitchen/activity/config").is_some());
    assert!(retained(port, "homeassistant/event/kitchen/file_sound/config").is_some());
    assert!(retained(port, &format!("{base}/source/file")).is_some());
}

#[test]
fn two_daemons_share_one_broker_as_two_devices() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), free_port());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    // Hearing off: this is about names on the broker, not about sound.
    let quiet = [("CAV_HEARING__ENABLED", "false")];
    let kitchen = start_daemon(&a, broker.port, "kitchen", &quiet);
    let bedroom = start_daemon(&b, broker.port, "bedroom", &quiet);
    for (node, daemon) in [("kitchen", &kitchen), ("bedroom", &bedroom)] {
        assert!(
            wait_retained(
                broker.port,
                &format!("classify-audio-video/{node}/availability"),
                "online",
                Duration::from_secs(40)
            ),
            "{node}:\n{}",
            daemon.log_text()
        );
    }
    let config = |node: &str| {
        retained(
            broker.port,
            &format!("homeassistant/sensor/{node}/activity/config"),
        )
        .unwrap_or_else(|| panic!("{node}: no discovery"))
        .json()
    };
    let (k, b) = (config("kitchen"), config("bedroom"));
    assert_ne!(k["unique_id"], b["unique_id"]);
    assert_ne!(k["device"]["identifiers"], b["device"]["identifiers"]);
    assert_eq!(k["state_topic"], "classify-audio-video/kitchen/activity");
    assert_eq!(b["state_topic"], "classify-audio-video/bedroom/activity");
    let log = broker.log_text();
    assert!(
        log.contains("as cav-kitchen") && log.contains("as cav-bedroom"),
        "{log}"
    );
}

#[test]
fn a_bad_node_id_is_refused_naming_the_key() {
    let out = cav()
        .arg("check-config")
        .env("CAV_MQTT__NODE_ID", "Living Room")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mqtt.node_id"), "{err}");
    assert!(err.contains("CAV_MQTT__NODE_ID"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let mut f = std::fs::File::create(&bad).unwrap();
    writeln!(f, "[mqtt]\nenabled = true\nnode_id = \"home/kitchen\"").unwrap();
    let out = cav()
        .args(["run", "--config"])
        .arg(&bad)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mqtt.node_id"), "{err}");
}
