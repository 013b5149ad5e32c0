#!/usr/bin/env bash
# Measures the live daemon's CPU use: the release build on the file source (video at
# video.analysis_fps = 5 frames a second, audio from the same file as the one source, YAMNet and
# vision at their defaults), sampled from /proc over a steady period after a warm-up.
# Usage: scripts/bench-cpu.sh [MEDIA_FILE] [SECONDS]   (default: the demo clip, 60 s)
set -euo pipefail
cd "$(dirname "$0")/.."
media="${1:-data/demo/demo.mp4}"
seconds="${2:-60}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cav-target}"
cargo build --release --locked --bin cav >&2
data=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
CAV_HTTP__BIND=127.0.0.1:0 CAV_STORAGE__DATA_DIR="$data" CAV_FILE__PATH="$(realpath "$media")" \
  CAV_CLASSIFIER__WINDOW_S=10 CAV_LOG__LEVEL=warn "$CARGO_TARGET_DIR/release/cav" run &
pid=$!
ticks=$(getconf CLK_TCK)
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
sleep 15 # models loaded, first windows done
t0=$(date +%s.%N); c0=$(cpu)
sleep "$seconds"
t1=$(date +%s.%N); c1=$(cpu)
rss=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")
awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v hz="$ticks" -v rss="$rss" -v f="$media" \
  'BEGIN { printf "%s: %.1f %% of one core over %.0f s (user+system), RSS %.0f MiB, %d cores here\n", f, 100 * (c1 - c0) / hz / (t1 - t0), t1 - t0, rss / 1024, '"$(nproc)"' }'
