//! Helpers for tests that run the real `cav` binary and real peers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The seven activity classes, in the order of the API's scores.
pub const CLASSES: [&str; 7] = [
    "asleep",
    "at_table",
    "reading",
    "on_phone",
    "in_conversation",
    "busy",
    "inactive",
];

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn cav() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cav"));
    // Keep the tests independent of the developer's environment.
    for (k, _) in std::env::vars() {
        if k.starts_with("CAV_") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("RUST_LOG");
    cmd
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// GET a URL; returns (status, JSON body).
pub fn get_json(url: &str) -> Result<(u16, serde_json::Value), String> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build();
    match agent.get(url).call() {
        Ok(r) => {
            let status = r.status();
            r.into_json()
                .map(|j| (status, j))
                .map_err(|e| e.to_string())
        }
        Err(ureq::Error::Status(code, r)) => {
            r.into_json().map(|j| (code, j)).map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// POST a JSON body; returns (status, JSON body) for 2xx and 4xx/5xx alike.
pub fn post_json(url: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    answer(
        url,
        ureq::post(url)
            .timeout(Duration::from_secs(10))
            .send_json(body),
    )
}

/// DELETE a URL; returns (status, JSON body).
pub fn delete_json(url: &str) -> (u16, serde_json::Value) {
    answer(
        url,
        ureq::delete(url).timeout(Duration::from_secs(10)).call(),
    )
}

fn answer(url: &str, r: Result<ureq::Response, ureq::Error>) -> (u16, serde_json::Value) {
    match r {
        Ok(r) => (r.status(), r.into_json().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or_default()),
        Err(e) => panic!("{url}: {e}"),
    }
}

/// Prints the onset-to-webhook latency of received sound-event POSTs (a measurement, not a
/// check): the receiver's arrival time minus the event's onset on the capture clock.
pub fn print_webhook_latency(what: &str, hooks: &[serde_json::Value]) {
    let mut latencies: Vec<f64> = hooks
        .iter()
        .filter_map(|h| Some(h["t"].as_f64()? * 1000.0 - h["json"]["onset_ms"].as_f64()?))
        .collect();
    if latencies.is_empty() {
        return;
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "{what} latency over {} events: p50 {:.0} ms, max {:.0} ms ({latencies:?})",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
}

/// Polls `f` every 200 ms until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A running daemon, killed on drop if the test did not stop it.
pub struct Daemon {
    pub child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `cav run` on a free port with its data in `data_dir` and the given extra env.
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> Daemon {
        Self::start_with_args(data_dir, &[], env)
    }

    /// Like [`Daemon::start`], with extra arguments after `run` (e.g. `--config FILE`).
    pub fn start_with_args(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let port = free_port();
        let log = data_dir.join("daemon.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut cmd = cav();
        cmd.arg("run")
            .args(args)
            .current_dir(data_dir)
            .env("CAV_HTTP__BIND", format!("127.0.0.1:{port}"))
            .env("CAV_STORAGE__DATA_DIR", data_dir.join("data"))
            .stdout(Stdio::null())
            .stderr(log_file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn cav");
        Daemon {
            child,
            base: format!("http://127.0.0.1:{port}"),
            data_dir: data_dir.to_path_buf(),
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal and waits (up to `timeout`) for the exit status.
    pub fn signal_and_wait(&mut self, signal: &str, timeout: Duration) -> Option<ExitStatus> {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status();
        wait_for(timeout, || self.child.try_wait().ok().flatten())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The webhook receiver from tests/tools (Python's http.server: an independent HTTP stack).
pub struct Receiver {
    child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl Receiver {
    pub fn start(dir: &Path, status: u16) -> Receiver {
        Self::start_with(dir, 0, &["--status", &status.to_string()])
    }

    /// Starts the receiver on `port` (0: any) with extra arguments, e.g. `--fail-first 5`.
    /// Its log is `dir/hooks.jsonl` (appended to, so a restarted receiver keeps the history).
    pub fn start_with(dir: &Path, port: u16, args: &[&str]) -> Receiver {
        let log = dir.join("hooks.jsonl");
        let mut child = Command::new("python3")
            .arg(repo().join("tests/tools/webhook_receiver.py"))
            .args(["--port", &port.to_string()])
            .args(args)
            .arg("--log")
            .arg(&log)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is needed for the webhook receiver");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut first = String::new();
        reader.read_line(&mut first).expect("receiver banner");
        // Keep reading: the receiver prints every request, and a closed pipe would kill it.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        let addr = first
            .trim()
            .strip_prefix("listening ")
            .expect("banner 'listening HOST:PORT'")
            .to_string();
        Receiver {
            child,
            url: format!("http://{addr}/hook"),
            log,
        }
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
