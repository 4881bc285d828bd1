#!/usr/bin/env bash
# The LLM layer's own overhead per question and a cache hit's latency (BENCHMARKS.md), against
# a provider on loopback, with a raw HTTP request as the reference in the same run.
# Usage: scripts/bench_llm_layer.sh [CALLS]   (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn/target}"
export CAIRN_MODELS_DIR="${CAIRN_MODELS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/cairn/models}"
cargo test --workspace --no-run -q  # the same build as the tests (examples included)
"$CARGO_TARGET_DIR/debug/examples/bench_llm_layer" "${1:-50}"
