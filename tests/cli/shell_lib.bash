# Helpers for the shell tests (sourced, not a test: no .sh suffix).
# Each test drives the real binary in a terminal of its own tmux server
# (`tmux -L <unique socket>`), waits for screen content by polling
# `capture-pane` against a deadline, and kills its server at the end.
passed=0
failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() {
  echo "FAIL $1"
  failed=$((failed + 1))
  if [ -n "${sock:-}" ] && tmux -L "$sock" has-session 2>/dev/null; then
    echo "---- screen ----"
    screen | tail -40
    echo "----------------"
  fi
}
check() { # check NAME COMMAND...
  local name=$1
  shift
  if "$@"; then ok "$name"; else fail "$name"; fi
}
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

T() { tmux -L "$sock" "$@"; }
# screen: the whole scrollback of the pane, joined lines.
screen() { T capture-pane -p -J -S -5000 -t main 2>/dev/null; }
# start_shell ARGS...: a fresh tmux server running the shell in $work.
start_shell() {
  sock=orch-shell-$$-$RANDOM
  T -f /dev/null new-session -d -s main -x 160 -y 50 \
    "cd '$work' && env HOME='$HOME' XDG_STATE_HOME='$XDG_STATE_HOME' XDG_CONFIG_HOME='$XDG_CONFIG_HOME' NO_COLOR=1 TERM=xterm ${EXTRA_ENV:-} '$bin' $* ; echo SHELL-EXITED:\$?; sleep 3600"
  T set-option -t main history-limit 20000 >/dev/null
}
stop_shell() {
  T kill-server 2>/dev/null
  sock=
}
# count_of TEXT: how many screen lines hold TEXT.
count_of() { screen | grep -cF -- "$1"; }
# wait_for TEXT [N] [SECONDS]: until at least N lines hold TEXT.
wait_for() {
  local text=$1 n=${2:-1} secs=${3:-30}
  local deadline=$((SECONDS + secs))
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ "$(count_of "$text")" -ge "$n" ] && return 0
    sleep 0.1
  done
  return 1
}
type_line() { # type_line TEXT: types it and presses Enter
  T send-keys -t main -l -- "$1"
  T send-keys -t main Enter
}
# visible_is_prompt_only: polls until the visible pane holds one line, a prompt.
visible_is_prompt_only() {
  local deadline=$((SECONDS + 10))
  while [ "$SECONDS" -lt "$deadline" ]; do
    local v
    v=$(T capture-pane -p -t main | grep -v '^$')
    if [ "$(printf '%s\n' "$v" | wc -l)" -eq 1 ] && [[ $v == orchestrator* ]]; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}
