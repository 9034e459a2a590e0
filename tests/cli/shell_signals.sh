#!/usr/bin/env bash
# `ai-orchestrator shell` and signals (issue 13): Ctrl-C in the terminal
# during a task cancels that task only (the hanging agent is killed) and the
# same shell runs another task, with /switch really choosing the agent; a
# kill -9 of the shell in the middle of /save leaves a session that loads.
# Usage: shell_signals.sh <ai-orchestrator binary> <source dir>
set -u
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=$(cd "$2" && pwd)
command -v tmux >/dev/null || { echo "FAIL tmux is not installed (scripts/common.sh installs it)"; exit 1; }
tmp=$(mktemp -d)
sock=
bg=()
cleanup() {
  [ -n "$sock" ] && tmux -L "$sock" kill-server 2>/dev/null
  local p
  for p in "${bg[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/xdg XDG_STATE_HOME=$tmp/state TMUX_TMPDIR=$tmp NO_COLOR=1
unset TMUX
work=$tmp/work
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$work"
. "$src/tests/cli/shell_lib.bash"
sessions=$XDG_STATE_HOME/ai-orchestrator/sessions
export HANG_FIFO=$tmp/hang.fifo COUNT_FILE=$tmp/count
mkfifo "$HANG_FIFO"
: >"$COUNT_FILE"
cat >"$tmp/cfg.yaml" <<YAML
agents:
  hang:
    adapter: command
    command: $src/tests/fakes/hang-agent
    env: [HANG_FIFO]
    deadlines: {first_output: 60, idle: 60, total: 120}
  counter:
    adapter: command
    command: $src/tests/fakes/counting-agent
    env: [COUNT_FILE]
    deadlines: {first_output: 10, idle: 10, total: 30}
workflows:
  default:
    - {agent: hang, task: implement}
settings: {kill_grace: 0.3}
YAML
wait_file() {
  local deadline=$((SECONDS + 30))
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ -s "$1" ] && return 0
    sleep 0.05
  done
  return 1
}
wait_gone() {
  local deadline=$((SECONDS + 30))
  while [ "$SECONDS" -lt "$deadline" ]; do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.05
  done
  return 1
}

# -- Ctrl-C during a task ----------------------------------------------------
timeout 60 cat "$HANG_FIFO" >"$tmp/agent.pid" &
bg+=($!)
EXTRA_ENV="HANG_FIFO='$HANG_FIFO' COUNT_FILE='$COUNT_FILE'" start_shell shell --config "'$tmp/cfg.yaml'"
check "prompt" wait_for "orchestrator (default) > "
type_line "build something that hangs"
if wait_file "$tmp/agent.pid"; then
  agent=$(cat "$tmp/agent.pid")
  bg+=("$agent")
  T send-keys -t main C-c
  check "Ctrl-C during a task cancels it" wait_for "Task cancelled."
  check "the hanging agent is killed" wait_gone "$agent"
  check "the shell is back at the prompt" wait_for "orchestrator (default) > " 2
else
  fail "the hanging agent did not start"
fi
type_line "/switch counter"
check "/switch counter" wait_for "with counter alone"
type_line "now a task that works"
check "another task in the same shell completes" wait_for "Task completed successfully!" 1 60
check "it ran with the /switch agent alone" test "$(wc -l <"$COUNT_FILE")" -eq 1
check "the shell is still the same process" test "$(count_of SHELL-EXITED)" -eq 0
type_line "/save"
wait_for "Session saved to:" >/dev/null
type_line "/exit"
check "the shell leaves" wait_for "SHELL-EXITED:0"
stop_shell

# -- SIGTERM during a task: the task is cancelled, the shell leaves with 130 --
rm -f "$tmp/agent2.pid"
timeout 60 cat "$HANG_FIFO" >"$tmp/agent2.pid" &
bg+=($!)
(cd "$work" && exec "$bin" shell --config "$tmp/cfg.yaml" <<<"build something that hangs" >"$tmp/term.out" 2>&1) &
term_pid=$!
bg+=("$term_pid")
if wait_file "$tmp/agent2.pid"; then
  agent=$(cat "$tmp/agent2.pid")
  bg+=("$agent")
  kill -TERM "$term_pid"
  wait "$term_pid"
  rc=$?
  check "SIGTERM during a task: exit 130" test "$rc" -eq 130
  check "SIGTERM during a task: the agent is gone" wait_gone "$agent"
else
  fail "the hanging agent did not start (SIGTERM case)"
fi

# -- kill -9 during /save ------------------------------------------------------
# A piped shell runs one task, then saves the same session over and over;
# it is killed while it saves. The file is either the old or the new one:
# it always loads.
sed -i 's/- {agent: hang, task: implement}/- {agent: counter, task: implement}/' "$tmp/cfg.yaml"
{
  echo "write the notes"
  for i in $(seq 1 3000); do echo "/save crash"; done
} >"$tmp/input"
(cd "$work" && exec "$bin" shell --config "$tmp/cfg.yaml" <"$tmp/input" >"$tmp/save.out" 2>&1) &
shell_pid=$!
bg+=("$shell_pid")
deadline=$((SECONDS + 60))
while [ "$SECONDS" -lt "$deadline" ] && [ "$(grep -c 'Session saved' "$tmp/save.out" 2>/dev/null)" -lt 20 ]; do
  sleep 0.02
done
kill -9 "$shell_pid" 2>/dev/null
wait "$shell_pid" 2>/dev/null
check "the shell was saving when killed" test "$(grep -c 'Session saved' "$tmp/save.out")" -ge 20
printf '/history\n/exit\n' | (cd "$work" && "$bin" shell --load crash --config "$tmp/cfg.yaml") >"$tmp/load.out" 2>&1
rc=$?
check "the session saved during kill -9 loads (exit 0)" test "$rc" -eq 0
check "it holds the task" grep -qF "user: write the notes" "$tmp/load.out"
if [ "$failed" -ne 0 ]; then cat "$tmp/save.out" | tail -5; cat "$tmp/load.out"; fi

finish
