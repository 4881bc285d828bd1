#!/usr/bin/env bash
# Records what `cairn watch` prints while a folder is edited with vim (which, with
# backupcopy=no, saves by writing a new file and renaming it over the old one), a file is
# renamed, moved to another subfolder, and deleted; after each step `cairn search` shows what a
# user would find. Prints a Markdown transcript (docs/transcripts/watch.md holds one).
# Usage: scripts/watch_transcript.sh [CAIRN_BINARY]
set -euo pipefail
cairn="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/cairn/target}/debug/cairn}"
command -v vim >/dev/null || { echo "needs vim (apt-get install vim)" >&2; exit 1; }
work=$(mktemp -d)
trap 'kill "$watcher" 2>/dev/null || true; rm -rf "$work"' EXIT
notes="$work/notes"; data="$work/data"
mkdir -p "$notes/projects" "$notes/archive"
printf '# Harbour ferry\n\nThe ferry to Aldersey leaves at 07:40 from pier 3.\n' > "$notes/projects/ferry.md"
printf '# Budget\n\nThe lighthouse repair budget is 18,000 euros.\n' > "$notes/projects/budget.md"
c() { "$cairn" --data-dir "$data" "$@"; }
top() { c --json search "$1" -k 1 | python3 -c 'import json,sys; h=json.load(sys.stdin)["hits"]; print(h[0]["path"].split("/notes/")[1] + ": " + h[0]["text"].splitlines()[-1] if h else "(no hits)")'; }
step() { sleep "${2:-2.5}"; printf '\n$ %s\n' "$1"; }

c add "$notes" >/dev/null
c index >/dev/null 2>&1
"$cairn" --data-dir "$data" watch --rescan-minutes 0 > "$work/watch.log" 2>&1 &
watcher=$!
sleep 3

{
echo '```'
step "vim: change 07:40 to 08:15 in projects/ferry.md and save (backupcopy=no: vim writes a new file and renames it over the old one)" 0
ino_before=$(stat -c %i "$notes/projects/ferry.md")
vim -Nu NONE -i NONE -n -es -c 'set backupcopy=no writebackup backupskip=' -c '%s/07:40/08:15/' -c 'wq' "$notes/projects/ferry.md"
echo "(inode $ino_before -> $(stat -c %i "$notes/projects/ferry.md"): a new file renamed over the old one)"
step 'cairn search "when does the ferry leave" -k 1'
top "when does the ferry leave"
step "mv projects/budget.md projects/lighthouse-budget.md" 0
mv "$notes/projects/budget.md" "$notes/projects/lighthouse-budget.md"
step 'cairn search "lighthouse repair budget" -k 1'
top "lighthouse repair budget"
step "mv projects/lighthouse-budget.md archive/" 0
mv "$notes/projects/lighthouse-budget.md" "$notes/archive/"
step 'cairn search "lighthouse repair budget" -k 1'
top "lighthouse repair budget"
step "rm projects/ferry.md" 0
rm "$notes/projects/ferry.md"
step 'cairn search "when does the ferry leave" -k 1'
top "when does the ferry leave"
sleep 1
kill -INT "$watcher"; wait "$watcher" || true
echo
echo '$ cairn watch   # what it printed meanwhile, in a second terminal'
sed "s|$work/||g" "$work/watch.log"
echo
echo '$ cairn check --disk'
c check --disk | sed "s|$work/||g"
echo '```'
} 2>&1
