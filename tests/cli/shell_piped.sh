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

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
