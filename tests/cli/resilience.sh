#!/usr/bin/env bash
# Retries, quota waits, circuit breakers and fallback agents through the
# binary (issue 12, parts 1-4), with fault-injecting fake agents
# (tests/fakes/quota-agent, flaky-agent, unauthenticated-agent):
# 1. two `run` processes with the same state directory: the first meets a
#    quota error with a reset time far beyond max_quota_wait and falls back;
#    the second goes straight to the fallback without invoking the first
#    agent; `agents` (and --json) shows its breaker open until that time;
# 2. an agent that crashes once is retried and the run succeeds; the
#    manifest and --json list both attempts, the display says "retry 2/2";
# 3. an agent that is not authenticated falls back at once;
# 4. a fallback naming an unknown agent, or the agent itself, is a config
#    error naming file, line and key.
# Usage: resilience.sh <ai-orchestrator binary> <source dir>
set -u
bin=$1
src=$2
fakes=$src/tests/fakes
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/xdg XDG_STATE_HOME=$tmp/xdg-state
export NO_COLOR=1
mkdir -p "$HOME" "$XDG_CONFIG_HOME"
passed=0
failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() {
  echo "FAIL $1"
  failed=$((failed + 1))
}
check() { # check NAME COMMAND...
  local name=$1
  shift
  if "$@"; then ok "$name"; else
    fail "$name"
    printf '%s\n' "$out" | head -40
  fi
}
# json_get FILE PYTHON-EXPR: prints the expression over the parsed file `j`.
json_get() {
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

state=$tmp/state
cat >"$tmp/quota.yaml" <<YAML
agents:
  claude:
    command: $fakes/quota-agent
    env_set: {FAKE_LOG: $tmp/claude.log, FAKE_RESET_IN: "10800"}
    fallback: [backup]
  backup:
    adapter: command
    command: $fakes/flaky-agent
    env_set: {FAKE_LOG: $tmp/backup.log}
  flaky:
    adapter: command
    command: $fakes/flaky-agent
    env_set: {FAKE_FAILS: "1", FAKE_COUNTER: $tmp/flaky.count}
    retry: {attempts: 2, base: 0.05, cap: 0.1}
  nologin:
    adapter: claude
    command: $fakes/unauthenticated-agent
    env_set: {FAKE_LOG: $tmp/nologin.log}
    fallback: backup
workflows:
  quota:
    - {agent: claude, task: implement}
  flaky:
    - {agent: flaky, task: implement}
  nologin:
    - {agent: nologin, task: implement}
settings:
  state_dir: $state
  max_quota_wait: 60
  kill_grace: 0.1
YAML
cfg=$tmp/quota.yaml

# -- 1. out of quota: fall back, and the next process goes straight there ----
out=$(timeout -s KILL 60 "$bin" run "Build it" --config "$cfg" \
  --workflow quota --output "$tmp/ws1" --json 2>"$tmp/run1.err" \
  >"$tmp/run1.json")
rc=$?
out=$(cat "$tmp/run1.err")
check "the first run succeeds through the fallback" test "$rc" -eq 0
check "the first run invoked claude once" test "$(wc -l <"$tmp/claude.log")" -eq 1
check "the first run invoked the fallback" test "$(wc -l <"$tmp/backup.log")" -eq 1
check "the progress says it falls back" \
  grep -q '↻ claude · implement: falling back to backup (rate_limited: claude: out of quota until' "$tmp/run1.err"
check "the step line names the agent that ran" \
  grep -q '✓ step 1/1  claude · implement  (.*)  1 file(s); ran as backup (rate_limited); 2 attempts' "$tmp/run1.err"
step1='j["iterations"][0]["steps"][0]'
check "--json names the agent that ran" \
  test "$(json_get "$tmp/run1.json" "$step1[\"ran_as\"]")" = backup
check "--json keeps the agent asked for" \
  test "$(json_get "$tmp/run1.json" "$step1[\"agent\"]")" = claude
check "--json says why it fell back" \
  grep -q '"fallback_reason": "rate_limited: claude: out of quota until' "$tmp/run1.json"
check "--json lists both attempts" \
  test "$(json_get "$tmp/run1.json" "[a['agent'] + ':' + a['failure'] for a in $step1['attempts']]")" \
  = "['claude:rate_limited', 'backup:none']"
manifest=$tmp/ws1/.orchestrator/manifest.json
check "the manifest names the agent that ran" \
  test "$(json_get "$manifest" "$step1[\"ran_as\"]")" = backup
check "the breaker is saved in the state directory" \
  test "$(json_get "$state/breakers/claude.json" 'j["state"]')" = open
until_ms=$(json_get "$state/breakers/claude.json" 'j["open_until_ms"]')
now_ms=$(($(date +%s) * 1000))
check "it stays open until the quota resets (in about 3 hours)" \
  test "$until_ms" -gt $((now_ms + 10700000)) -a "$until_ms" -lt $((now_ms + 10900000))

audit=$state/audit/audit.jsonl
check "the audit log names the agent that really ran" \
  test "$(python3 -c 'import json,sys
print(",".join(j["agent"] for j in map(json.loads, open(sys.argv[1])) if j["kind"] == "agent_invoked"))' "$audit")" = backup
check "the audit log records the opened circuit" \
  grep -q '"kind":"circuit_opened".*"agent":"claude"' "$audit"

out=$(timeout -s KILL 60 "$bin" run "Build it again" --config "$cfg" \
  --workflow quota --output "$tmp/ws2" --json 2>"$tmp/run2.err" \
  >"$tmp/run2.json")
rc=$?
out=$(cat "$tmp/run2.err")
check "the second run succeeds" test "$rc" -eq 0
check "the second run did not invoke claude at all" \
  test "$(wc -l <"$tmp/claude.log")" -eq 1
check "the second run went to the fallback" \
  test "$(wc -l <"$tmp/backup.log")" -eq 2
check "the second run says the circuit is open" \
  grep -q '"fallback_reason": "circuit_open: claude: circuit open: rate_limited' "$tmp/run2.json"

out=$(timeout -s KILL 60 "$bin" agents --config "$cfg" 2>&1)
until_text=$(date -d "@$((until_ms / 1000))" +%H:%M:%S)
# A reset time on another day than now is shown with its date.
until_day=$(date -d "@$((until_ms / 1000))" +%F)
check "agents shows the breaker open until the reset time" \
  grep -Eq "^claude .* open until ($until_day )?$until_text" <<<"$out"
check "agents shows why" \
  grep -Eq "^claude: circuit open until ($until_day )?$until_text: rate_limited" <<<"$out"
check "agents shows the other breakers closed" grep -Eq '^backup .* closed$' <<<"$out"
timeout -s KILL 60 "$bin" agents --config "$cfg" --json >"$tmp/agents.json" 2>&1
out=$(cat "$tmp/agents.json")
check "agents --json has the breaker state" \
  test "$(json_get "$tmp/agents.json" '[a["breaker"]["state"] for a in j if a["name"] == "claude"][0]')" = open
check "agents --json has the reset time" \
  test "$(json_get "$tmp/agents.json" '[a["breaker"]["open_until_ms"] for a in j if a["name"] == "claude"][0]')" = "$until_ms"

# -- 2. a crash is retried -----------------------------------------------------
out=$(timeout -s KILL 60 "$bin" run "Build it" --config "$cfg" \
  --workflow flaky --output "$tmp/ws3" 2>&1)
rc=$?
check "a run whose agent crashes once succeeds" test "$rc" -eq 0
check "the display shows the retry" \
  grep -q '↻ flaky · implement: retry 2/2 in 0\.[0-9]s (crashed: ' <<<"$out"
check "the agent ran twice" test "$(cat "$tmp/flaky.count")" -eq 2
check "the retry wrote its file" grep -q 'written on attempt 2' "$tmp/ws3/flaky.txt"
manifest=$tmp/ws3/.orchestrator/manifest.json
check "the manifest lists both attempts" \
  test "$(json_get "$manifest" "[a['failure'] for a in $step1['attempts']]")" \
  = "['crashed', 'none']"

# -- 3. not authenticated: falls back at once ------------------------------------
out=$(timeout -s KILL 60 "$bin" run "Build it" --config "$cfg" \
  --workflow nologin --output "$tmp/ws4" --json 2>&1 >"$tmp/run4.json")
rc=$?
check "a run whose agent is logged out succeeds through the fallback" test "$rc" -eq 0
check "the logged-out agent ran once (never retried)" \
  test "$(wc -l <"$tmp/nologin.log")" -eq 1
check "the reason is not_authenticated" \
  grep -q '"fallback_reason": "not_authenticated: ' "$tmp/run4.json"

# -- 4. bad fallbacks are config errors ------------------------------------------
cat >"$tmp/bad.yaml" <<YAML
agents:
  a:
    adapter: command
    command: $fakes/flaky-agent
    fallback: [a, nobody]
    retry: {attempts: 0}
workflows:
  w:
    - {agent: a, task: implement}
YAML
out=$("$bin" validate --config "$tmp/bad.yaml" 2>&1)
check "an agent as its own fallback is an error" \
  grep -q "bad.yaml:5:16: agents.a.fallback\[0\]: an agent cannot be its own fallback" <<<"$out"
check "an unknown fallback is an error" \
  grep -q "bad.yaml:5:19: agents.a.fallback\[1\]: unknown agent 'nobody' (known: a)" <<<"$out"
check "retry.attempts below 1 is an error" \
  grep -q "bad.yaml:6:23: agents.a.retry.attempts: must be at least 1, got 0" <<<"$out"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
