//! A clap through a real VBAN sender reaches a real HTTP receiver: the daemon listens for VBAN
//! on a free UDP port with one VBAN source (its webhook a tests/tools/webhook_receiver.py
//! receiver), and the third-party Python package aiovban (PyPI `aiovban==1.1.1`, driven by
//! tests/tools/vban_aiovban_send.py) sends tests/data/audio/clap_gah_seq_1s.wav — seven claps,
//! one a second from 1 s — paced in real time. The claps must be POSTed with the source's id and
//! onsets 1 s apart; the time from each clap's onset to the receiver getting the POST is printed
//! (a measurement, not a check).
//!
//! Without aiovban the test fails (a silently skipped test proves nothing) and says how to
//! install it. `CAV_TEST_PYTHON` picks the interpreter (scripts/setup.sh exports it).

mod common;

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{get_json, repo, wait_for, Daemon, Receiver};

fn python() -> String {
    std::env::var("CAV_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("no free UDP port")
}

#[test]
fn a_clap_sent_over_vban_with_aiovban_reaches_the_webhook() {
    let version = Command::new(python())
        .args([
            "-c",
            "import aiovban, importlib.metadata as m; print(m.version('aiovban'))",
        ])
        .output()
        .expect("run python");
    assert!(
        version.status.success(),
        "this test sends with the third-party Python package aiovban: python3 -m pip install \
         aiovban==1.1.1 (or set CAV_TEST_PYTHON to a python that has it)\n{}",
        String::from_utf8_lossy(&version.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 200);
    let port = free_udp_port();
    let config = dir.path().join("cav.toml");
    std::fs::write(
        &config,
        format!(
            "[file]\nenabled = false\n\n[classifier]\nwindow_s = 4\naudio_source = \"vban-mic\"\n\n\
             [vban]\nbind = \"127.0.0.1:{port}\"\n\n[[sources]]\nid = \"vban-mic\"\nkind = \"vban\"\n\
             stream = \"Stream1\"\nwebhook = \"{}\"\n",
            receiver.url
        ),
    )
    .unwrap();
    let config_arg = config.to_str().unwrap().to_string();
    let daemon = Daemon::start_with_args(dir.path(), &["--config", &config_arg], &[]);
    wait_for(Duration::from_secs(30), || {
        get_json(&daemon.url("/api/health")).ok()
    })
    .unwrap_or_else(|| panic!("daemon not up:\n{}", daemon.log_text()));
    // The source is configured (its receiver binds when the source starts; the clip opens with
    // a second of room tone before the first clap, so a late bind costs nothing).
    wait_for(Duration::from_secs(10), || {
        let (_, s) = get_json(&daemon.url("/api/sources")).ok()?;
        s.to_string().contains("vban-mic").then_some(())
    })
    .unwrap_or_else(|| panic!("no vban-mic source:\n{}", daemon.log_text()));
    std::thread::sleep(Duration::from_millis(500));

    let clip = repo().join("tests/data/audio/clap_gah_seq_1s.wav");
    let sent = Command::new(python())
        .arg(repo().join("tests/tools/vban_aiovban_send.py"))
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--stream", "Stream1", "--wav"])
        .arg(&clip)
        .stderr(Stdio::inherit())
        .output()
        .expect("run the aiovban sender");
    assert!(sent.status.success(), "sender failed: {sent:?}");
    println!("sender: {}", String::from_utf8_lossy(&sent.stdout).trim());

    let hooks = wait_for(Duration::from_secs(15), || {
        let hooks: Vec<_> = receiver
            .requests()
            .into_iter()
            .filter(|r| r["json"]["event"] == "clap")
            .collect();
        (hooks.len() >= 7).then_some(hooks)
    })
    .unwrap_or_else(|| {
        receiver
            .requests()
            .into_iter()
            .filter(|r| r["json"]["event"] == "clap")
            .collect()
    });
    assert!(
        hooks.len() >= 5,
        "{} clap POSTs: {:?}\n{}",
        hooks.len(),
        receiver.requests(),
        daemon.log_text()
    );
    for h in &hooks {
        assert_eq!(h["json"]["source"], "vban-mic", "{h}");
        assert!(h["json"]["score"].as_f64().unwrap() > 0.0, "{h}");
    }
    let onsets: Vec<i64> = hooks
        .iter()
        .map(|h| h["json"]["onset_ms"].as_i64().unwrap())
        .collect();
    // The claps are 1 s apart in the recording (a missed one leaves a 2 s gap).
    for pair in onsets.windows(2) {
        let gap = pair[1] - pair[0];
        let n = ((gap as f64) / 1000.0).round().max(1.0) as i64;
        assert!(
            (gap - n * 1000).abs() <= 150,
            "clap onsets {onsets:?} not 1 s apart"
        );
    }
    common::print_webhook_latency("VBAN clap-to-webhook", &hooks);
}
