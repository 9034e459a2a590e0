#!/usr/bin/env bash
# No process of an agent outlives its run: helpers that left the agent's
# process group (setsid), with or without the run's marker in their
# environment, are gone after the step, after Ctrl-C, when the output pipe
# closes (`run -v | head`), and when the orchestrator is killed with
# SIGKILL. Also: a relative PATH element never runs a program from the
# workspace. Uses tests/fakes/escaping-agent.
# Usage: agent_processes.sh <ai-orchestrator binary> <source dir>
set -u
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=$(cd "$2" && pwd)
tmp=$(mktemp -d)
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/xdg NO_COLOR=1
mkdir -p "$HOME" "$XDG_CONFIG_HOME"
cd "$tmp"
passed=0
failed=0
started=() # every pid we saw, killed on exit whatever happened

cleanup() {
  local pid
  for pid in "${started[@]}"; do
    kill -9 "$pid" 2>/dev/null
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

ok() {
  echo "ok   $1"
  passed=$((passed + 1))
}
fail() {
  echo "FAIL $1"
  failed=$((failed + 1))
}

# Bounded polls for an outside condition: up to 10 s in 0.05 s steps.
wait_file() {
  local i
  for ((i = 0; i < 200; i++)); do
    [ -s "$1" ] && return 0
    sleep 0.05
  done
  return 1
}
wait_gone() {
  local i
  for ((i = 0; i < 200; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.05
  done
  return 1
}

# Prints the pids of the processes whose environment holds the marker.
marked() {
  local env
  [ -n "$1" ] || return 0
  for env in /proc/[0-9]*/environ; do
    if { tr '\0' '\n' <"$env" | grep -qxF "ORCH_RUN_MARKER=$1"; } 2>/dev/null
    then
      env=${env#/proc/}
      echo "${env%/environ}"
    fi
  done
}

# write_config NAME MODE: an agent "esc" running the fake in MODE.
write_config() {
  mkdir -p "$tmp/$1"
  cat >"$tmp/$1.yaml" <<YAML
agents:
  esc:
    adapter: codex
    command: $src/tests/fakes/escaping-agent
    env_set: {STATE_DIR: $tmp/$1, FAKE_MODE: $2}
    deadlines: {first_output: 20, idle: 20, total: 60}
workflows:
  default:
    - {agent: esc, task: implement}
settings: {kill_grace: 0.3}
YAML
}

# check_gone NAME: the agent, both helpers and every marked process of the
# run NAME are gone.
check_gone() {
  local name=$1 what pid left
  for what in agent escaped scrubbed; do
    if ! wait_file "$tmp/$name/$what.pid"; then
      fail "$name: the agent wrote no $what.pid"
      return
    fi
    started+=("$(cat "$tmp/$name/$what.pid")")
  done
  for what in agent escaped scrubbed; do
    pid=$(cat "$tmp/$name/$what.pid")
    if ! wait_gone "$pid"; then
      fail "$name: the $what process $pid outlived the run"
      return
    fi
  done
  left=$(marked "$(cat "$tmp/$name/marker" 2>/dev/null)")
  if [ -n "$left" ]; then
    fail "$name: processes with the run's marker remain: $left"
    return
  fi
  ok "$name"
}

# run_args NAME: the arguments of a run with the config NAME. The binary is
# started directly (not from a function), so that $! is its pid.
run_args() {
  args=(run "task" --config "$tmp/$1.yaml" --output "$tmp/ws-$1")
}

# -- the step ends: the helpers go with it
write_config step-end exit
run_args step-end
"$bin" "${args[@]}" >"$tmp/step-end.out" 2>&1
rc=$?
if [ "$rc" != 0 ]; then
  fail "step-end: exit $rc"
  cat "$tmp/step-end.out"
else
  check_gone step-end
fi

# -- Ctrl-C (SIGINT to the orchestrator) while the agent hangs
write_config ctrl-c hang
run_args ctrl-c
"$bin" "${args[@]}" >"$tmp/ctrl-c.out" 2>&1 &
orch=$!
started+=("$orch")
if wait_file "$tmp/ctrl-c/scrubbed.pid" && wait_file "$tmp/ctrl-c/agent.pid"; then
  kill -INT "$orch"
  wait "$orch"
  rc=$?
  if [ "$rc" != 130 ]; then
    fail "ctrl-c: exit $rc, expected 130"
    cat "$tmp/ctrl-c.out"
  else
    check_gone ctrl-c
  fi
else
  fail "ctrl-c: the agent did not start"
fi

# -- the output pipe closes early: a cancel, not a death by SIGPIPE
write_config head chatty
run_args head
"$bin" "${args[@]}" -v 2>/dev/null | head -6 >/dev/null
rc=${PIPESTATUS[0]}
if [ "$rc" != 130 ]; then
  fail "head: exit $rc, expected 130 (141 is death by SIGPIPE)"
fi
check_gone head

# -- kill -9 of the orchestrator mid-step
write_config kill-9 hang
run_args kill-9
"$bin" "${args[@]}" >"$tmp/kill-9.out" 2>&1 &
orch=$!
started+=("$orch")
if wait_file "$tmp/kill-9/scrubbed.pid" && wait_file "$tmp/kill-9/agent.pid"; then
  kill -9 "$orch"
  wait "$orch" 2>/dev/null
  check_gone kill-9
else
  fail "kill-9: the agent did not start"
fi

# -- a relative PATH element: a program planted in the workspace (the
#    agent's working directory) or in our working directory is not run.
mkdir -p "$tmp/ws-planted"
for dir in "$tmp" "$tmp/ws-planted"; do
  printf '#!/bin/sh\ntouch %s/planted-ran\n' "$tmp" >"$dir/orch-planted-agent"
  chmod +x "$dir/orch-planted-agent"
done
cat >"$tmp/planted.yaml" <<YAML
agents:
  planted:
    adapter: command
    command: orch-planted-agent
workflows:
  default:
    - {agent: planted, task: implement}
YAML
env PATH=".::/usr/bin:/bin" "$bin" run "task" --config "$tmp/planted.yaml" \
  --output "$tmp/ws-planted" >"$tmp/planted.out" 2>&1
rc=$?
if [ -e "$tmp/planted-ran" ]; then
  fail "relative-path: the planted program ran (exit $rc)"
elif [ "$rc" = 0 ]; then
  fail "relative-path: the run succeeded without its agent"
  cat "$tmp/planted.out"
else
  ok "relative-path"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
