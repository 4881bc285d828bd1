#!/usr/bin/env bash
# Measures what BENCHMARKS.md reports, on this machine, in one run:
#   1. indexing the 20 SEC 10-Q filings (1,037 PDF pages) from scratch: wall time, passages/s;
#   2. the same index again with nothing changed: wall time and passages embedded (should be 0);
#   3. source-file hit rate of `cairn search` on the filings' questions;
#   4. retrieval quality on SciFact (test split): nDCG@10 and Recall@100, hybrid/vector/text.
# Usage: scripts/bench.sh [SHARED_DATA_DIR]   (default ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn/target}"
export CAIRN_MODELS_DIR="${CAIRN_MODELS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/cairn/models}"
shared="${1:-../shared/data}"
cargo test --workspace --no-run -q  # same build as the tests: no second compile of LanceDB
cairn="$CARGO_TARGET_DIR/debug/cairn"
work=$(mktemp -d /tmp/cairn-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(date -u +%F)"
echo "== 1. index $shared/docugami-sec-10-q/docs from scratch"
"$cairn" --data-dir "$work/sec" add "$shared/docugami-sec-10-q/docs" >/dev/null
/usr/bin/time -f "wall %e s, max RSS %M KiB" "$cairn" --json --data-dir "$work/sec" index > "$work/first.json"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(f\"files {r['indexed']}, passages {r['chunks_written']}, embedded {r['chunks_embedded']}, {r['seconds']:.1f}s, {r['chunks_embedded']/r['seconds']:.1f} passages/s\")" "$work/first.json"

echo "== 2. index again, nothing changed"
/usr/bin/time -f "wall %e s, max RSS %M KiB" "$cairn" --json --data-dir "$work/sec" index > "$work/second.json"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(f\"unchanged {r['unchanged']}, embedded {r['chunks_embedded']}, {r['seconds']:.2f}s\")" "$work/second.json"

echo "== 3. source-file hit rate on qna_data_mini.csv (top 5 of cairn search)"
python3 scripts/eval_docugami.py "$cairn" "$work/sec" "$shared/docugami-sec-10-q/qna_data_mini.csv" | tail -1

echo "== 4. SciFact test split"
/usr/bin/time -f "wall %e s, max RSS %M KiB" "$cairn" --data-dir "$work/scifact" eval beir "$shared/scifact"
