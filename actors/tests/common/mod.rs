//! Helpers shared by the tests that run real peers (OBS, PulseAudio, RTSP, VBAN).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cav_actors::health::{SourceSnapshot, StatusBoard};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free TCP port")
}

/// Runs `scripts/<script>` with `args`; panics with its output and `hint` when it fails.
pub fn run_harness(script: &str, args: &[&str], hint: &str) {
    let out = Command::new(root().join("scripts").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/{script}: {e}"));
    assert!(
        out.status.success(),
        "{script} {args:?} failed ({hint}):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits (up to `limit`) until source `id`'s status satisfies `f`, returning every distinct
/// detail seen meanwhile; panics with the status if it never does.
pub async fn wait_for_source(
    board: &StatusBoard,
    id: &str,
    what: &str,
    limit: Duration,
    f: impl Fn(&SourceSnapshot) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut details: Vec<String> = Vec::new();
    loop {
        let s = board.sources()[id].clone();
        let detail = s.status.detail.clone().unwrap_or_default();
        if details.last() != Some(&detail) {
            details.push(detail);
        }
        if f(&s) {
            return details;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}; status: {s:#?}\ndetails seen: {details:#?}"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}
