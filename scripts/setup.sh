#!/usr/bin/env bash
# Installs what classify-audio-video needs to build (and, with --test, to run its tests) on
# Debian 12. Safe to run again: it installs only what is missing.
set -euo pipefail

BUILD_PKGS=(build-essential pkg-config clang libclang-dev libopencv-dev libasound2-dev ca-certificates curl)
# Test peers: python3 runs the webhook receiver; OBS Studio + Xvfb are the real OBS for the
# OBS tests; ffmpeg (ffprobe) checks media files.
TEST_PKGS=(python3 obs-studio xvfb x11-utils ffmpeg)

want=("${BUILD_PKGS[@]}")
if [[ "${1:-}" == "--test" ]]; then
  want+=("${TEST_PKGS[@]}")
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
