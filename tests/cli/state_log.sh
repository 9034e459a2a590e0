#!/usr/bin/env bash
# The state directory and the log file through the binary (issue 11, part 8):
# a run of the demo config leaves <XDG_STATE_HOME>/ai-orchestrator/logs/
# ai-orchestrator.log (folders 0700, file 0600) and prints nothing of it;
# `--log-level warn` keeps the config warning and leaves out info lines;
# settings.state_dir moves it; a link at the log file is never written
# through.
# Usage: state_log.sh <ai-orchestrator binary> <source dir>
set -u
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/xdg NO_COLOR=1
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$tmp/cfg"
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
  if "$@"; then ok "$name"; else fail "$name"; fi
}
mode_of() { stat -c %a "$1" 2>/dev/null; }

# The demo config, plus a setting that loads with a warning. Its agents are
# found relative to the config file.
ln -s "$src/examples/demo-agents" "$tmp/cfg/demo-agents"
cp "$src/examples/demo.yaml" "$tmp/cfg/demo.yaml"
printf '  colored_output: true\n' >>"$tmp/cfg/demo.yaml"
cfg=$tmp/cfg/demo.yaml

# run_demo STATE_HOME WORKSPACE [ARGS...] -> stdout+stderr in $out, exit in $rc
run_demo() {
  local state=$1 ws=$2
  shift 2
  out=$(XDG_STATE_HOME=$state timeout -s KILL 120 "$bin" "$@" run \
    "Build a shopping list CLI" --config "$cfg" --output "$ws" 2>&1)
  rc=$?
}

# 1. A run at the default level.
run_demo "$tmp/state1" "$tmp/ws1"
log=$tmp/state1/ai-orchestrator/logs/ai-orchestrator.log
check "the demo run succeeds" test "$rc" -eq 0
check "the log file appears in the state directory" test -f "$log"
check "the state directory is 0700" test "$(mode_of "$tmp/state1/ai-orchestrator")" = 700
check "the logs folder is 0700" test "$(mode_of "$tmp/state1/ai-orchestrator/logs")" = 700
check "the log file is 0600" test "$(mode_of "$log")" = 600
check "info lines are logged" grep -q ' info .*command-start cmd=run' "$log"
check "the exit code is logged" grep -q ' info .*command-end cmd=run exit=0' "$log"
check "the run start is logged" grep -q ' info .*run-start id=.* workflow=default' "$log"
check "the run end is logged with its status" \
  grep -q ' info .*run-end id=.* workflow=default status=converged' "$log"
check "each step start is logged" \
  grep -q ' info .*step-start id=.* iteration=1 step=2 agent=demo-gemini task=review' "$log"
check "each step end is logged with its duration and failure kind" \
  grep -q ' info .*step-end id=.* agent=demo-codex .*failure=none duration_ms=[0-9]' "$log"
check "the config warning is logged" grep -q ' warning .*config-warning .*colored_output' "$log"
if grep -q 'command-start\|config-warning' <<<"$out"; then
  fail "nothing of the log reaches stdout or stderr"
else
  ok "nothing of the log reaches stdout or stderr"
fi

# 2. --log-level warn (before or after the command) leaves out info lines.
for where in before after; do
  state=$tmp/state-warn-$where
  if [[ $where == before ]]; then
    run_demo "$state" "$tmp/ws-warn-$where" --log-level warn
  else
    out=$(XDG_STATE_HOME=$state timeout -s KILL 120 "$bin" run \
      "Build a shopping list CLI" --config "$cfg" --output "$tmp/ws-warn-$where" \
      --log-level WARNING 2>&1)
    rc=$?
  fi
  log=$state/ai-orchestrator/logs/ai-orchestrator.log
  check "--log-level warn ($where the command): the run succeeds" test "$rc" -eq 0
  check "--log-level warn ($where the command): warnings are kept" \
    grep -q ' warning .*config-warning' "$log"
  if grep -q ' info ' "$log"; then
    fail "--log-level warn ($where the command): no info line"
  else
    ok "--log-level warn ($where the command): no info line"
  fi
done

# 3. An unknown level is a usage error.
XDG_STATE_HOME=$tmp/state-bad "$bin" --log-level loud workflows \
  --config "$cfg" >/dev/null 2>&1
check "an unknown --log-level exits 2" test $? -eq 2

# 4. settings.state_dir moves the state directory.
cp "$cfg" "$tmp/cfg/moved.yaml"
printf '  state_dir: %s\n' "$tmp/moved-state" >>"$tmp/cfg/moved.yaml"
XDG_STATE_HOME=$tmp/state-unused "$bin" workflows --config "$tmp/cfg/moved.yaml" \
  >/dev/null 2>&1
check "settings.state_dir is used" \
  test -f "$tmp/moved-state/logs/ai-orchestrator.log"
check "XDG_STATE_HOME is not used then" test ! -e "$tmp/state-unused/ai-orchestrator"

# 5. A link planted at the log file is never written through, and the
#    command still works.
state=$tmp/state-link
mkdir -p "$state/ai-orchestrator/logs"
chmod 700 "$state/ai-orchestrator" "$state/ai-orchestrator/logs"
echo keep >"$tmp/victim"
ln -s "$tmp/victim" "$state/ai-orchestrator/logs/ai-orchestrator.log"
XDG_STATE_HOME=$state "$bin" workflows --config "$cfg" >"$tmp/wf.out" 2>&1
check "a link at the log file: the command still succeeds" test $? -eq 0
check "a link at the log file: its target is untouched" \
  test "$(cat "$tmp/victim")" = keep
check "a link at the log file: nothing is printed about it" \
  test -z "$(grep -i 'log' "$tmp/wf.out")"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
