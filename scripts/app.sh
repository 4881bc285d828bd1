#!/usr/bin/env bash
# The desktop app (Tauri 2 shell in src-tauri/, UI in ui/, tauri.conf.json and icons/ at the
# repository root).
#
#   scripts/app.sh deps    system packages for WebKitGTK (and Xvfb for headless runs)
#   scripts/app.sh build   builds the UI (when ui/package.json exists), then the app
#   scripts/app.sh dev     Vite's dev server + the app pointed at it (build.devUrl)
#   scripts/app.sh run     builds, then runs target/debug/cairn-app (under Xvfb without $DISPLAY)
#   scripts/app.sh e2e     builds, then drives the real window (tauri-driver + WebKitWebDriver) on a
#                          small generated folder (ui/e2e/); screenshots to docs/screenshots/
#   scripts/app.sh package [--debug]  the UI, then the Tauri bundler: a .deb under
#                          target/{release,debug}/bundle/deb (Tauri CLI from npm, cached)
#
# src-tauri is outside the root workspace (`cargo test --workspace` does not build Tauri); it
# shares the cargo target directory so the engine's dependencies compiled there are reused
# where their features agree.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn/target}"
export CAIRN_MODELS_DIR="${CAIRN_MODELS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/cairn/models}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
MANIFEST=src-tauri/Cargo.toml
APP="$CARGO_TARGET_DIR/debug/cairn-app"

step() { printf '\n==> %s\n' "$*"; }

deps() {
  step "system packages (WebKitGTK 4.1, GTK 3, Xvfb)"
  local pkgs=(libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libsoup-3.0-dev libjavascriptcoregtk-4.1-dev
              xvfb xauth webkit2gtk-driver)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
  fi
  if ! command -v tauri-driver >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/tauri-driver" ]; then
    step "tauri-driver (WebDriver server for the e2e run)"
    cargo install tauri-driver --locked
  fi
}

ui() {
  if [ -f ui/package.json ]; then
    step "UI (npm ci, npm run build)"
    (cd ui && npm ci && npm run build)
  elif [ ! -f ui/dist/index.html ]; then
    echo "ui/package.json is missing and there is no ui/dist: the app has no UI to show" >&2
    exit 1
  fi
}

build() {
  ui
  step "app (cargo build --manifest-path $MANIFEST)"
  cargo build --manifest-path "$MANIFEST"
  echo "built $APP"
}

# The Tauri CLI (prebuilt, from npm: seconds to install, where `cargo install tauri-cli` compiles
# for many minutes), cached outside the repository.
TAURI_CLI_DIR="${TAURI_CLI_DIR:-$HOME/.cache/cairn/tauri-cli}"
tauri_cli() {
  if [ ! -x "$TAURI_CLI_DIR/node_modules/.bin/tauri" ]; then
    step "Tauri CLI (npm @tauri-apps/cli@2 into $TAURI_CLI_DIR)"
    mkdir -p "$TAURI_CLI_DIR"
    npm install --prefix "$TAURI_CLI_DIR" --no-save --no-audit --no-fund @tauri-apps/cli@2
  fi
  "$TAURI_CLI_DIR/node_modules/.bin/tauri" "$@"
}

# The CLI wants tauri.conf.json next to the crate's Cargo.toml and resolves the bundle's relative
# paths from there, while tauri.conf.json stays at the root (tauri-build reads it through
# build.rs). So: a symlink in src-tauri/ for the run only, and the root-relative paths given
# absolute on the command line (merged over the file, for the bundler and tauri-build alike).
package() {
  ui
  local root=$PWD link=src-tauri/tauri.conf.json
  [ -e "$link" ] && [ ! -L "$link" ] && { echo "$link exists and is not our symlink" >&2; exit 1; }
  ln -sfn ../tauri.conf.json "$link"
  trap "rm -f '$root/$link'" EXIT
  local icons
  icons=$(python3 -c 'import json,sys; print(json.dumps([sys.argv[1]+"/"+i for i in json.load(open("tauri.conf.json"))["bundle"]["icon"]]))' "$root")
  local merge="{\"build\":{\"frontendDist\":\"$root/ui/dist\",\"beforeBuildCommand\":\"\"},\"bundle\":{\"icon\":$icons}}"
  step "bundle (tauri build ${*:-} --bundles deb)"
  (cd src-tauri && TAURI_APP_PATH="$root/src-tauri" TAURI_FRONTEND_PATH="$root/ui" \
     tauri_cli build --ci "$@" --bundles deb --config "$merge")
  local profile=release; [[ " $* " == *" --debug "* ]] && profile=debug
  ls -l "$CARGO_TARGET_DIR/$profile/bundle/deb/"*.deb
}

# The e2e run: a temporary data dir and a small real folder (Markdown and text notes and one
# PDF), a stand-in `xdg-open` first on PATH that logs what it is asked to open, Xvfb when there
# is no display, tauri-driver on :4444, then ui/e2e/app.e2e.mjs. Stops everything it started.
# Screenshots go to a temporary folder; `E2E_SHOTS=docs/screenshots scripts/app.sh e2e` refreshes
# the README's.
e2e() {
  build
  step "CLI (for the checks after the run)"
  # The test command's build (a plain `cargo build` can resolve features differently and
  # recompile LanceDB); a no-op when scripts/test.sh has just run it.
  cargo test --workspace --no-run >/dev/null
  local td; td="$(command -v tauri-driver || echo "$HOME/.cargo/bin/tauri-driver")"
  [ -x "$td" ] || { echo "tauri-driver missing: scripts/app.sh deps" >&2; exit 1; }
  command -v WebKitWebDriver >/dev/null || { echo "WebKitWebDriver missing: scripts/app.sh deps" >&2; exit 1; }

  [ -z "${E2E_SHOTS:-}" ] || E2E_SHOTS="$(cd "$(dirname "$E2E_SHOTS")" && pwd)/$(basename "$E2E_SHOTS")"
  E2E_TMP="$(mktemp -d /tmp/cairn-e2e.XXXXXX)"
  local tmp="$E2E_TMP"
  [ -n "$tmp" ] && [ -d "$tmp" ] || exit 1
  E2E_PIDS=()
  trap 'for p in "${E2E_PIDS[@]}"; do kill -- "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$E2E_TMP"' EXIT
  mkdir -p "$tmp/data" "$tmp/notes/travel" "$tmp/bin"
  cat >"$tmp/notes/travel/ferry.md" <<'NOTE'
# Lantern Harbor ferry

The Lantern Harbor ferry leaves at 7:40 in the morning from November to March (the winter
timetable), and at 6:15 from April to October. The crossing to Copper Island takes 55 minutes.
Tickets cost 12 euros for adults; bicycles travel free.
NOTE
  cat >"$tmp/notes/orchard.md" <<'NOTE'
# Orchard notes

The apple trees in the north orchard were pruned in February. Granite Meadow gets the first
harvest in late September; the pears follow two weeks later.
NOTE
  printf 'Budget 2026\nRent 950 a month, groceries 380, the ferry pass 45.\n' >"$tmp/notes/budget.txt"
  python3 scripts/e2e_pdf.py "$tmp/notes/compass.pdf" \
    "Compass Club meets on the first Tuesday of each month at the harbor library."
  # A citation opens through tauri-plugin-opener, which runs xdg-open: log the call instead.
  printf '#!/bin/sh\necho "$*" >>"%s"\n' "$tmp/opened.log" >"$tmp/bin/xdg-open"
  chmod +x "$tmp/bin/xdg-open"

  if [ -z "${DISPLAY:-}" ]; then
    # Xvfb picks a free display itself and writes its number once it is ready.
    Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>"$tmp/display" >"$tmp/xvfb.log" 2>&1 &
    E2E_PIDS+=($!)
    local w; for w in $(seq 100); do [ -s "$tmp/display" ] && break; sleep 0.1; done
    [ -s "$tmp/display" ] || { echo "Xvfb did not start:"; cat "$tmp/xvfb.log"; exit 1; }
    export DISPLAY=":$(head -n1 "$tmp/display")"
  fi
  export PATH="$tmp/bin:$PATH" CAIRN_DATA_DIR="$tmp/data" ORT_DISABLE_TELEMETRY=1
  # Its own process group, so the WebKitWebDriver and app it starts are stopped with it.
  setsid "$td" --port 4444 >"$tmp/tauri-driver.log" 2>&1 &
  local tdpid=$!
  E2E_PIDS+=("-$tdpid")
  local i up=0; for i in $(seq 50); do
    kill -0 "$tdpid" 2>/dev/null || break
    curl -fsS http://127.0.0.1:4444/status >/dev/null 2>&1 && { up=1; break; }
    sleep 0.2
  done
  if [ "$up" != 1 ] || ! kill -0 "$tdpid" 2>/dev/null; then
    echo "tauri-driver did not start on :4444 (is another one running?):"; cat "$tmp/tauri-driver.log"; exit 1
  fi

  step "e2e (ui/e2e/app.e2e.mjs)"
  local rc=0
  CAIRN_APP="$APP" CAIRN_CLI="$CARGO_TARGET_DIR/debug/cairn" E2E_FOLDER="$tmp/notes" \
    E2E_OPENER_LOG="$tmp/opened.log" E2E_SHOTS="${E2E_SHOTS:-$tmp/screenshots}" \
    timeout 600 node ui/e2e/app.e2e.mjs || rc=$?
  [ "$rc" -eq 0 ] || { echo "--- tauri-driver log"; tail -n 40 "$tmp/tauri-driver.log"; }
  return "$rc"
}

with_display() {
  if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
    "$@"
  else
    xvfb-run -a "$@"
  fi
}

case "${1:-}" in
  deps) deps ;;
  e2e) e2e ;;
  build) build ;;
  dev)
    [ -d ui/node_modules ] || (cd ui && npm ci)
    step "Vite dev server on :5173, then the app in dev mode"
    (cd ui && npm run dev) &
    vite=$!
    trap 'kill "$vite" 2>/dev/null || true' EXIT
    # The `dev` cfg makes the app load build.devUrl instead of the bundled ui/dist.
    cargo build --manifest-path "$MANIFEST" --no-default-features
    with_display "$APP"
    ;;
  package) shift; package "$@" ;;
  run)
    build
    shift
    with_display "$APP" "$@"
    ;;
  *)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
