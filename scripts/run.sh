#!/usr/bin/env bash
# Builds and runs the daemon on Debian 12, installing what the build needs first.
# With no arguments it runs on the built-in default: the demo clip played as a live source,
# API on http://127.0.0.1:5000. Extra arguments go to `cav` (e.g. `run --config FILE`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cav-target}"
cargo build --release --locked --bin cav
exec "$CARGO_TARGET_DIR/release/cav" "$@"
