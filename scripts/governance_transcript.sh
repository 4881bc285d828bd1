#!/usr/bin/env bash
# Governance from the command line: an administrator's policy (given with $CAIRN_POLICY, as
# there is no /etc/cairn/policy.toml here), the refusals it produces, the privacy gate for a
# local-only folder, and the traffic a "remote" provider (the demo_gateway example on
# loopback, added with --remote as a cloud gateway would be) actually received. Prints a
# Markdown transcript (docs/transcripts/governance.md holds one).
# Usage: scripts/governance_transcript.sh   (after scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$HOME/.cache/cairn/target}"
cairn="$target/debug/cairn"; gateway="$target/debug/examples/demo_gateway"
[ -x "$gateway" ] || { echo "build first: cargo test --workspace --no-run" >&2; exit 1; }
[ ! -e /etc/cairn/policy.toml ] || { echo "a system policy exists; this transcript needs a machine without one" >&2; exit 1; }
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
"$gateway" "$port" "$work/traffic.log" > /dev/null &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/notes" "$work/hr"
printf '# Heron division\n\nThe Heron division reported quarterly revenue of 4.2 million dollars.\n' > "$work/notes/heron.md"
printf '# Ferry\n\nThe ferry to Aldersey leaves at 07:40 from pier 3.\n' > "$work/notes/ferry.md"
printf '# Bonuses\n\nThe Heron division bonus pool is 731,904 dollars, paid in March.\n' > "$work/hr/bonus.md"
cat > "$work/policy.toml" <<POLICY
[providers]
allowed_models = ["gpt-4o-mini"]
allowed_hosts = ["api.openai.com", "127.0.0.1"]

[budget]
daily_usd = 0.50

[privacy]
local_only = ["$work/hr/**"]

[locked]
"chat.provider" = "gw"

[confirm]
new_provider = true
POLICY
export CAIRN_POLICY="$work/policy.toml"
c() { "$cairn" --data-dir "$work/data" "$@"; }
run() {
  local shown=""
  for a in "$@"; do case "$a" in *" "*|*"?"*|*"'"*) shown+=" \"$a\"" ;; *) shown+=" $a" ;; esac; done
  shown="${shown//$work\//}"
  printf '\n$ cairn%s\n' "${shown//127.0.0.1:$port/127.0.0.1:PORT}"
  c "$@" 2>&1 | sed "s|$work/||g; s|127.0.0.1:$port|127.0.0.1:PORT|g" || true
}
sleep 1
c add "$work/notes" "$work/hr" >/dev/null
c index >/dev/null 2>&1
echo '```'
printf '$ cat policy.toml   # given with CAIRN_POLICY=policy.toml\n'
sed "s|$work/||g" "$work/policy.toml"
run policy show
run providers add gw --kind openai --base-url "http://127.0.0.1:$port/v1" --model gpt-4o --remote
run providers add gw --kind openai --base-url "https://llm.example.net/v1" --model gpt-4o-mini
run providers add gw --kind openai --base-url "http://127.0.0.1:$port/v1" --model gpt-4o-mini --input-price 0.15 --output-price 0.6 --remote
run providers add gw --kind openai --base-url "http://127.0.0.1:$port/v1" --model gpt-4o-mini --input-price 0.15 --output-price 0.6 --remote --yes
run providers use local
run local-only --off "$work/hr"
run status
run ask --sources 1 "When does the ferry leave?"
run ask --max-tokens 40 "How large is the Heron division bonus pool?"
printf '\n$ # settings.toml: [privacy] local_only_sources = "omit"\n'
sed -i 's/^local_only_sources = .*/local_only_sources = "omit"/' "$work/data/settings.toml"
grep -q '^local_only_sources' "$work/data/settings.toml" || printf '\n[privacy]\nlocal_only_sources = "omit"\n' >> "$work/data/settings.toml"
run ask "How large is the Heron division bonus pool?"
printf '\n$ CAIRN_POLICY=broken.toml cairn ask "When does the ferry leave?"   # a policy with a typo\n'
printf '[providers]\nremote_chat = "no"\n' > "$work/broken.toml"
CAIRN_POLICY="$work/broken.toml" "$cairn" --data-dir "$work/data" ask --sources 1 "When does the ferry leave?" 2>&1 | sed "s|$work/||g" || true
run policy check "$work/broken.toml"
sleep 0.3
echo
echo '$ # what the provider received: requests, and any with the local-only text'
printf 'requests received: %s\n' "$(grep -c '^=== request' "$work/traffic.log" || true)"
printf 'requests containing "731,904" or "bonus.md": %s\n' "$(awk '/^=== request/{n++} /731,904|bonus\.md/{hit[n]=1} END{c=0; for (k in hit) c++; print c}' "$work/traffic.log")"
echo '$ # the user message of each request'
awk '/^=== request/{print; show=0} /^--- user/{show=1; next} /^--- /{show=0} show' "$work/traffic.log" | sed 's/^/    /'
echo '```'
