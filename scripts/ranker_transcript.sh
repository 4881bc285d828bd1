#!/usr/bin/env bash
# The ranker registry from the command line: feedback on searches over a small team folder
# trains a ranker that is promoted; with a golden set that insists on the old handbook, the
# next candidate is rejected because it would regress it; a rollback returns to the previous
# version. Prints a Markdown transcript (docs/transcripts/ranker.md holds one).
# Usage: scripts/ranker_transcript.sh [CAIRN_BINARY]
set -euo pipefail
cairn="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/cairn/target}/debug/cairn}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
team="$work/team"; mkdir -p "$team"
cat > "$team/handbook-2019.md" <<'EOF'
# Employee handbook 2019

## Leave

Leave days: every employee has 20 leave days a year. Leave days are requested from your manager.
Unused leave days expire. Leave days and holidays are counted in working days.
EOF
cat > "$team/time-off-policy.md" <<'EOF'
# Time off policy (current)

Staff get 25 days of paid time off each year, booked in the HR portal. Up to five unused days
carry over to March. Sickness is reported to HR on the first day.
EOF
printf '# Expenses\n\nTravel and meals are reimbursed within 30 days when receipts are attached.\n' > "$team/expenses.md"
printf '# Security\n\nLaptops use full-disk encryption. Passwords are at least 14 characters.\n' > "$team/security.md"
c() { "$cairn" --data-dir "$work/data" "$@"; }
run() {
  local shown=""
  for a in "$@"; do case "$a" in *" "*|*"?"*|*"'"*) shown+=" \"$a\"" ;; *) shown+=" $a" ;; esac; done
  printf '\n$ cairn%s\n' "${shown//$work\//}"
  c "$@" 2>&1 | sed "s|$work/||g"
}
c add "$team" >/dev/null
c index >/dev/null 2>&1
python3 - "$work/data/settings.toml" <<'EOF'
import sys
open(sys.argv[1], "a").write("\n[learning]\nretrain_every = 0\n")
EOF
# A user who asks about leave, reads the sources, and marks the current policy useful and the
# old handbook not useful, question after question.
judge() {
  local json event
  json=$(c --json search "$1" -k 4)
  event=$(printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["event_id"])')
  printf '%s' "$json" | python3 -c '
import json, sys
for n, h in enumerate(json.load(sys.stdin)["hits"], 1):
    name = h["path"].rsplit("/", 1)[-1]
    if name == "time-off-policy.md": print(n, "useful")
    elif name == "handbook-2019.md": print(n, "not-useful")' | while read -r n what; do
    c feedback "$event" "$what" "$n" >/dev/null
  done
}
echo '```'
run search "how many days of leave can I take" -k 2
printf '\n# ten questions about leave, each judged: the current policy useful, the 2019 handbook not useful\n'
for q in "how many leave days do I get" "leave days per year" "can I carry over unused leave days" \
  "how do I request leave days" "annual leave allowance" "how much leave do employees have" \
  "what happens to unused leave" "where do I book my leave" "leave days for staff" "number of holidays per year"; do
  judge "$q"
done
run learn
run search "how many days of leave can I take" -k 2
printf '{"question": "leave days", "expected": ["handbook-2019.md"]}\n' > "$work/golden.jsonl"
python3 - "$work/data/settings.toml" "$work/golden.jsonl" <<'EOF'
import sys
p = sys.argv[1]
s = open(p).read().replace("[learning]\n", f"[learning]\ngolden_set = \"{sys.argv[2]}\"\n")
open(p, "w").write(s)
EOF
printf '\n# a golden set that insists on the 2019 handbook for "leave days"\n'
run eval golden "$work/golden.jsonl"
run ranker rollback
judge "paid time off days"
run learn
run ranker list
echo '```'
