#!/usr/bin/env bash
# `ai-orchestrator shell` in a real terminal (tmux, issue 13): the seed's
# example session with the demo agents from creation to `--load` and a
# further follow-up; history kept across shells; tab completion; Ctrl-C at
# the prompt; every slash command once; an unknown command's suggestion; a
# corrupt session file on /load and --load.
# Usage: shell_tty.sh <ai-orchestrator binary> <source dir>
set -u
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=$(cd "$2" && pwd)
command -v tmux >/dev/null || { echo "FAIL tmux is not installed (scripts/common.sh installs it)"; exit 1; }
tmp=$(mktemp -d)
sock=
trap '[ -n "$sock" ] && tmux -L "$sock" kill-server 2>/dev/null; rm -rf "$tmp"' EXIT
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/xdg XDG_STATE_HOME=$tmp/state TMUX_TMPDIR=$tmp
unset TMUX
work=$tmp/work
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$work"
. "$src/tests/cli/shell_lib.bash"
demo=$src/examples/demo.yaml
prompt='orchestrator (default) > '
sessions=$XDG_STATE_HOME/ai-orchestrator/sessions

# -- the seed's example session -------------------------------------------
start_shell shell --config "'$demo'"
check "prompt shows the workflow" wait_for "$prompt"
type_line "Create a REST API for blog posts"
check "first task completes" wait_for "Task completed successfully!" 1 60
check "first task lists generated files" wait_for "📄 app/main.py"
check "a new task is not a follow-up" test "$(count_of 'Detected as follow-up')" -eq 0
type_line "add authentication"
check "'add authentication' is a follow-up" wait_for "💡 Detected as follow-up to previous task"
check "the follow-up completes" wait_for "Task completed successfully!" 2 60
type_line "also add rate limiting"
check "'also add rate limiting' is a follow-up" wait_for "Detected as follow-up to previous task" 2
check "the second follow-up completes" wait_for "Task completed successfully!" 3 60
ws=$(screen | grep -E '^Workspace: [^ ]+$' | sort -u)
check "follow-ups run in the same workspace" test "$(printf '%s\n' "$ws" | wc -l)" -eq 1
type_line "/save blog-api"
check "/save says where" wait_for "Session saved to: $sessions/blog-api.json"
check "the session file exists" test -f "$sessions/blog-api.json"
check "the file holds 6 messages" python3 -c '
import json,sys; j=json.load(open(sys.argv[1]))
assert len(j["conversation_history"])==6, j
assert j["conversation_history"][2]["content"]=="add authentication"
assert j["workflow"]=="default" and j["session_id"] and j["workspace"]' "$sessions/blog-api.json"
type_line "/exit"
check "/exit says Goodbye" wait_for "Goodbye!"
check "/exit leaves with 0 (nothing unsaved: no question)" wait_for "SHELL-EXITED:0"
stop_shell
check "the line history is kept in the state directory" \
  grep -qx "also add rate limiting" "$XDG_STATE_HOME/ai-orchestrator/history/shell"

start_shell shell --load blog-api --config "'$demo'"
check "--load reports the session" wait_for "Loaded session 'blog-api': 6 message(s), workflow default"
check "--load shows the prompt" wait_for "$prompt"
T send-keys -t main Up
check "Up recalls the last line of the previous shell" wait_for "${prompt}/exit"
T send-keys -t main C-u
type_line "now add tests"
check "after --load, 'now add tests' is a follow-up" wait_for "Detected as follow-up to previous task"
check "the continued task completes" wait_for "Task completed successfully!" 1 60
check "it runs in the loaded workspace" test "$(screen | grep -E '^Workspace: [^ ]+$' | sort -u)" = "$ws"
type_line "/history"
check "/history lists the earlier messages" wait_for "also add rate limiting"
check "/history lists the new one" wait_for "user: now add tests"
type_line "/exit"
check "/exit with unsaved messages asks first" wait_for "2 unsaved message(s). Leave anyway? [y/N]"
type_line "n"
check "answering no stays in the shell" wait_for "$prompt" 4
type_line "/quit"
check "/quit asks too" wait_for "Leave anyway? [y/N]" 2
type_line "y"
check "answering yes leaves" wait_for "SHELL-EXITED:0"
stop_shell

# -- every slash command, completion, Ctrl-C at the prompt -----------------
start_shell shell --config "'$demo'"
wait_for "$prompt" >/dev/null
type_line "/help"
check "/help lists the 15 commands" wait_for "/followup"
for c in /agents /workflows /switch /workflow /history /context /save /load /reset /info /clear /exit /quit; do
  [ "$(count_of "  $c ")" -ge 1 ] || fail "/help lists $c"
done
type_line "/agents"
check "/agents lists the demo agents" wait_for "demo-copilot"
type_line "/workflows"
check "/workflows lists them, the current one marked" wait_for "* default"
type_line "/hepl"
check "an unknown command suggests the closest" wait_for "Unknown command /hepl. Did you mean /help?"
type_line "/followup add tests"
check "/followup without a previous task says so" wait_for "There is no previous task"
T send-keys -t main -l "/hist"
T send-keys -t main Tab
check "Tab completes a slash command" wait_for "${prompt}/history"
T send-keys -t main C-u
T send-keys -t main -l "/workflow qu"
T send-keys -t main Tab
check "Tab completes a workflow name" wait_for "${prompt}/workflow quick"
T send-keys -t main Enter
check "/workflow changes the prompt" wait_for "orchestrator (quick) > "
T send-keys -t main -l "some half-typed task"
T send-keys -t main C-c
check "Ctrl-C at the prompt shows ^C" wait_for "^C"
type_line "/info"
check "Ctrl-C cleared the line: /info runs alone" wait_for "Workflow:  quick"
check "the cleared line did not run" test "$(count_of 'half-typed')" -eq 1
T send-keys -t main -l "/switch demo-cl"
T send-keys -t main Tab
check "Tab completes an agent name" wait_for "/switch demo-claude"
T send-keys -t main Enter
check "/switch confirms" wait_for "The next tasks run every step with demo-claude alone"
type_line "/switch off"
check "/switch off" wait_for "The workflow's own agents run again"
type_line "Build a shopping list CLI"
check "a task in the quick workflow completes" wait_for "Task completed successfully!" 1 60
type_line "/followup add tests"
check "/followup runs without detection" wait_for "Task completed successfully!" 2 60
check "/followup is not announced as detected" test "$(count_of 'Detected as follow-up')" -eq 0
type_line "/context"
check "/context shows the previous task" wait_for "Previous task: add tests"
type_line "/save"
check "/save without a name uses the session id" wait_for "Session saved to: $sessions/"
type_line "/reset"
check "/reset asks first" wait_for "Clear the whole session (history and context)? [y/N]"
type_line "n"
check "/reset answered no clears nothing" wait_for "Nothing was cleared."
type_line "/reset"
type_line "y"
check "/reset answered yes" wait_for "The session is cleared."
type_line "/history"
check "/history after /reset is empty" wait_for "No messages yet."
printf 'this is { not json' >"$sessions/broken.json"
cp "$sessions/broken.json" "$tmp/broken.copy"
type_line "/load broken"
check "/load of a corrupt file names its path" wait_for "error: $sessions/broken.json: not a valid session: not valid JSON"
check "the corrupt file is left as it was" cmp -s "$sessions/broken.json" "$tmp/broken.copy"
type_line "/load ../etc"
check "/load refuses a path escape" wait_for 'error: invalid session name "../etc"' 
type_line "/load blog-api"
check "/load of a good session" wait_for "Loaded session 'blog-api': 6 message(s)"
type_line "/clear"
check "/clear clears the screen" visible_is_prompt_only
type_line "/quit"
check "/quit leaves" wait_for "SHELL-EXITED:0"
stop_shell

# -- Ctrl-D leaves; the history file is never written through a link ------
hist=$XDG_STATE_HOME/ai-orchestrator/history/shell
printf 'outside\n' >"$tmp/outside"
rm -f "$hist"
ln -s "$tmp/outside" "$hist"
start_shell shell --config "'$demo'"
check "prompt (history behind a link)" wait_for "$prompt"
type_line "/info"
check "/info" wait_for "Workflow:  default"
T send-keys -t main C-d
check "Ctrl-D at an empty prompt leaves" wait_for "SHELL-EXITED:0"
check "Ctrl-D says Goodbye" wait_for "Goodbye!"
stop_shell
check "the file behind the link is untouched" test "$(cat "$tmp/outside")" = outside
check "the history is a plain file again" test -f "$hist" -a ! -L "$hist"
check "it holds the line" grep -qx "/info" "$hist"

# -- --load of a corrupt file ----------------------------------------------
(cd "$work" && "$bin" shell --load broken --config "$demo" </dev/null >"$tmp/out" 2>"$tmp/err")
rc=$?
check "--load of a corrupt file exits 2" test "$rc" -eq 2
check "--load of a corrupt file names its path" grep -qF "error: $sessions/broken.json: not a valid session: not valid JSON" "$tmp/err"
check "--load left it as it was" cmp -s "$sessions/broken.json" "$tmp/broken.copy"

finish
