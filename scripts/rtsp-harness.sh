#!/usr/bin/env bash
# Starts and stops a real RTSP server (GStreamer's gst-rtsp-server, via tests/tools/gst_rtsp_server.py)
# for the RTSP source tests.
#
#   scripts/rtsp-harness.sh start DIR MEDIA_FILE PORT [--no-audio]
#   scripts/rtsp-harness.sh stop DIR
#
# `start` serves MEDIA_FILE (an MP4 with H.264 video and, unless --no-audio, AAC audio; passed
# through without re-encoding) at rtsp://127.0.0.1:PORT/cam1 over RTSP/TCP and RTP/UDP, and returns
# once the server has printed its `ready` line and the port accepts connections. The file plays
# once per session: at its end clients get end-of-stream, and a client connecting after that
# starts again from the beginning. The pid goes to DIR/server.pid, the output to DIR/server.log.
# Several servers can run side by side with different DIRs and PORTs.
#
# `stop` sends SIGTERM (SIGKILL after 5 s) and waits for the server to exit, so that the port is
# free again. Stopping a DIR that is not running is not an error.
#
# Needs the Debian packages python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base
# gstreamer1.0-plugins-good gstreamer1.0-plugins-bad (run with the system /usr/bin/python3,
# because `gi` comes from Debian). Works as root and without a display.
set -euo pipefail

HERE="$(cd "$(dirname "$0")/.." && pwd)"
SERVER="$HERE/tests/tools/gst_rtsp_server.py"
PACKAGES="python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad"

die() { echo "rtsp-harness: $*" >&2; exit 1; }

# True when something accepts TCP connections on 127.0.0.1:$1 (bash's /dev/tcp, no extra tools).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# True while pid $1 runs; a zombie counts as gone (PID 1 may be slow to reap orphans).
alive() {
  [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null || return 1
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ "$state" != "Z" ]]
}

# Waits up to $2 tenths of a second for pid $1 to exit.
wait_exit() {
  local pid=$1 n=$2
  while alive "$pid" && ((n-- > 0)); do sleep 0.1; done
  ! alive "$pid"
}

start() {
  local dir=$1 media=$2 port=$3 extra=${4:-}
  [[ -x /usr/bin/python3 ]] || die "/usr/bin/python3 is missing: apt-get install -y python3 $PACKAGES"
  /usr/bin/python3 -c 'import gi; gi.require_version("Gst", "1.0"); gi.require_version("GstRtspServer", "1.0"); from gi.repository import Gst, GstRtspServer' 2>/dev/null ||
    die "GStreamer's RTSP server for Python is not installed: run scripts/test.sh, or apt-get install -y $PACKAGES"
  [[ -f "$media" ]] || die "media file not found: $media"
  [[ "$port" =~ ^[0-9]+$ ]] || die "port must be a number, got '$port'"
  [[ -z "$extra" || "$extra" == "--no-audio" ]] || die "unknown option '$extra' (only --no-audio)"
  port_open "$port" && die "port $port is already in use"
  media=$(realpath "$media")
  mkdir -p "$dir"
  dir=$(realpath "$dir")

  # shellcheck disable=SC2086 # $extra is empty or one word
  /usr/bin/python3 -u "$SERVER" "$media" "$port" 127.0.0.1 $extra >"$dir/server.log" 2>&1 &
  echo $! >"$dir/server.pid"
  local n=100
  until grep -q '^ready ' "$dir/server.log" 2>/dev/null && port_open "$port"; do
    if ! alive "$(cat "$dir/server.pid")"; then
      die "the RTSP server exited before it was ready; last lines of $dir/server.log:
$(tail -20 "$dir/server.log")"
    fi
    if ((n-- <= 0)); then
      stop "$dir" >/dev/null 2>&1 || true
      die "the RTSP server was not ready within 10 s; last lines of $dir/server.log:
$(tail -20 "$dir/server.log")"
    fi
    sleep 0.1
  done
  echo "rtsp-harness: serving $media at rtsp://127.0.0.1:$port/cam1 (pid $(cat "$dir/server.pid"))"
}

stop() {
  local dir=$1 pid
  [[ -f "$dir/server.pid" ]] || return 0
  pid=$(cat "$dir/server.pid")
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_exit "$pid" 50 || { kill -KILL "$pid" 2>/dev/null || true; wait_exit "$pid" 30 || true; }
  fi
  rm -f "$dir/server.pid"
}

case "${1:-}" in
  start)
    (($# >= 4 && $# <= 5)) || die "usage: $0 start DIR MEDIA_FILE PORT [--no-audio]"
    start "$2" "$3" "$4" "${5:-}"
    ;;
  stop)
    (($# == 2)) || die "usage: $0 stop DIR"
    stop "$2"
    ;;
  *)
    die "usage: $0 start DIR MEDIA_FILE PORT [--no-audio] | $0 stop DIR"
    ;;
esac
