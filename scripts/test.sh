#!/usr/bin/env bash
# Runs every test of classify-audio-video on Debian 12, installing what the tests need first.
# Usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh --test
# Build outputs live outside the clone so that a fresh clone reuses them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cav-target}"
cargo test --workspace --locked "$@"
