#!/usr/bin/env bash
# Crash trials (FAILURE-CLASSES 16): `cairn index` killed with SIGKILL at random moments while
# the folder changes between runs; after each restart the store, SQLite and the disk are
# compared with `cairn check --disk`. Prints one line per trial and the totals.
# Usage: scripts/crash_trials.sh [TRIALS]   (default 100; CI runs 3 through scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn/target}"
export CAIRN_MODELS_DIR="${CAIRN_MODELS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/cairn/models}"
export CAIRN_CRASH_TRIALS="${1:-100}"
cargo test --workspace --test crash -- --nocapture 2>&1 | grep -E "^(trial|crash trials|test result)"
