#!/usr/bin/env bash
# Starts and stops a private PulseAudio (no sound card, no system daemon) for the microphone tests.
#
#   scripts/pulse-harness.sh start DIR [OWNER_PID]
#   scripts/pulse-harness.sh stop DIR
#
# `start` runs `pulseaudio` as an ordinary user-space process with its runtime directory, home and
# ALSA configuration under DIR, and two null sinks:
#
#   vsink   48 kHz stereo ("VirtualSink");  its monitor source is vsink.monitor
#   vsink2  48 kHz stereo ("VirtualSink2"); its monitor source is vsink2.monitor
#
# plus module-always-sink. The default sink is vsink and the default source is vsink.monitor, so
# ALSA's `default` and `pulse` devices (via libasound2-plugins) record what is played into vsink.
# It also writes DIR/asoundrc, which gives each monitor its own ALSA capture device, so that
# cpal's ALSA host lists them and a program can pick one by name:
#
#   vsink_monitor   → PulseAudio source vsink.monitor
#   vsink2_monitor  → PulseAudio source vsink2.monitor
#
# The environment a client needs goes to DIR/env as `export NAME=VALUE` lines (source it in a
# shell; tests parse it): XDG_RUNTIME_DIR, PULSE_RUNTIME_PATH, PULSE_SERVER, HOME (PulseAudio
# keeps its cookie and state there) and ALSA_CONFIG_PATH (the system ALSA configuration plus
# DIR/asoundrc). The same lines are printed. `start` returns once the server answers `pactl info`.
# The server's pid goes to DIR/pulse.pid and its log to DIR/pulse.log. Several instances can run
# side by side with different DIRs. With OWNER_PID, a watchdog (pid in DIR/watchdog.pid) stops the
# server once that process has exited — a test binary cannot run cleanup code at its end.
#
# Play into a sink:   (. DIR/env; paplay --device=vsink2 tone.wav)
# Record a monitor:   (. DIR/env; parecord --device=vsink.monitor out.wav)
#
# `stop` sends SIGTERM (SIGKILL after 5 s) and removes the pid file. Stopping a DIR that is not
# running is not an error.
#
# Needs: pulseaudio, pactl (pulseaudio-utils) and the ALSA pulse plugin (libasound2-plugins):
#   apt-get install -y pulseaudio pulseaudio-utils libasound2-plugins
# Works as root and without D-Bus (PulseAudio's warnings about both are harmless).
set -euo pipefail

INSTALL="apt-get install -y pulseaudio pulseaudio-utils libasound2-plugins"

die() { echo "pulse-harness: $*" >&2; exit 1; }

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

# The system's ALSA top-level configuration (it pulls in /etc/asound.conf and alsa.conf.d,
# where libasound2-plugins routes `default` to PulseAudio).
system_alsa_conf() {
  local f
  for f in /usr/share/alsa/alsa.conf /etc/alsa/alsa.conf; do
    [[ -f "$f" ]] && { echo "$f"; return; }
  done
  die "no ALSA configuration found (/usr/share/alsa/alsa.conf); is libasound2 installed?"
}

start() {
  local dir=$1 owner=${2:-}
  [[ -z "$owner" || "$owner" =~ ^[0-9]+$ ]] || die "OWNER_PID must be a number, got '$owner'"
  command -v pulseaudio >/dev/null 2>&1 || die "'pulseaudio' is not installed: $INSTALL"
  command -v pactl >/dev/null 2>&1 || die "'pactl' is not installed: $INSTALL"
  compgen -G "/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so" >/dev/null ||
    die "the ALSA pulse plugin is not installed: $INSTALL"

  mkdir -p "$dir"
  dir=$(realpath "$dir")
  if [[ -f "$dir/pulse.pid" ]] && alive "$(cat "$dir/pulse.pid")"; then
    die "a PulseAudio from this harness already runs in $dir (pid $(cat "$dir/pulse.pid"))"
  fi
  mkdir -p "$dir/run" "$dir/home"
  chmod 700 "$dir/run"
  rm -rf "$dir/run/pulse"

  cat >"$dir/asoundrc" <<'EOF'
# Written by scripts/pulse-harness.sh: one ALSA capture device per PulseAudio monitor source,
# so that ALSA clients (cpal) can choose a source by device name.
pcm.vsink_monitor {
    type pulse
    device "vsink.monitor"
    hint { show on description "Monitor of VirtualSink (PulseAudio vsink.monitor)" }
}
pcm.vsink2_monitor {
    type pulse
    device "vsink2.monitor"
    hint { show on description "Monitor of VirtualSink2 (PulseAudio vsink2.monitor)" }
}
EOF

  cat >"$dir/env" <<EOF
export XDG_RUNTIME_DIR=$dir/run
export PULSE_RUNTIME_PATH=$dir/run/pulse
export PULSE_SERVER=unix:$dir/run/pulse/native
export HOME=$dir/home
export ALSA_CONFIG_PATH=$(system_alsa_conf):$dir/asoundrc
EOF
  # shellcheck disable=SC1091
  . "$dir/env"

  # -n: no default.pa (nothing tries to find sound cards); the modules are loaded explicitly.
  pulseaudio -n --daemonize=no --exit-idle-time=-1 --use-pid-file=no --disable-shm=yes \
    --log-target=stderr \
    -L "module-native-protocol-unix auth-anonymous=1" \
    -L "module-null-sink sink_name=vsink rate=48000 channels=2 sink_properties=device.description=VirtualSink" \
    -L "module-null-sink sink_name=vsink2 rate=48000 channels=2 sink_properties=device.description=VirtualSink2" \
    -L "module-always-sink" \
    >"$dir/pulse.log" 2>&1 &
  echo $! >"$dir/pulse.pid"

  local n=100
  until [[ -S "$dir/run/pulse/native" ]] && pactl info >/dev/null 2>&1; do
    if ! alive "$(cat "$dir/pulse.pid")"; then
      rm -f "$dir/pulse.pid"
      die "pulseaudio exited; last lines of $dir/pulse.log:
$(tail -20 "$dir/pulse.log")"
    fi
    if ((n-- <= 0)); then
      stop "$dir" >/dev/null 2>&1 || true
      die "pulseaudio did not answer within 10 s; last lines of $dir/pulse.log:
$(tail -20 "$dir/pulse.log")"
    fi
    sleep 0.1
  done
  pactl set-default-sink vsink
  pactl set-default-source vsink.monitor
  if [[ -n "$owner" ]]; then
    # Detached from our stdout/stderr, so that a caller reading them to the end is not held up.
    # (A zombie owner counts as gone, as in `alive`.) If DIR has been removed meanwhile, `stop`
    # finds no pid file, so the server's pid is also remembered here.
    local server
    server=$(cat "$dir/pulse.pid")
    nohup bash -c "while [[ \$(awk '{print \$3}' /proc/$owner/stat 2>/dev/null || echo Z) != Z ]]; do sleep 1; done
      '$0' stop '$dir'
      if grep -qa pulseaudio /proc/$server/cmdline 2>/dev/null; then kill -TERM $server; fi" \
      </dev/null >/dev/null 2>&1 &
    echo $! >"$dir/watchdog.pid"
  fi
  echo "pulse-harness: PulseAudio (pid $(cat "$dir/pulse.pid")) with sinks vsink, vsink2; environment in $dir/env:"
  cat "$dir/env"
}

stop() {
  local dir=$1 pid
  if [[ -f "$dir/watchdog.pid" ]]; then
    pid=$(cat "$dir/watchdog.pid")
    # When the watchdog itself runs `stop`, it is our parent: it is ending anyway.
    [[ "$pid" != "$PPID" ]] && kill -TERM "$pid" 2>/dev/null || true
    rm -f "$dir/watchdog.pid"
  fi
  [[ -f "$dir/pulse.pid" ]] || return 0
  pid=$(cat "$dir/pulse.pid")
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_exit "$pid" 50 || { kill -KILL "$pid" 2>/dev/null || true; wait_exit "$pid" 30 || true; }
  fi
  rm -f "$dir/pulse.pid"
}

case "${1:-}" in
  start)
    (($# == 2 || $# == 3)) || die "usage: $0 start DIR [OWNER_PID]"
    start "$2" "${3:-}"
    ;;
  stop)
    (($# == 2)) || die "usage: $0 stop DIR"
    stop "$2"
    ;;
  *)
    die "usage: $0 start DIR [OWNER_PID] | $0 stop DIR"
    ;;
esac
