#!/usr/bin/env bash
# Resident memory (VmRSS) of the desktop app left idle on a data directory: the cairn-app
# process and its WebKit children (WebKitNetworkProcess, WebKitWebProcess), sampled every
# INTERVAL seconds, SAMPLES times. Runs under its own Xvfb.
#
#   scripts/app_rss.sh DATA_DIR [SAMPLES=4] [INTERVAL=30]
#
# Uses the built app ($CARGO_TARGET_DIR/debug/cairn-app; `scripts/app.sh build` first).
set -euo pipefail
data=${1:?usage: scripts/app_rss.sh DATA_DIR [SAMPLES] [INTERVAL]}
samples=${2:-4}
interval=${3:-30}
target=${CARGO_TARGET_DIR:-$HOME/.cache/cairn/target}
export CAIRN_MODELS_DIR="${CAIRN_MODELS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/cairn/models}"
export ORT_DISABLE_TELEMETRY=1

n=90; while [ -e "/tmp/.X11-unix/X$n" ]; do n=$((n + 1)); done
Xvfb ":$n" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
sleep 1
DISPLAY=":$n" CAIRN_DATA_DIR="$data" "$target/debug/cairn-app" >/dev/null 2>&1 &
app=$!
trap 'kill "$app" 2>/dev/null || true; sleep 1; kill "$xvfb" 2>/dev/null || true' EXIT

for i in $(seq "$samples"); do
  sleep "$interval"
  pids="$app"
  for c in $(pgrep -P "$app" || true); do pids="$pids $c $(pgrep -P "$c" | tr '\n' ' ' || true)"; done
  total=0; line="t=$((i * interval))s"
  for p in $pids; do
    [ -r "/proc/$p/status" ] || continue
    kb=$(awk '/^VmRSS/{print $2}' "/proc/$p/status")
    total=$((total + kb)); line="$line $(cat "/proc/$p/comm")=${kb}kB"
  done
  echo "$line total=${total}kB app-cpu=$(ps -o %cpu= -p "$app" | tr -d ' ')%"
done
