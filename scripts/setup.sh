#!/usr/bin/env bash
# Installs what classify-audio-video needs to build (and, with --test, to run its tests) on
# Debian 12. Safe to run again: it installs only what is missing.
set -euo pipefail

BUILD_PKGS=(build-essential pkg-config clang libclang-dev libopencv-dev libasound2-dev ca-certificates curl)
# Real peers for the tests: python3 (webhook receiver, VBAN sender), OBS Studio + Xvfb (+ Mesa for
# software rendering), PulseAudio with the ALSA plugin (microphone tests), GStreamer's RTSP server
# and ffmpeg (RTSP tests), systemd (systemd-analyze verify of the unit file), Mosquitto (MQTT),
# Chromium and Node.js (the web interface's browser tests, tests/ui).
TEST_PKGS=(python3 python3-venv obs-studio xvfb x11-utils libgl1-mesa-dri ffmpeg chromium
  pulseaudio pulseaudio-utils libasound2-plugins
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad systemd
  mosquitto mosquitto-clients)

want=("${BUILD_PKGS[@]}")
if [[ "${1:-}" == "--test" ]]; then
  want+=("${TEST_PKGS[@]}")
  # Node.js with npm, unless one is already installed (e.g. from NodeSource, whose nodejs
  # package conflicts with Debian's npm).
  command -v npm >/dev/null 2>&1 || want+=(nodejs npm)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [[ "${1:-}" == "--test" ]]; then
  # Test peers from PyPI live in a virtual environment of their own (Debian's Python does not
  # take pip installs system-wide): a third-party VBAN sender, Prometheus' own parser of the
  # metrics text format, and onnx + numpy for scripts/export-yamnet-onnx.py (YAMNet in OpenCV dnn,
  # actors/models/tests/yamnet_bench.rs).
  VENV="$HOME/.cache/cav-test-venv"
  if ! "$VENV/bin/python" -c "import aiovban, prometheus_client, onnx, numpy" 2>/dev/null; then
    echo "setup: installing aiovban==1.1.1 prometheus-client==0.21.1 onnx==1.17.0 numpy==2.1.3 into $VENV"
    [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q aiovban==1.1.1 prometheus-client==0.21.1 onnx==1.17.0 numpy==2.1.3
  fi
  export CAV_TEST_PYTHON="$VENV/bin/python"
  # playwright-core for the browser tests, exactly as locked; it drives Debian's chromium, so
  # no browser is downloaded (--ignore-scripts). The locked version runs on Node.js 18 (Debian
  # 12's nodejs) and newer.
  node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if ((node_major < 18)); then
    echo "setup: Node.js $(node --version 2>/dev/null || echo '(none)') is too old for the browser tests (tests/ui): 18 or newer is needed" >&2
    exit 1
  fi
  UI_TESTS="$(cd "$(dirname "${BASH_SOURCE[0]}")/../tests/ui" && pwd)"
  # Installed and locked versions of playwright-core ("" when missing): npm ci when they differ.
  ui_version() { node -p "try { const j = require('$1'); ($2) || '' } catch { '' }" 2>/dev/null; }
  locked=$(ui_version "$UI_TESTS/package-lock.json" "j.packages['node_modules/playwright-core'].version")
  installed=$(ui_version "$UI_TESTS/node_modules/playwright-core/package.json" "j.version")
  if [[ -z "$installed" || "$installed" != "$locked" ]]; then
    echo "setup: npm ci in tests/ui (playwright-core ${locked:-?}${installed:+, replacing $installed})"
    (cd "$UI_TESTS" && npm ci --ignore-scripts --no-audit --no-fund)
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    # Debian 12's own rustc is too old for the dependencies; use rustup's stable toolchain.
    echo "setup: installing the Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
