#!/usr/bin/env bash
# Runs every test of classify-audio-video on Debian 12, installing what the tests need first.
# Usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh --test
# Build outputs live outside the clone so that a fresh clone reuses them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cav-target}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Library, binary and integration tests (the crates have no doc tests).
set +e
cargo test --workspace --locked --no-fail-fast --lib --bins --tests "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line with the totals over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "totals: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
