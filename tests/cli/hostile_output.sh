#!/usr/bin/env bash
# Hostile agent output against the built binary (issue 10, defects 3, 6c, 7
# and 9b): bytes that are not UTF-8 and a Latin-1 file name must not stop a
# run or break its JSON; escape sequences from an agent must never reach the
# terminal raw; a second run on a workspace in use is refused; an oversized
# task on stdin is refused without reading it all.
# Usage: hostile_output.sh <ai-orchestrator binary> <source dir>
set -u
bin=$1
src=$2
tmp=$(mktemp -d)
first_pid=
cleanup() {
  [ -n "$first_pid" ] && kill -KILL "$first_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/xdg NO_COLOR=1 LANG=C.UTF-8
mkdir -p "$HOME" "$XDG_CONFIG_HOME"
cd "$tmp" || exit 1
passed=0
failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() {
  echo "FAIL $1"
  failed=$((failed + 1))
  [ -n "${2:-}" ] && printf '%s\n' "$2" | head -c 4000 | cat -v
}
# Every run is bounded: a hang is a failure, not a stuck test.
bounded() { timeout -k 5 60 "$@"; }
valid_json() { python3 -c 'import json,sys; json.load(open(sys.argv[1], encoding="utf-8"))' "$1" 2>/dev/null; }
valid_utf8() { iconv -f UTF-8 -t UTF-8 "$1" >/dev/null 2>&1; }
has_esc() { grep -q $'\e' "$1"; }

agent=$src/tests/fakes/hostile-output
cat >"$tmp/hostile.yaml" <<YAML
agents:
  latin1:
    adapter: command
    command: $agent
    env_set: {HOSTILE_CASE: latin1}
    deadlines: {first_output: 10, idle: 10, total: 30}
  findings:
    adapter: command
    command: $agent
    env_set: {HOSTILE_CASE: findings}
    deadlines: {first_output: 10, idle: 10, total: 30}
  fakecodex:
    adapter: codex
    command: $agent
    env_set: {HOSTILE_CASE: codex}
    deadlines: {first_output: 10, idle: 10, total: 30}
workflows:
  default:
    - {agent: latin1, task: implement}
  review:
    - {agent: findings, task: review}
  tools:
    - {agent: fakecodex, task: implement}
settings: {kill_grace: 0.2, max_task_chars: 1000}
YAML

# 1. Bytes that are not UTF-8 in the output, stderr and a file name.
ws=$tmp/ws-latin1
bounded "$bin" run "bad bytes" --config "$tmp/hostile.yaml" --output "$ws" \
  >"$tmp/out1" 2>&1
rc=$?
if [ "$rc" = 0 ] && valid_json "$ws/.orchestrator/manifest.json" \
  && valid_utf8 "$tmp/out1" && grep -qF 'caf\xe9.txt' "$tmp/out1"; then
  ok "invalid UTF-8 and a Latin-1 file name: the run ends, manifest valid"
else
  fail "invalid UTF-8 and a Latin-1 file name: the run ends, manifest valid (exit $rc)" \
    "$(cat "$tmp/out1")"
fi
ws=$tmp/ws-latin1-json
bounded "$bin" run "bad bytes" --config "$tmp/hostile.yaml" --output "$ws" \
  --json >"$tmp/out1j" 2>"$tmp/err1j"
rc=$?
if [ "$rc" = 0 ] && valid_json "$tmp/out1j" && valid_utf8 "$tmp/err1j"; then
  ok "run --json with invalid UTF-8 prints valid JSON"
else
  fail "run --json with invalid UTF-8 prints valid JSON (exit $rc)" \
    "$(cat "$tmp/out1j" "$tmp/err1j")"
fi

# 2. Escape sequences in review findings: shown escaped in the summary.
bounded "$bin" run "review it" --config "$tmp/hostile.yaml" --workflow review \
  -m 1 --output "$tmp/ws-findings" >"$tmp/out2" 2>&1
rc=$?
if [ "$rc" = 0 ] && ! has_esc "$tmp/out2" && valid_utf8 "$tmp/out2" \
  && grep -qF 'app\x1b[2J.py:3' "$tmp/out2" && grep -qF '\u202e' "$tmp/out2" \
  && grep -qF '\u009b' "$tmp/out2"; then
  ok "escape sequences in findings never reach the terminal raw"
else
  fail "escape sequences in findings never reach the terminal raw (exit $rc)" \
    "$(cat "$tmp/out2")"
fi

# 3. Escape sequences in tool-call and file-change lines (live, --verbose).
bounded "$bin" run "use tools" --config "$tmp/hostile.yaml" --workflow tools \
  --verbose --output "$tmp/ws-tools" >"$tmp/out3" 2>&1
rc=$?
if [ "$rc" = 0 ] && ! has_esc "$tmp/out3" \
  && grep -qF 'srv\x1b]0;owned\x07.t\u202e' "$tmp/out3" \
  && grep -qF 'evil\x1b[31m.py' "$tmp/out3"; then
  ok "escape sequences in tool-call lines never reach the terminal raw"
else
  fail "escape sequences in tool-call lines never reach the terminal raw (exit $rc)" \
    "$(cat "$tmp/out3")"
fi

# 4. A version string that is not UTF-8.
bounded "$bin" agents --config "$tmp/hostile.yaml" --json >"$tmp/out4" 2>&1
rc=$?
if [ "$rc" = 0 ] && valid_json "$tmp/out4"; then
  ok "agents --json with a version that is not UTF-8 prints valid JSON"
else
  fail "agents --json with a version that is not UTF-8 prints valid JSON (exit $rc)" \
    "$(cat "$tmp/out4")"
fi
bounded "$bin" agents --config "$tmp/hostile.yaml" >"$tmp/out4t" 2>&1
rc=$?
if [ "$rc" = 0 ] && valid_utf8 "$tmp/out4t" && grep -qF '\xff\xfe' "$tmp/out4t"; then
  ok "agents shows a version that is not UTF-8 escaped"
else
  fail "agents shows a version that is not UTF-8 escaped (exit $rc)" \
    "$(cat "$tmp/out4t")"
fi

# 5. Two runs on one workspace: the second is refused, naming the first.
mkfifo "$tmp/pid.fifo"
cat >"$tmp/hang.yaml" <<YAML
agents:
  hang:
    adapter: command
    command: $src/tests/fakes/hang-agent
    env_set: {HANG_FIFO: "$tmp/pid.fifo"}
    deadlines: {first_output: 60, idle: 60, total: 60}
workflows:
  default:
    - {agent: hang, task: implement}
settings: {kill_grace: 0.2}
YAML
ws=$tmp/ws-locked
"$bin" run "first" --config "$tmp/hang.yaml" --output "$ws" >"$tmp/out5a" 2>&1 &
first_pid=$!
# The agent runs only after the workspace lock is taken.
agent_pid=$(timeout 30 cat "$tmp/pid.fifo")
first_id=$(sed -n 's/^Run \([0-9a-f-]*\): .*/\1/p' "$tmp/out5a")
before=$(cd "$ws" && find . -path ./.orchestrator/lock -prune -o -print | sort \
  && cat .orchestrator/manifest.json 2>/dev/null)
bounded "$bin" run "second" --config "$tmp/hang.yaml" --output "$ws" \
  >"$tmp/out5b" 2>&1
rc=$?
after=$(cd "$ws" && find . -path ./.orchestrator/lock -prune -o -print | sort \
  && cat .orchestrator/manifest.json 2>/dev/null)
if [ -n "$agent_pid" ] && [ -n "$first_id" ] && [ "$rc" = 2 ] \
  && grep -qF "$first_id" "$tmp/out5b" && [ "$before" = "$after" ]; then
  ok "a second run on a workspace in use is refused, naming the holder"
else
  fail "a second run on a workspace in use is refused, naming the holder (exit $rc, holder '$first_id')" \
    "$(cat "$tmp/out5b")"
fi
# Ctrl-C still stops the first run.
kill -INT "$first_pid"
for _ in $(seq 1 200); do kill -0 "$first_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$first_pid" 2>/dev/null; then
  fail "Ctrl-C stops the run holding the lock" "$(cat "$tmp/out5a")"
else
  wait "$first_pid"
  rc=$?
  first_pid=
  if [ "$rc" = 130 ]; then
    ok "Ctrl-C stops the run holding the lock"
  else
    fail "Ctrl-C stops the run holding the lock (exit $rc)" "$(cat "$tmp/out5a")"
  fi
fi
[ -n "$agent_pid" ] && kill -KILL "$agent_pid" 2>/dev/null

# 6. A task on stdin over settings.max_task_chars: refused after reading
# the limit, so the writer gets EPIPE long before its 64 MB are out.
head -c 64000000 /dev/zero | tr '\0' x \
  | bounded "$bin" run - --config "$tmp/hostile.yaml" --output "$tmp/ws-stdin" \
    >"$tmp/out6" 2>&1
statuses=("${PIPESTATUS[@]}")
if [ "${statuses[2]}" = 2 ] && [ "${statuses[1]}" != 0 ] \
  && grep -q max_task_chars "$tmp/out6" && [ ! -e "$tmp/ws-stdin" ]; then
  ok "an oversized task on stdin is refused without reading it all"
else
  fail "an oversized task on stdin is refused without reading it all (statuses ${statuses[*]})" \
    "$(cat "$tmp/out6")"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
