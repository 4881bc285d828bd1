#!/usr/bin/env bash
# A short session that exercises the cost ledger from the command line: the bundled local
# model, a priced provider (a scripted OpenAI-compatible server on loopback, the
# `demo_provider` example), a cache hit, a stream cancelled with Ctrl-C (SIGINT), and a call
# refused by the budget; then `cairn costs` and the ledger's rows. Prints a Markdown
# transcript (docs/transcripts/costs.md holds one, with the dollars checked by hand).
# Usage: scripts/costs_transcript.sh   (after scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$HOME/.cache/cairn/target}"
cairn="$target/debug/cairn"; demo="$target/debug/examples/demo_provider"
[ -x "$demo" ] || { echo "build first: cargo test --workspace --no-run" >&2; exit 1; }
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
"$demo" "$port" > "$work/demo.url" &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/notes"
printf '# Heron division\n\nThe Heron division reported quarterly revenue of 4.2 million dollars.\n' > "$work/notes/heron.md"
printf '# Ferry\n\nThe ferry to Aldersey leaves at 07:40 from pier 3.\n' > "$work/notes/ferry.md"
c() { "$cairn" --data-dir "$work/data" "$@"; }
run() {
  local shown=""
  for a in "$@"; do case "$a" in *" "*|*"?"*|*"'"*) shown+=" \"$a\"" ;; *) shown+=" $a" ;; esac; done
  printf '\n$ cairn%s\n' "${shown//$work\//}"
  c "$@" 2>&1 | sed "s|$work/||g"
}
sleep 1
c add "$work/notes" >/dev/null
c index >/dev/null 2>&1
echo '```'
run providers add demo --kind openai --base-url "http://127.0.0.1:$port/v1" --model scripted-model --input-price 2.5 --output-price 10
run ask --provider local --max-tokens 48 "When does the ferry leave?"
run ask --provider demo "What was the Heron division's quarterly revenue?"
run ask --provider demo "What was the Heron division's quarterly revenue?"
printf '\n$ cairn ask --provider demo "Describe the ferry timetable in detail."   # Ctrl-C after 3 s\n'
"$cairn" --data-dir "$work/data" ask --provider demo --no-cache "Describe the ferry timetable in detail." > "$work/cancel.out" 2>&1 &
asker=$!
sleep 3
kill -INT "$asker"; wait "$asker" || true
sed "s|$work/||g" "$work/cancel.out"
run budget set --daily 0.0001
run ask --provider demo --no-cache "When does the ferry leave?" || true
run costs --by provider
run costs --by model
run costs --calls
echo '```'
