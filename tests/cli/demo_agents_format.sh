#!/usr/bin/env bash
# Checks the offline demo agents (examples/demo-agents/) without the
# orchestrator: each prints only valid JSONL in its real CLI's format, accepts
# the real CLI's argv, and the scripted default workflow (implement -> review ->
# refine) converges with review findings 4, 2, 0.
# Usage: bash demo_agents_format.sh <ai-orchestrator binary (unused)> <source dir>
# Needs only bash, coreutils, grep, sed and awk.
set -u
export LC_ALL=C

src=${2:-$(cd "$(dirname "$0")/../.." && pwd)}
agents=$src/examples/demo-agents
fixtures=$src/tests/fixtures/agent-output
pass=0
fail=0
work=$(mktemp -d "${TMPDIR:-/tmp}/demo-agents-test.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

ok() {
  pass=$((pass + 1))
  printf 'ok   %s\n' "$1"
}
not_ok() {
  fail=$((fail + 1))
  printf 'FAIL %s\n' "$1"
  [[ -n ${2:-} ]] && printf '     %s\n' "$2"
}
check() { # check <name> <command...>
  local name=$1
  shift
  if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# -- a JSON validator and path getter in awk ----------------------------------
# Validates every non-empty line as one JSON value (strict RFC 8259, UTF-8).
# With -v want=PATH (keys joined by ".", array indexes as numbers, e.g.
# item.text or message.content.0.text) it prints the value at PATH of each
# line: strings decoded, anything else as raw JSON. -v where=KEY=VALUE keeps
# only lines whose top-level string KEY equals VALUE; -v last=1 prints only
# the last match. Invalid lines are reported on stderr; exit status 1 then.
json_awk='
BEGIN {
  for (i = 1; i < 256; i++) { ch = sprintf("%c", i); ord[ch] = i }
  bad = 0; out = ""; nmatch = 0
  if (where != "") { wkey = substr(where, 1, index(where, "=") - 1); wval = substr(where, index(where, "=") + 1) }
}
function ws() { while (pos <= n && index(" \t\r", substr(s, pos, 1)) > 0) pos++ }
function val(path,   c, start, ok) {
  ws()
  if (pos > n) return 0
  c = substr(s, pos, 1); start = pos
  if (c == "{") ok = obj(path)
  else if (c == "[") ok = arr(path)
  else if (c == "\"") { ok = str(); if (ok) { if (path == want) { found = 1; fval = sval } if (path == wkey) wseen = sval } return ok }
  else if (substr(s, pos, 4) == "true" || substr(s, pos, 4) == "null") { pos += 4; ok = 1 }
  else if (substr(s, pos, 5) == "false") { pos += 5; ok = 1 }
  else if (match(substr(s, pos), /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/)) { pos += RLENGTH; ok = 1 }
  else return 0
  if (ok && path == want) { found = 1; fval = substr(s, start, pos - start) }
  return ok
}
function obj(path,   c, key) {
  pos++; ws()
  if (substr(s, pos, 1) == "}") { pos++; return 1 }
  while (1) {
    ws()
    if (substr(s, pos, 1) != "\"" || !str()) return 0
    key = sval; ws()
    if (substr(s, pos, 1) != ":") return 0
    pos++
    if (!val(path == "" ? key : path "." key)) return 0
    ws(); c = substr(s, pos, 1); pos++
    if (c == ",") continue
    if (c == "}") return 1
    return 0
  }
}
function arr(path,   c, i) {
  pos++; ws()
  if (substr(s, pos, 1) == "]") { pos++; return 1 }
  for (i = 0; ; i++) {
    if (!val(path == "" ? i : path "." i)) return 0
    ws(); c = substr(s, pos, 1); pos++
    if (c == ",") continue
    if (c == "]") return 1
    return 0
  }
}
function utf8(cp) {
  if (cp < 128) return sprintf("%c", cp)
  if (cp < 2048) return sprintf("%c%c", 192 + int(cp / 64), 128 + cp % 64)
  if (cp < 65536) return sprintf("%c%c%c", 224 + int(cp / 4096), 128 + int(cp / 64) % 64, 128 + cp % 64)
  return sprintf("%c%c%c%c", 240 + int(cp / 262144), 128 + int(cp / 4096) % 64, 128 + int(cp / 64) % 64, 128 + cp % 64)
}
function hex4(h,   i, v) {
  v = 0
  for (i = 1; i <= 4; i++) v = v * 16 + index("0123456789abcdef", tolower(substr(h, i, 1))) - 1
  return v
}
function str(   c, b, e, k, need, cp, lo) {
  pos++; sval = ""
  while (pos <= n) {
    c = substr(s, pos, 1); b = ord[c]
    if (c == "\"") { pos++; return 1 }
    if (b < 32) return 0
    if (c == "\\") {
      e = substr(s, pos + 1, 1)
      if (e == "n") sval = sval "\n"
      else if (e == "t") sval = sval "\t"
      else if (e == "r") sval = sval "\r"
      else if (e == "b") sval = sval "\b"
      else if (e == "f") sval = sval "\f"
      else if (e == "\"" || e == "\\" || e == "/") sval = sval e
      else if (e == "u" && substr(s, pos + 2, 4) ~ /^[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]$/) {
        cp = hex4(substr(s, pos + 2, 4))
        if (cp >= 55296 && cp < 56320 && substr(s, pos + 6, 2) == "\\u") {
          lo = hex4(substr(s, pos + 8, 4))
          if (lo >= 56320 && lo < 57344) { cp = 65536 + (cp - 55296) * 1024 + (lo - 56320); pos += 6 }
        }
        sval = sval utf8(cp); pos += 4
      } else return 0
      pos += 2; continue
    }
    if (b >= 128) {
      if (b >= 194 && b <= 223) need = 1
      else if (b >= 224 && b <= 239) need = 2
      else if (b >= 240 && b <= 244) need = 3
      else return 0
      for (k = 1; k <= need; k++) { e = ord[substr(s, pos + k, 1)]; if (e < 128 || e > 191) return 0 }
      sval = sval substr(s, pos, need + 1); pos += need + 1; continue
    }
    sval = sval c; pos++
  }
  return 0
}
{
  s = $0; n = length(s); pos = 1; found = 0; fval = ""; wseen = ""
  if (n == 0) next
  if (!val("") || (ws() || pos <= n)) { bad++; printf "invalid JSON line %d: %s\n", NR, substr(s, 1, 120) > "/dev/stderr"; next }
  if (want != "" && found && (where == "" || wseen == wval)) {
    if (last) out = fval; else printf "%s", fval
    nmatch++
  }
}
END { if (last && nmatch) printf "%s", out; exit bad > 0 }'

jsonl_valid() { awk "$json_awk" "$@" >/dev/null; }
jget() { # jget <path> [where] [last] < file
  awk -v want="$1" -v where="${2:-}" -v last="${3:-0}" "$json_awk"
}

# -- the validator itself -----------------------------------------------------
for f in codex/implement codex/write-allowed gemini/review-findings-block claude/review-findings-block \
  claude/implement claude/implement-json copilot/implement copilot/review-findings-block; do
  check "validator accepts fixture $f" jsonl_valid "$fixtures/$f.stdout"
done
bad_lines=('{"a":1,}' '{"a":"x' "{'a':1}" '{"a":"tab	raw"}' '[1 2]' '{"a":01}' '{"a":"\x"}' '{"a":1} x' \
  $'{"a":"\xff"}' '{"a":tru}')
for line in "${bad_lines[@]}"; do
  if printf '%s\n' "$line" | jsonl_valid 2>/dev/null; then
    not_ok "validator rejects $line"
  else
    ok "validator rejects $line"
  fi
done
got=$(printf '%s\n' '{"item":{"text":"a\n\"b\"\\ \u00e4 \ud83d\ude00"}}' | jget item.text)
check "getter decodes escapes" [ "$got" = $'a\n"b"\\ \xc3\xa4 \xf0\x9f\x98\x80' ]
got=$(jget result < "$fixtures/claude/review-findings-block.stdout")
check "getter reads claude's result" grep -q '"findings"' <<<"$got"

# -- agents: presence, --version ----------------------------------------------
for a in codex gemini claude copilot; do
  exe=$agents/demo-$a
  check "demo-$a is executable" test -x "$exe"
  check "demo-$a parses" bash -n "$exe"
  out=$("$exe" --version 2>&1)
  check "demo-$a --version" [ "$out" = "demo-$a 0.0.0 (ai-orchestrator demo agent, offline)" ]
done
check "lib.sh parses" bash -n "$agents/lib.sh"
check "demo.yaml exists" test -f "$src/examples/demo.yaml"

# -- the default workflow, by hand ----------------------------------------------
ws=$work/ws
mkdir -p "$ws"
cd "$ws" || exit 1
task='Build a "shopping list" CLI'
# A prompt shaped like runtime/review.cpp's render_prompt: first line
# "Task kind: <kind>", then the task under a "## Task" heading.
prompt_for() {
  printf 'Task kind: %s\n\n## Task\n\n%s\n\n## What to do\n\nDo it.\n\nThis is iteration 1.\n' "$1" "$task"
}

# Writes every ```lang title=PATH block of text on stdin, like the orchestrator.
apply_blocks() {
  awk '/^```+[A-Za-z0-9_+-]* title=/ {
         fence = $0; sub(/[^`].*/, "", fence); path = $0; sub(/.*title=/, "", path)
         buf = ""; inside = 1; next }
       inside && $0 == fence { printf "%s", buf > path; close(path); inside = 0; print path; next }
       inside { buf = buf $0 "\n" }'
}
count_findings() { grep -c '"severity": "' || true; }

# run <name> <stdout file> <agent argv...> (prompt on stdin)
run() {
  local name=$1 file=$2
  shift 2
  if "$@" >"$file" 2>"$file.err"; then
    check "$name exits 0" true
  else
    not_ok "$name exits 0" "$(head -c 300 "$file.err")"
  fi
  if jsonl_valid "$file" 2>"$file.bad"; then ok "$name prints valid JSONL"; else not_ok "$name prints valid JSONL" "$(head -c 300 "$file.bad")"; fi
}

expected=(4 2 0)
for it in 1 2 3; do
  run "iteration $it: demo-codex implement" codex.out \
    "$agents/demo-codex" exec --json --skip-git-repo-check -s workspace-write - \
    <<<"$(prompt_for implement)"
  check "iteration $it: codex starts with thread.started" grep -q '^{"type":"thread.started","thread_id":"' <(head -n 1 codex.out)
  check "iteration $it: codex ends with turn.completed usage" grep -q '^{"type":"turn.completed","usage":{"input_tokens":[0-9]*,"cached_input_tokens":0,.*"output_tokens":[0-9]*,"reasoning_output_tokens":0}}$' <(tail -n 1 codex.out)
  msg=$(jget item.text 'item.type=agent_message' 1 <codex.out)
  check "iteration $it: codex message is marked as demo" grep -q '^\[demo agent\]' <<<"$msg"
  if ((it == 1)); then
    check "iteration 1: codex reports 5 added files" [ "$(grep -o '"kind":"add"' <(grep '"type":"item.completed"' codex.out) | wc -l)" -eq 5 ]
    check "iteration 1: file_change paths are absolute" grep -q "\"path\":\"$ws/app/main.py\"" codex.out
    check "iteration 1: README names the task from the ## Task section" grep -q '^Task: Build a shopping list CLI$' README.md
  else
    check "iteration $it: codex fixed one file" grep -q '"type":"file_change","changes":\[{"path":"/[^"]*","kind":"update"}\],"status":"completed"' codex.out
  fi

  run "iteration $it: demo-gemini review" gemini.out \
    "$agents/demo-gemini" -o stream-json --approval-mode auto_edit --skip-trust \
    -p "$(prompt_for review)" </dev/null
  check "iteration $it: gemini starts with init" grep -q '^{"type":"init","timestamp":"[^"]*","session_id":"[^"]*","model":"demo-offline"}$' <(head -n 1 gemini.out)
  check "iteration $it: gemini ends with result success" grep -q '^{"type":"result","timestamp":"[^"]*","status":"success","stats":{"total_tokens":' <(tail -n 1 gemini.out)
  review=$(jget content 'role=assistant' <gemini.out)
  check "iteration $it: gemini reply has a json block" grep -q '^```json$' <<<"$review"
  got=$(count_findings <<<"$review")
  check "iteration $it: review reports ${expected[it - 1]} findings (got $got)" [ "$got" -eq "${expected[it - 1]}" ]

  run "iteration $it: demo-copilot suggestions" copilot.out \
    "$agents/demo-copilot" -p "$(prompt_for suggestions)" --output-format json --allow-all-tools </dev/null
  check "iteration $it: copilot ends with result exitCode 0" grep -q '^{"type":"result","timestamp":"[^"]*","sessionId":"[^"]*","exitCode":0,"usage":{' <(tail -n 1 copilot.out)
  sugg=$(jget data.content 'type=assistant.message' 1 <copilot.out)
  got=$(count_findings <<<"$sugg")
  check "iteration $it: copilot suggests ${expected[it - 1]} (got $got)" [ "$got" -eq "${expected[it - 1]}" ]
  if ((got > 0)); then
    check "iteration $it: copilot suggestions are low" [ "$(grep -c '"severity": "low"' <<<"$sugg")" -eq "$got" ]
  fi

  run "iteration $it: demo-claude refine" claude.out \
    "$agents/demo-claude" -p --output-format stream-json --verbose --permission-mode acceptEdits \
    <<<"$(prompt_for refine)"
  check "iteration $it: claude starts with system/init" grep -q '^{"type":"system","subtype":"init",' <(head -n 1 claude.out)
  check "iteration $it: claude ends with a successful result" grep -q '^{"type":"result","subtype":"success","is_error":false,.*"total_cost_usd":0,' <(tail -n 1 claude.out)
  result=$(jget result <claude.out)
  text=$(jget message.content.0.text 'type=assistant' <claude.out)
  check "iteration $it: claude result equals its assistant text" [ "$result" = "$text" ]
  written=$(apply_blocks <<<"$result")
  if ((it < 3)); then
    check "iteration $it: claude replied with one file block ($written)" [ "$(wc -w <<<"$written")" -eq 1 ]
  else
    check "iteration 3: claude has nothing left to refine" [ -z "$written" ]
  fi
done
check "no marker is left" [ -z "$(grep -rn '^ *# REVIEW: ' . 2>/dev/null)" ]
check "no agent wrote outside the project files" [ "$(find . -type f ! -name '*.out' ! -name '*.err' ! -name '*.bad' | sort | tr '\n' ' ')" = "./README.md ./app/__init__.py ./app/main.py ./app/models.py ./tests/test_main.py " ]

# -- more argv and prompt forms ----------------------------------------------------
mkdir -p "$work/ro"
cd "$work/ro" || exit 1
run "codex in the default read-only sandbox" ro.out "$agents/demo-codex" exec --json "Task kind: implement" </dev/null
check "read-only codex writes nothing" [ ! -e app ]
run "gemini with --prompt= and -m" g.out "$agents/demo-gemini" -m some-model "--prompt=Task kind: review" -o stream-json </dev/null
check "gemini on an empty dir: no remaining issues" grep -q 'No remaining issues' <(jget content 'role=assistant' <g.out)
run "claude document with the prompt as argument" d.out "$agents/demo-claude" -p "Task kind: document" --output-format stream-json --verbose </dev/null
check "claude document replies with docs/USAGE.md" grep -q '^```markdown title=docs/USAGE.md$' <(jget result <d.out)
run "copilot with the prompt on stdin" c.out "$agents/demo-copilot" --output-format json <<<"Task kind: suggestions"
if "$agents/demo-claude" -p --output-format stream-json --verbose </dev/null >/dev/null 2>&1; then
  not_ok "claude without a prompt exits non-zero"
else
  ok "claude without a prompt exits non-zero"
fi

# Awkward bytes in files and prompts still give valid JSON.
mkdir -p "$work/evil"
cd "$work/evil" || exit 1
printf 'x = "a\\b\t\001\037\r" \377 \303\244\n# REVIEW: tab\there "q" \\ \002 \377 injection\n' >evil.py
prompt=$(printf 'Task kind: review\nTask: a\\b "q" \001 \377 `x` {{TASK}}\n')
for a in gemini copilot claude; do
  run "demo-$a on awkward bytes" "$a.out" "$agents/demo-$a" -p "$prompt" </dev/null
done
run "demo-claude refine on awkward bytes" refine.out "$agents/demo-claude" -p "Task kind: refine"$'\n'"Task: x" </dev/null
check "the awkward finding is high (injection)" grep -q '"severity": "high", "file": "evil.py", "line": 2' <(jget content 'role=assistant' <gemini.out)
run "demo-codex implement with an awkward task" codex.out "$agents/demo-codex" exec --json -s workspace-write - <<<"${prompt/review/implement}"
check "the awkward task is sanitised in README.md" grep -q "^Task: a b q x TASK$" README.md

printf '%d passed, %d failed\n' "$pass" "$fail"
((fail == 0))
