//! The web interface end to end: the real daemon (the demo clip as its file source, a 5 s
//! window, an API token, tests/data/video as its media folder) driven by headless Chromium
//! (Debian's `chromium` through playwright-core, both installed by `scripts/setup.sh --test`).
//! The browser script is tests/ui/run.mjs; it saves a screenshot of every page at 1280×800 and
//! 390×844 in `$CARGO_TARGET_TMPDIR/ui/ui-screenshots`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{get_json, repo, wait_for, Daemon};

const TOKEN: &str = "ui-test-token-4711";

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "{} is missing: run `bash scripts/setup.sh --test` (it installs Debian's chromium)",
        path.display()
    );
    path
}

/// The version of `package` that `lock` (an npm package-lock.json) or a package.json names.
fn version_in(file: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let at = if key.is_empty() {
        &json
    } else {
        &json["packages"][key]
    };
    at["version"].as_str().map(str::to_string)
}

/// playwright-core as tests/ui/package-lock.json locks it (`npm ci` when it is missing or another
/// version, e.g. left from before the lock changed).
fn node_modules(dir: &Path) {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .expect("node is needed for the browser tests (scripts/setup.sh --test)");
    let version = String::from_utf8_lossy(&node.stdout).trim().to_string();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 18,
        "node {version} is too old for the browser tests: 18 or newer (Debian 12's) is needed"
    );
    let locked = version_in(
        &dir.join("package-lock.json"),
        "node_modules/playwright-core",
    );
    let installed = version_in(&dir.join("node_modules/playwright-core/package.json"), "");
    if installed.is_some() && installed == locked {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .expect("npm is needed for the browser tests (scripts/setup.sh --test)");
    assert!(status.success(), "npm ci in {} failed", dir.display());
}

#[test]
fn the_web_interface_works_in_a_real_browser() {
    let chromium = chromium();
    let ui = repo().join("tests/ui");
    node_modules(&ui);

    let dir = tempfile::tempdir().unwrap();
    let media = repo().join("tests/data/video");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[classifier]\nwindow_s = 5\n\n[analysis]\nmedia_dirs = [{:?}]\n\n[http]\ntoken = {TOKEN:?}\n",
            media.display().to_string()
        ),
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let daemon = Daemon::start_with_args(dir.path(), &["--config", &config_arg], &[]);
    wait_for(Duration::from_secs(60), || {
        get_json(&daemon.url("/api/health")).ok()
    })
    .unwrap_or_else(|| panic!("daemon not up:\n{}", daemon.log_text()));

    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    println!("screenshots: {}", out.join("ui-screenshots").display());

    let started = Instant::now();
    let mut child = Command::new("node")
        .arg("run.mjs")
        .current_dir(&ui)
        .env("CAV_BASE", &daemon.base)
        .env("CAV_TOKEN", TOKEN)
        .env("CAV_MEDIA", "av_sync_flash_beep.mp4")
        .env("CAV_OUT", &out)
        .env("CHROMIUM", &chromium)
        .spawn()
        .expect("node is needed for the browser tests");
    let status = wait_for(Duration::from_secs(600), || child.try_wait().ok().flatten());
    let Some(status) = status else {
        let _ = child.kill();
        panic!(
            "the browser tests did not finish in 10 min; daemon log:\n{}",
            daemon.log_text()
        );
    };
    println!(
        "browser tests took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if !status.success() {
        let log = daemon.log_text();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        panic!(
            "the browser tests failed ({status}); last daemon log lines:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
}
