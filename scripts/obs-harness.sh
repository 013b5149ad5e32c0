#!/usr/bin/env bash
# Starts and stops a real, headless OBS Studio (29, with obs-websocket 5.1) for the OBS tests.
#
#   scripts/obs-harness.sh start DIR MEDIA_FILE PORT [PASSWORD]
#   scripts/obs-harness.sh stop DIR
#
# `start` makes a fresh OBS configuration under DIR (from tests/data/obs/, with the scene's
# "Media" input playing MEDIA_FILE in a loop), starts Xvfb on a free display and OBS on it with
# obs-websocket listening on PORT (password-protected when PASSWORD is given), and returns once
# the port accepts connections. The pids go to DIR/xvfb.pid and DIR/obs.pid; OBS's output goes to
# DIR/obs.log. Several instances can run side by side with different DIRs and PORTs.
#
# `stop` sends SIGINT to OBS (its clean shutdown; SIGTERM makes OBS 29 exit abruptly), waits for it
# to exit (SIGKILL after 10 s), then stops Xvfb. Stopping a DIR that is not running is not an error.
#
# Needs: obs (Debian package obs-studio), Xvfb (xvfb). Works as root and without an X server.
set -euo pipefail

HERE="$(cd "$(dirname "$0")/.." && pwd)"
TEMPLATES="$HERE/tests/data/obs"

die() { echo "obs-harness: $*" >&2; exit 1; }

# True when something accepts TCP connections on 127.0.0.1:$1 (bash's /dev/tcp, no extra tools).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# True while pid $1 runs. A zombie counts as gone: the harness's children are reparented to
# PID 1 when the script exits, and in containers PID 1 may take seconds to reap them.
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
  local dir=$1 media=$2 port=$3 password=${4:-}
  command -v obs >/dev/null 2>&1 ||
    die "'obs' is not installed: run scripts/test.sh (it installs obs-studio, xvfb and x11-utils), or apt-get install -y obs-studio xvfb x11-utils"
  command -v Xvfb >/dev/null 2>&1 ||
    die "'Xvfb' is not installed: run scripts/test.sh (it installs obs-studio, xvfb and x11-utils), or apt-get install -y xvfb"
  [[ -f "$media" ]] || die "media file not found: $media"
  [[ "$port" =~ ^[0-9]+$ ]] || die "port must be a number, got '$port'"
  port_open "$port" && die "port $port is already in use"
  media=$(realpath "$media")

  mkdir -p "$dir"
  dir=$(realpath "$dir")
  local cfg="$dir/config"
  rm -rf "$cfg"
  mkdir -p "$cfg/obs-studio/basic/profiles/Test" "$cfg/obs-studio/basic/scenes"
  cp "$TEMPLATES/global.ini" "$cfg/obs-studio/global.ini"
  cp "$TEMPLATES/basic.ini" "$cfg/obs-studio/basic/profiles/Test/basic.ini"
  # '#' cannot appear in the path (it is the sed delimiter); realpath output rarely has one.
  [[ "$media" != *"#"* ]] || die "the media path must not contain '#': $media"
  sed "s#__MEDIA_FILE__#$media#" "$TEMPLATES/Test.json" >"$cfg/obs-studio/basic/scenes/Test.json"

  # Xvfb picks a free display itself and writes its number to fd 3 (-displayfd).
  rm -f "$dir/display"
  Xvfb -displayfd 3 -screen 0 1280x720x24 -nolisten tcp 3>"$dir/display" >"$dir/xvfb.log" 2>&1 &
  echo $! >"$dir/xvfb.pid"
  # Up to 30 s: on a loaded two-core machine Xvfb once took longer than 5 s to start.
  local n=300
  while [[ ! -s "$dir/display" ]] && ((n-- > 0)); do
    alive "$(cat "$dir/xvfb.pid")" || die "Xvfb exited: $(tail -5 "$dir/xvfb.log")"
    sleep 0.1
  done
  [[ -s "$dir/display" ]] || die "Xvfb did not report a display within 30 s: $(tail -5 "$dir/xvfb.log")"
  local display=":$(tr -d '[:space:]' <"$dir/display")"

  local args=(--multi --disable-updater --disable-missing-files-check --minimize-to-tray
    --collection Test --profile Test --scene Scene --websocket_port "$port")
  [[ -n "$password" ]] && args+=(--websocket_password "$password")
  # OBS resolves relative paths (data, plugins) from its working directory: run it from DIR.
  (cd "$dir" && DISPLAY=$display XDG_CONFIG_HOME=$cfg LIBGL_ALWAYS_SOFTWARE=1 QT_QPA_PLATFORM=xcb \
    exec obs "${args[@]}" >"$dir/obs.log" 2>&1) &
  echo $! >"$dir/obs.pid"

  # Without a display OBS exits with status 0, so wait for the port, not for the process.
  n=150
  while ! port_open "$port"; do
    if ! alive "$(cat "$dir/obs.pid")"; then
      stop "$dir" >/dev/null 2>&1 || true
      die "OBS exited before opening port $port; last lines of $dir/obs.log:
$(tail -20 "$dir/obs.log")"
    fi
    if ((n-- <= 0)); then
      stop "$dir" >/dev/null 2>&1 || true
      die "OBS did not open port $port within 15 s; last lines of $dir/obs.log:
$(tail -20 "$dir/obs.log")"
    fi
    sleep 0.1
  done
  echo "obs-harness: OBS (pid $(cat "$dir/obs.pid")) on display $display, websocket port $port"
}

stop() {
  local dir=$1 pid
  if [[ -f "$dir/obs.pid" ]]; then
    pid=$(cat "$dir/obs.pid")
    if alive "$pid"; then
      kill -INT "$pid" 2>/dev/null || true
      wait_exit "$pid" 100 || { kill -KILL "$pid" 2>/dev/null || true; wait_exit "$pid" 30 || true; }
    fi
    rm -f "$dir/obs.pid"
  fi
  if [[ -f "$dir/xvfb.pid" ]]; then
    pid=$(cat "$dir/xvfb.pid")
    if alive "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      wait_exit "$pid" 30 || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/xvfb.pid"
  fi
}

case "${1:-}" in
  start)
    (($# >= 4 && $# <= 5)) || die "usage: $0 start DIR MEDIA_FILE PORT [PASSWORD]"
    start "$2" "$3" "$4" "${5:-}"
    ;;
  stop)
    (($# == 2)) || die "usage: $0 stop DIR"
    stop "$2"
    ;;
  *)
    die "usage: $0 start DIR MEDIA_FILE PORT [PASSWORD] | $0 stop DIR"
    ;;
esac
