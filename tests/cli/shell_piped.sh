#!/usr/bin/env bash
# `ai-orchestrator shell` with piped stdin (no terminal, no libedit): the
# lines are read plainly and echoed after the prompt, so scripts can drive
# it; the end of the input leaves without asking.
# Usage: shell_piped.sh <ai-orchestrator binary> <source dir>
set -u
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=$(cd "$2" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/xdg XDG_STATE_HOME=$tmp/state NO_COLOR=1
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$tmp/work"
cd "$tmp/work"
passed=0
failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }
check() { local n=$1; shift; if "$@"; then ok "$n"; else fail "$n"; fi; }
demo=$src/examples/demo.yaml

printf '/help\n/workflows\n/wrkflows\n/workflow quick\n/workflow nope\n/switch nobody\nBuild a shopping list CLI\nfix the bug\n/history\n' |
  "$bin" shell --config "$demo" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "piped shell exits 0 at the end of input" test "$rc" -eq 0
check "the prompt and the line are echoed" grep -qxF "orchestrator (default) > /help" "$tmp/out"
check "/workflow changes the prompt" grep -qxF "orchestrator (quick) > Build a shopping list CLI" "$tmp/out"
check "unknown command suggestion" grep -qF "Unknown command /wrkflows. Did you mean /workflows?" "$tmp/out"
check "unknown workflow" grep -qF "Unknown workflow 'nope'" "$tmp/out"
check "unknown agent" grep -qF "Unknown agent 'nobody'" "$tmp/out"
check "the task ran" grep -qF "Task completed successfully!" "$tmp/out"
check "'fix the bug' is a follow-up" grep -qF "Detected as follow-up to previous task" "$tmp/out"
check "/history has 4 messages" test "$(grep -cE '^ +[0-9]+\. \[' "$tmp/out")" -eq 4
check "Goodbye" grep -qxF "Goodbye!" "$tmp/out"
check "nothing on stderr" test ! -s "$tmp/err"
[ "$failed" -eq 0 ] || { cat "$tmp/out" "$tmp/err"; }

# 'address' is not 'add': no follow-up detected; a short message without a
# keyword is ambiguous: the shell asks continue / new / cancel.
printf 'Build a shopping list CLI\nwrite the address book\nnew\nrename the module\ncancel\n' |
  "$bin" shell --config "$demo" --workflow quick >"$tmp/out2" 2>&1
check "'address' does not match 'add'" test "$(grep -c 'Detected as follow-up' "$tmp/out2")" -eq 0
check "ambiguous messages ask" test "$(grep -c 'continue / new / cancel: ' "$tmp/out2")" -eq 2
check "'new' runs it as a new task" test "$(grep -c 'Task completed successfully!' "$tmp/out2")" -eq 2
check "'cancel' runs nothing" grep -qxF "Cancelled; nothing was run." "$tmp/out2"

"$bin" shell --workflow nope --config "$demo" </dev/null >"$tmp/out3" 2>&1
check "--workflow unknown exits 2" test $? -eq 2
check "--workflow unknown says so" grep -qF "unknown workflow 'nope'" "$tmp/out3"
"$bin" interactive --load ../x --config "$demo" </dev/null >"$tmp/out4" 2>&1
check "interactive alias; --load refuses a path escape (exit 2)" test $? -eq 2
check "--load names the problem" grep -qF 'invalid session name "../x"' "$tmp/out4"

# A flood: a 20 MB line without a break, escape bytes, then commands. The
# line is read in one pass with bounded memory and refused by the task check;
# the shell goes on; no escape byte reaches the terminal.
{ head -c 20000000 /dev/zero | tr '\0' a; printf '\n\033]0;x\a\n/info\n/exit\n'; } |
  timeout -s KILL 60 "$bin" shell --config "$demo" >"$tmp/out5" 2>"$tmp/err5"
check "a 20 MB line ends cleanly" test $? -eq 0
check "the overlong line is named" grep -qF "warning: the line is longer than 8388608 bytes" "$tmp/err5"
check "the overlong task is refused" grep -qF "the limit is 100000 (settings.max_task_chars)" "$tmp/out5"
check "the shell goes on after it" grep -qF "State dir:" "$tmp/out5"
check "the echo escapes control bytes" bash -c "! grep -q \$'\\033' '$tmp/out5'"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
