#!/usr/bin/env bash
# The audit log and the rate limiter through the binary (issue 12, parts 5, 7
# and 8): a whole run leaves one valid JSON object per line in
# <state>/audit/audit.jsonl with the expected kinds (run submitted, agent
# invoked, file written, path refused, run finished), the task text only with
# settings.audit.include_task, a link planted at the file is never followed;
# with rate_limiting {burst_size: 2} the third `run` in a row (three
# processes) is refused with the wait time and exit code 4, and spawns no
# agent; `run --json` lists the counters.
# Usage: audit_limits.sh <ai-orchestrator binary> <source dir>
set -u
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/xdg NO_COLOR=1
mkdir -p "$HOME" "$XDG_CONFIG_HOME"
passed=0
failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }
check() { # check NAME COMMAND...
  local name=$1
  shift
  if "$@"; then ok "$name"; else fail "$name"; fi
}
mode_of() { stat -c %a "$1" 2>/dev/null; }

# write_config FILE [EXTRA YAML...]
write_config() {
  local file=$1
  shift
  cat >"$file" <<YAML
agents:
  writer:
    adapter: command
    command: $src/tests/fakes/audit-writer
    env: [SPAWN_LOG]
    deadlines: {first_output: 10, idle: 10, total: 30}
workflows:
  default:
    - {agent: writer, task: implement}
YAML
  for extra in "$@"; do printf '%s\n' "$extra" >>"$file"; done
}

# run_one STATE CONFIG WORKSPACE [ARGS...] -> stdout in $out, stderr in $err,
# exit code in $rc
# --no-cache: every run spawns its agent (the step cache would replay the
# second run of the same task), so spawns and audited invocations are counted.
run_one() {
  local state=$1 cfg=$2 ws=$3
  shift 3
  out=$(XDG_STATE_HOME=$state SPAWN_LOG=$tmp/spawns timeout -s KILL 60 \
    "$bin" run "the secret task text" --config "$cfg" --output "$ws" --no-cache "$@" \
    2>"$tmp/err")
  rc=$?
  err=$(cat "$tmp/err")
}

# 1. A whole run, audited.
write_config "$tmp/plain.yaml"
run_one "$tmp/state1" "$tmp/plain.yaml" "$tmp/ws1"
audit=$tmp/state1/ai-orchestrator/audit/audit.jsonl
check "the run succeeds" test "$rc" -eq 0
check "the audit log exists" test -f "$audit"
check "the audit log is 0600" test "$(mode_of "$audit")" = 600
check "the audit folder is 0700" test "$(mode_of "$(dirname "$audit")")" = 700
kinds=$(python3 - "$audit" <<'PY'
import json, sys
kinds = []
for n, line in enumerate(open(sys.argv[1]), 1):
    obj = json.loads(line)
    assert isinstance(obj, dict), f"line {n} is not an object"
    for key in ("time", "user", "kind", "run_id"):
        assert key in obj, f"line {n} lacks {key}"
    kinds.append(obj["kind"])
print(" ".join(kinds))
PY
)
check "every line is a JSON object with time, user, kind and run id" test -n "$kinds"
expected="run_submitted agent_invoked file_written file_written path_refused run_finished"
if [ "$kinds" = "$expected" ]; then ok "the kinds, in order"; else
  fail "the kinds, in order"; echo "  got: $kinds"; echo "  want: $expected"; fi
check "the files written are named" grep -q '"kind":"file_written".*"path":"own.txt"' "$audit"
check "the refused path is named with its reason" \
  grep -q '"kind":"path_refused".*"path":"../escape.py".*"detail":"' "$audit"
check "the agent invocation has an argv hash" \
  grep -Eq '"kind":"agent_invoked".*"argv_sha256":"[0-9a-f]{64}"' "$audit"
check "the task is there as a hash" \
  grep -Eq '"kind":"run_submitted".*"task_sha256":"[0-9a-f]{64}"' "$audit"
check "the task text is not there" bash -c "! grep -q 'secret task text' '$audit'"
check "the OS user is recorded" grep -q "\"user\":\"$(id -un)\"" "$audit"
check "the run's end has its status" \
  grep -q '"kind":"run_finished".*"detail":"completed"' "$audit"

# 2. include_task keeps the text.
write_config "$tmp/with-task.yaml" "settings: {audit: {include_task: true}}"
run_one "$tmp/state2" "$tmp/with-task.yaml" "$tmp/ws2"
check "with include_task the run succeeds" test "$rc" -eq 0
check "with include_task the task text is there" \
  grep -q '"task":"the secret task text"' "$tmp/state2/ai-orchestrator/audit/audit.jsonl"

# 3. A link at audit.jsonl is not followed: the run goes on, unaudited, and
# says so.
mkdir -p "$tmp/state3/ai-orchestrator/audit"
chmod 700 "$tmp/state3/ai-orchestrator" "$tmp/state3/ai-orchestrator/audit"
echo precious >"$tmp/victim"
ln -s "$tmp/victim" "$tmp/state3/ai-orchestrator/audit/audit.jsonl"
run_one "$tmp/state3" "$tmp/plain.yaml" "$tmp/ws3"
check "with a planted link the run still succeeds" test "$rc" -eq 0
check "the link's target is untouched" test "$(cat "$tmp/victim")" = precious
check "the link is still a link" test -L "$tmp/state3/ai-orchestrator/audit/audit.jsonl"
if grep -q 'warning: the audit log is off: .*symlink' <<<"$err"; then
  ok "the refusal is reported"; else fail "the refusal is reported"; echo "$err"; fi

# 4. audit: {enabled: false} writes nothing.
write_config "$tmp/off.yaml" "settings: {audit: {enabled: false}}"
run_one "$tmp/state4" "$tmp/off.yaml" "$tmp/ws4"
check "with the audit off the run succeeds" test "$rc" -eq 0
check "with the audit off there is no audit file" \
  test ! -e "$tmp/state4/ai-orchestrator/audit/audit.jsonl"

# 5. The rate limit, shared by three processes in a row.
write_config "$tmp/limited.yaml" \
  "rate_limiting: {enabled: true, requests_per_minute: 1, burst_size: 2}"
rm -f "$tmp/spawns"
run_one "$tmp/state5" "$tmp/limited.yaml" "$tmp/ws5a" --json
check "the first limited run succeeds" test "$rc" -eq 0
cat >"$tmp/counters.py" <<'PY'
import json, sys
doc = json.load(sys.stdin)
c = doc["counters"]
assert c["limiter_admitted"]["total"] == 1, c
assert c["limiter_admitted"]["labels"][sys.argv[1]] == 1, c
assert "limiter_refused" not in c, c
PY
if python3 "$tmp/counters.py" "$(id -un)" <<<"$out"; then
  ok "run --json lists the counters"
else fail "run --json lists the counters"; echo "$out" | tail -20; fi
run_one "$tmp/state5" "$tmp/limited.yaml" "$tmp/ws5b"
check "the second limited run succeeds" test "$rc" -eq 0
check "two agents ran" test "$(wc -l <"$tmp/spawns")" -eq 2
run_one "$tmp/state5" "$tmp/limited.yaml" "$tmp/ws5c"
check "the third run is refused with exit code 4" test "$rc" -eq 4
if grep -Eq "^error: rate limit: 1 runs per minute for user $(id -un); next run allowed in ([1-5][0-9]|60)\.[0-9]s$" <<<"$err"; then
  ok "the refusal says when the next run is allowed"
else fail "the refusal says when the next run is allowed"; echo "$err"; fi
check "the refused run spawned no agent" test "$(wc -l <"$tmp/spawns")" -eq 2
check "the refused run made no workspace" test ! -e "$tmp/ws5c"
check "the buckets are in the state directory" \
  test "$(mode_of "$tmp/state5/ai-orchestrator/limits/buckets.json")" = 600
check "the refusal is audited" \
  grep -q '"kind":"rate_limited"' "$tmp/state5/ai-orchestrator/audit/audit.jsonl"
# Another state directory (another user's) has its own bucket.
run_one "$tmp/state6" "$tmp/limited.yaml" "$tmp/ws6"
check "another state directory is not limited" test "$rc" -eq 0

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
