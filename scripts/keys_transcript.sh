#!/usr/bin/env bash
# API keys from the command line: a key stored with `cairn key set` (from standard input) into
# GNOME Keyring's Secret Service, used for a question to a provider on loopback (the
# demo_gateway example, told the key on its standard input so that it can say whether what it
# received matched), and then looked for everywhere it must not be: every file under the data
# folder and the temporary home (config, data, cache, runtime folders and the keyring's own
# file), every captured output and log, and the arguments and environment of every process
# while the session ran. Then the key is removed and the next question fails, saying so.
# Prints a Markdown transcript (docs/transcripts/keys.md holds one).
#
# Everything runs in a temporary home with its own D-Bus session bus and GNOME Keyring, both
# stopped and deleted at the end: the user's own keyring, bus and kernel keyring are never
# touched (CAIRN_KEYRING=secret-service, so no fallback to the kernel keyring either).
# Usage: scripts/keys_transcript.sh   (after scripts/setup.sh; needs dbus-daemon, dbus-send,
# gnome-keyring-daemon, ps)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$HOME/.cache/cairn/target}"
cairn="$target/debug/cairn"; gateway="$target/debug/examples/demo_gateway"
[ -x "$gateway" ] || { echo "build first: cargo test --workspace --no-run" >&2; exit 1; }
[ ! -e /etc/cairn/policy.toml ] || { echo "a system policy exists; this transcript needs a machine without one" >&2; exit 1; }
for tool in dbus-daemon dbus-send gnome-keyring-daemon ps; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
export CAIRN_MODELS_DIR="${CAIRN_MODELS_DIR:-$HOME/.local/share/cairn/models}"

work=$(mktemp -d)
pids=()
tee_pid=
cleanup() {
  local p
  set +e
  if [ -n "$tee_pid" ]; then exec >&-; wait "$tee_pid" 2>/dev/null || true; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE

# The temporary desktop session: home, XDG folders, a private bus, nothing inherited that
# could point Cairn at another key or keyring.
export HOME="$work/home"
export XDG_DATA_HOME="$HOME/.local/share" XDG_CONFIG_HOME="$HOME/.config" XDG_CACHE_HOME="$HOME/.cache"
export XDG_RUNTIME_DIR="$HOME/.run"
mkdir -p "$XDG_DATA_HOME" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$XDG_RUNTIME_DIR" "$work/logs" "$work/notes"
chmod 700 "$XDG_RUNTIME_DIR"
for v in $(compgen -e); do
  case "$v" in CAIRN_API_KEY_*|CAIRN_OPENAI_*|CAIRN_DATA_DIR|CAIRN_POLICY|OPENAI_API_KEY|ANTHROPIC_API_KEY|DISPLAY|WAYLAND_DISPLAY|GNOME_KEYRING_CONTROL|SSH_AUTH_SOCK) unset "$v" ;; esac
done
export CAIRN_KEYRING=secret-service
logs="$work/logs"

# A session bus that activates nothing (no service directories), as in crates/cairn-cli/tests/keys.rs.
cat > "$work/bus.conf" <<BUS
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$XDG_RUNTIME_DIR/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
BUS
{ read -r bus; read -r bus_pid; } < <(dbus-daemon --config-file="$work/bus.conf" --fork --print-address=1 --print-pid=1 2>"$logs/dbus.err")
pids+=("$bus_pid")
case "$bus" in unix:*) ;; *) echo "dbus-daemon printed no address" >&2; exit 1 ;; esac
export DBUS_SESSION_BUS_ADDRESS="$bus"

# GNOME Keyring's Secret Service; the login keyring is created, encrypted with this password
# (given on standard input), under $XDG_DATA_HOME/keyrings.
printf '%s' "login-password-for-the-transcript" |
  gnome-keyring-daemon --foreground --unlock --components=secrets >"$logs/keyring.out" 2>"$logs/keyring.err" &
pids+=("$!")
for _ in $(seq 200); do
  dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true' && break
  sleep 0.1
done

# The key: random, never an argument, never exported (so in no environment), never printed.
KEY="sk-cairn-demo-$(head -c 30 /dev/urandom | base64 | tr -dc A-Za-z0-9 | head -c 24)"
secret="${KEY#sk-cairn-demo-}"   # the random part, what the searches below look for
# `grep -f` reads the pattern from a pipe, so that grep's own arguments do not hold it.
holds_key() { grep "$@" -F -f <(printf '%s\n' "$secret"); }

# The arguments and environment of every process, sampled every 50 ms for the whole session.
( while :; do echo "--- sample"; ps axeww -o pid=,args=; sleep 0.05; done ) >"$logs/ps.log" 2>&1 &
sampler=$!
pids+=("$sampler")

port=$((20000 + RANDOM % 20000))
printf '%s\n' "$KEY" | "$gateway" "$port" "$logs/gateway.log" --key-from-stdin >"$logs/gateway.out" 2>"$logs/gateway.err" &
pids+=("$!")

n=0
c() { "$cairn" --data-dir "$work/data" "$@"; }
# Shows a command, runs it with its output (stdout and stderr) kept in a log of its own, and
# shows the output with the temporary folder's path and the port left out.
run() {
  local shown="" a
  for a in "$@"; do case "$a" in *" "*|*"?"*|*"'"*) shown+=" \"$a\"" ;; *) shown+=" $a" ;; esac; done
  shown="${shown//$work\//}"
  printf '\n$ cairn%s\n' "${shown//127.0.0.1:$port/127.0.0.1:PORT}"
  n=$((n + 1))
  c "$@" >"$logs/cairn-$n.log" 2>&1 || true
  sed "s|$work/||g; s|127.0.0.1:$port|127.0.0.1:PORT|g" "$logs/cairn-$n.log"
}

printf '# Heron division\n\nThe Heron division reported quarterly revenue of 4.2 million dollars.\n' > "$work/notes/heron.md"
printf '# Ferry\n\nThe ferry to Aldersey leaves at 07:40 from pier 3.\n' > "$work/notes/ferry.md"
sleep 1
c add "$work/notes" >"$logs/add.log" 2>&1
c index >"$logs/index.log" 2>&1

# The transcript is kept too, to search it with the rest.
exec > >(tee "$logs/transcript.md")
tee_pid=$!
echo '```'
echo '$ # a temporary HOME with its own D-Bus session bus and an unlocked GNOME Keyring; CAIRN_KEYRING=secret-service'
echo '$ cairn add notes && cairn index   # two short notes; output left out'
run providers add gw --kind openai --base-url "http://127.0.0.1:$port/v1" --model gpt-4o-mini --remote --input-price 0.15 --output-price 0.6
run providers use gw
echo
cat <<'SHOWN'
$ KEY="sk-cairn-demo-$(head -c 30 /dev/urandom | base64 | tr -dc A-Za-z0-9 | head -c 24)"   # never printed
$ printf '%s\n' "$KEY" | cairn key set gw   # printf is a shell builtin: the key is on stdin only
SHOWN
# The key reaches cairn 1 s after it starts, so that the running process can be looked at.
{ sleep 1; printf '%s\n' "$KEY"; } | "$cairn" --data-dir "$work/data" key set gw >"$logs/key-set.log" 2>&1 &
setter=$!
sleep 0.5
setter_args=$(tr '\0' ' ' < "/proc/$setter/cmdline"); setter_args="${setter_args% }"
setter_argv_hits=$(holds_key -c < "/proc/$setter/cmdline" || true)
setter_env_hits=$(tr '\0' '\n' < "/proc/$setter/environ" | holds_key -c || true)
wait "$setter" || true
sed "s|$work/||g" "$logs/key-set.log"
printf '$ # while it waited for the key, the process was: %s\n' "$(sed "s|$target/debug/||; s|$work/||g" <<<"$setter_args")"
printf '$ # key in its /proc/PID/cmdline: %s, in its /proc/PID/environ: %s\n' "$setter_argv_hits" "$setter_env_hits"
run key list
run ask "When does the ferry leave?"
run costs --calls
run status
sleep 0.3
kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
sleep 0.3

echo
echo '$ # what the gateway received (it was told the key on its stdin and logs it masked)'
grep -E '^(=== request|authorization:)' "$logs/gateway.log" | sed 's/^/    /'
printf '$ echo ${#KEY}\n%s\n' "${#KEY}"

echo
echo '$ # where the key is not: grep -rlF over every file (the random part of the key, 24 characters)'
count() { find "$@" -type f | wc -l; }
printf '%-58s %6s  %s\n' "searched" "files" "files holding the key"
for area in "data (--data-dir)|$work/data" "home/.config (XDG_CONFIG_HOME)|$XDG_CONFIG_HOME" \
  "home/.local/share (XDG_DATA_HOME, incl. keyrings/)|$XDG_DATA_HOME" "home/.cache (XDG_CACHE_HOME)|$XDG_CACHE_HOME" \
  "home/.run (XDG_RUNTIME_DIR)|$XDG_RUNTIME_DIR" "home (all of it)|$HOME" \
  "logs: every command's stdout+stderr, gateway, daemons, ps|$logs" "everything this session wrote|$work"; do
  label="${area%%|*}"; dir="${area#*|}"
  hits=$(holds_key -rl "$dir" 2>/dev/null | sed "s|$work/||g" | paste -sd, - || true)
  printf '%-58s %6s  %s\n' "$label" "$(count "$dir")" "${hits:-none}"
done
printf 'control: the same search over the line "Authorization: Bearer $KEY" finds %s\n' \
  "$(holds_key -c < <(printf 'Authorization: Bearer %s\n' "$KEY") || true)"
echo '$ ls -l home/.local/share/keyrings/   # the Secret Service keeps the key here, encrypted'
ls -l "$XDG_DATA_HOME/keyrings" | sed 1d | awk '{print "    " $1, $5, $NF}'
echo
echo '$ # the arguments and environment of every process (ps axeww), every 50 ms'
samples=$(grep -c '^--- sample' "$logs/ps.log" || true)
in_samples() { awk -v c="$1" '/^--- sample/{s++} index($0, c){hit[s]=1} END{n=0; for (k in hit) n++; print n}' "$logs/ps.log"; }
printf 'samples: %s; with a cairn process running: %s, of them with `cairn key set gw` waiting for the key: %s\n' \
  "$samples" "$(in_samples "$cairn --data-dir")" "$(in_samples "$cairn --data-dir $work/data key set gw")"
printf 'lines holding the key: %s\n' "$(holds_key -c "$logs/ps.log" || true)"

run key remove gw
run ask --no-cache "When does the ferry leave?"
sleep 0.3
echo
echo '$ # the last request the gateway received'
awk '/^=== request/{last=$0; getline auth; a=auth} END{print "    " last; print "    " a}' "$logs/gateway.log"
hits=$(holds_key -rl "$work" 2>/dev/null | sed "s|$work/||g" | paste -sd, - || true)
printf '$ # and again over everything this session wrote: %s files, holding the key: %s\n' "$(count "$work")" "${hits:-none}"
echo '```'
