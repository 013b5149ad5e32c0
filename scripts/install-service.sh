#!/usr/bin/env bash
# Installs classify-audio-video as a systemd service on Debian 12 (run as root, from a clone):
#   - builds the release binary (scripts/setup.sh installs the build dependencies) and installs
#     it as /usr/local/bin/cav;
#   - creates the system user "cav" (in group "audio" for ALSA microphones);
#   - writes /etc/classify-audio-video/config.toml from config/default.toml if there is none (an
#     existing one is kept), owned by root and readable by the service;
#   - installs config/classify-audio-video.service, checks it with systemd-analyze verify,
#     reloads systemd and enables and starts the service.
# Data lives in /var/lib/classify-audio-video (systemd's StateDirectory). Re-running upgrades the
# binary and the unit and restarts the service; the config and the data are kept.
#   --no-start   install and enable, but do not (re)start now
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
  echo "install-service: run as root (sudo $0)" >&2
  exit 1
fi
START=1
[[ "${1:-}" == "--no-start" ]] && START=0

bash scripts/setup.sh
# shellcheck disable=SC1091
source "$HOME/.cargo/env" 2>/dev/null || true
cargo build --release --locked
install -m 0755 target/release/cav /usr/local/bin/cav

if ! id cav >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/classify-audio-video --no-create-home \
    --shell /usr/sbin/nologin --groups audio cav
fi

install -d -m 0750 -o root -g cav /etc/classify-audio-video
if [[ ! -e /etc/classify-audio-video/config.toml ]]; then
  # The service sets the data folder itself; everything else starts from the defaults.
  install -m 0640 -o root -g cav config/default.toml /etc/classify-audio-video/config.toml
fi
# The daemon saves source changes made through the API into its config file.
chown cav:cav /etc/classify-audio-video/config.toml

install -d /usr/local/share/doc/classify-audio-video
install -m 0644 README.md /usr/local/share/doc/classify-audio-video/README.md
install -m 0644 config/classify-audio-video.service /etc/systemd/system/classify-audio-video.service
systemd-analyze verify /etc/systemd/system/classify-audio-video.service
systemctl daemon-reload
systemctl enable classify-audio-video.service
if ((START)); then
  systemctl restart classify-audio-video.service
  systemctl --no-pager status classify-audio-video.service || true
fi
echo "install-service: done. Logs: journalctl -u classify-audio-video -f"
