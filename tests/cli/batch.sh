#!/usr/bin/env bash
# `batch` end to end with a fake agent (tests/fakes/batch-agent):
# 1. 200 tasks at concurrency 16, some flaky (crash once, succeed on the
#    retry), some hanging past their deadline, some failing: every id is in
#    the output exactly once, each line says how it ended (status, failure
#    kind), exit 1, no agent process left;
# 2. --resume after a torn last line: the torn line is cut off, the ids done
#    are skipped, the rest run, every id once;
# 3. bad input lines (invalid JSON and UTF-8, missing or wrong fields,
#    duplicate ids, a huge line, deep nesting) are reported with their line
#    numbers and skipped; --strict refuses to start (exit 2, no output);
# 4. Ctrl-C once some results are in: exit 130, every output line parses, no
#    agent process left; --resume then completes the batch.
# Usage: batch.sh <ai-orchestrator binary> <source dir>
set -u
bin=$1
src=$2
fakes=$src/tests/fakes
tmp=$(mktemp -d)
started=()
cleanup() {
  for p in "${started[@]}"; do kill -9 "$p" 2>/dev/null; done
  if [ -s "$tmp/pids" ]; then
    while read -r p; do kill -9 "$p" 2>/dev/null; done <"$tmp/pids"
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
[ -n "${KEEP_TMP:-}" ] && trap - EXIT && echo "tmp: $tmp"
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
    printf '%s\n' "${out:-}" | head -40
  fi
}
# py SCRIPT ARGS...: runs a python check that prints what it finds.
py() { python3 -c "$@"; }

cat >"$tmp/cfg.yaml" <<YAML
agents:
  worker:
    adapter: command
    command: $fakes/batch-agent
    env_set: {BATCH_PIDS: $tmp/pids}
    max_concurrency: 8
    # Generous for a loaded machine; HANG sleeps far past it.
    deadlines: {first_output: 4, idle: 0, total: 4}
    retry: {attempts: 2, base: 0.05, cap: 0.1}
    # The failures here are on purpose: the breaker must not refuse the rest.
    circuit_breaker: {failures: 1000, window: 1}
workflows:
  default:
    - {agent: worker, task: implement}
settings:
  workspace_dir: $tmp/ws
  state_dir: $tmp/state
  kill_grace: 0.1
  max_task_chars: 1000
YAML
cfg=$tmp/cfg.yaml

# no_agents_left: true when no pid the fake agent recorded is alive.
no_agents_left() {
  local p
  [ -s "$tmp/pids" ] || return 0
  while read -r p; do
    if kill -0 "$p" 2>/dev/null; then
      echo "agent process $p is still alive: $(ps -o args= -p "$p")"
      return 1
    fi
  done <"$tmp/pids"
  return 0
}

# ids_once FILE N: every line parses, and t0..t(N-1) each appear once.
ids_once() {
  py 'import json,sys
ids=[json.loads(l)["id"] for l in open(sys.argv[1])]
want=["t%d" % i for i in range(int(sys.argv[2]))]
bad=[i for i in want if ids.count(i) != 1]
extra=[i for i in ids if i not in want]
if bad or extra:
    print("ids not there exactly once:", bad[:10], "unexpected:", extra[:10])
    sys.exit(1)' "$1" "$2"
}

# -- 1. 200 tasks, concurrency 16 ---------------------------------------------
py 'import json
for i in range(200):
    kind = "HANG" if i % 40 == 7 else "FLAKY" if i % 10 == 3 else \
           "FAIL" if i % 20 == 11 else "plain"
    print(json.dumps({"id": "t%d" % i, "task": "task %d: %s" % (i, kind)}))' \
  >"$tmp/tasks.jsonl"
"$bin" batch "$tmp/tasks.jsonl" --config "$cfg" --out "$tmp/out.jsonl" \
  --concurrency 16 >"$tmp/b1.out" 2>"$tmp/b1.err"
rc=$?
out=$(cat "$tmp/b1.out" "$tmp/b1.err")
check "a batch with failures exits 1" test "$rc" -eq 1
check "200 result lines" test "$(wc -l <"$tmp/out.jsonl")" -eq 200
out=$(ids_once "$tmp/out.jsonl" 200)
check "every id appears exactly once" test -z "$out"
out=$(py 'import json,sys
for l in open(sys.argv[1]):
    j = json.loads(l)
    i = int(j["id"][1:])
    kind = "HANG" if i % 40 == 7 else "FLAKY" if i % 10 == 3 else \
           "FAIL" if i % 20 == 11 else "plain"
    want = {"HANG": ("failed", "timeout_total"), "FLAKY": ("completed", "none"),
            "FAIL": ("failed", "agent_error"), "plain": ("completed", "none")}[kind]
    got = (j["status"], j["failure"])
    if got != want:
        print(j["id"], kind, got, "expected", want)
    if kind == "FLAKY" and len(j["iterations"][0]["steps"][0]["attempts"]) != 2:
        print(j["id"], "flaky without two attempts")
    if not j["run_id"] or not j["workspace"].endswith("/" + j["run_id"]):
        print(j["id"], "workspace is not <workspace_dir>/<run id>:", j["workspace"])
' "$tmp/out.jsonl")
check "each line is classified (status and failure kind)" test -z "$out"
out=$(cat "$tmp/b1.out")
check "the summary counts them" \
  grep -q 'Batch: 200 task(s) ended: 185 succeeded, 15 failed' "$tmp/b1.out"
out=$(no_agents_left)
check "no agent process is left after the batch" test -z "$out"

# -- 2. --resume after a torn last line ---------------------------------------
head -n 150 "$tmp/out.jsonl" >"$tmp/resume.jsonl"
sed -n 151p "$tmp/out.jsonl" | head -c 100 >>"$tmp/resume.jsonl"
head -n 150 "$tmp/out.jsonl" >"$tmp/kept.jsonl"
"$bin" batch "$tmp/tasks.jsonl" --config "$cfg" --out "$tmp/resume.jsonl" \
  --concurrency 16 --resume >"$tmp/b2.out" 2>"$tmp/b2.err"
rc=$?
out=$(cat "$tmp/b2.out" "$tmp/b2.err")
check "--resume says the torn line was cut off" \
  grep -q 'ended in a torn line (100 bytes, no newline): cut off' "$tmp/b2.err"
check "--resume skips the 150 ids done" \
  grep -q 'Skipped: 150 task(s) already in' "$tmp/b2.out"
check "--resume runs the other 50" grep -q 'Batch: 50 task(s) ended' "$tmp/b2.out"
out=$(ids_once "$tmp/resume.jsonl" 200)
check "after --resume every id appears exactly once" test -z "$out"
check "the lines done before are kept as they were" \
  cmp -s "$tmp/kept.jsonl" <(head -n 150 "$tmp/resume.jsonl")
"$bin" batch "$tmp/tasks.jsonl" --config "$cfg" --out "$tmp/resume.jsonl" \
  --resume >"$tmp/b2b.out" 2>&1
rc=$?
out=$(cat "$tmp/b2b.out")
check "--resume of a complete output runs nothing and exits 0" \
  test "$rc" -eq 0 -a "$(wc -l <"$tmp/resume.jsonl")" -eq 200
"$bin" batch "$tmp/tasks.jsonl" --config "$cfg" --out "$tmp/resume.jsonl" \
  >"$tmp/b2c.out" 2>&1
rc=$?
out=$(cat "$tmp/b2c.out")
check "an output that holds data is refused without --resume" \
  test "$rc" -eq 2 -a "$(wc -l <"$tmp/resume.jsonl")" -eq 200
ln -s "$tmp/elsewhere.jsonl" "$tmp/link.jsonl"
"$bin" batch "$tmp/tasks.jsonl" --config "$cfg" --out "$tmp/link.jsonl" \
  >"$tmp/b2d.out" 2>&1
rc=$?
out=$(cat "$tmp/b2d.out")
check "an output that is a symlink is refused, never followed" \
  test "$rc" -eq 2 -a ! -e "$tmp/elsewhere.jsonl"

# -- 3. bad input lines -------------------------------------------------------
{
  echo '{"id": "t0", "task": "fine"}'                       # 1
  echo 'not json at all'                                    # 2
  echo ''                                                   # 3 (blank)
  printf '{"id": "u", "task": "bad \xff byte"}\n'           # 4
  echo '{"task": "no id"}'                                  # 5
  echo '{"id": 7, "task": "number id"}'                     # 6
  echo '{"id": "t0", "task": "duplicate"}'                  # 7
  echo '{"id": "e", "task": "   "}'                         # 8
  py 'print("{\"id\": \"big\", \"task\": \"" + "x" * 100000 + "\"}")' # 9
  echo '{"id": "deep", "task": [[[[[[[[[[[[1]]]]]]]]]]]]}'  # 10
  echo '{"id": "t1", "task": "fine too", "agents": ["worker"]}' # 11
  echo '{"id": "w", "task": "typo", "workfow": "x"}'        # 12
  echo '["an", "array"]'                                    # 13
  echo '{"id": "n", "task": "nul \u0000 in it"}'            # 14
  echo '{"id": "m", "task": "x", "max_iterations": 0}'      # 15
  echo '   '                                                # 16 (blank)
} >"$tmp/bad.jsonl"
"$bin" batch "$tmp/bad.jsonl" --config "$cfg" --out "$tmp/bad-out.jsonl" \
  >"$tmp/b3.out" 2>"$tmp/b3.err"
rc=$?
out=$(cat "$tmp/b3.out" "$tmp/b3.err")
check "bad lines make the exit code 1" test "$rc" -eq 1
for n in 2 4 5 6 7 8 9 10 12 13 14 15; do
  check "bad line $n is reported with its number" \
    grep -q "^bad.jsonl:$n: \|/bad.jsonl:$n: " "$tmp/b3.err"
done
check "blank lines are not reported" \
  test "$(grep -c 'bad.jsonl:[0-9]*: ' "$tmp/b3.err")" -eq 12
check "invalid UTF-8 is named" grep -q 'bad.jsonl:4: invalid UTF-8 at byte' "$tmp/b3.err"
check "a missing field is named" grep -q 'bad.jsonl:5: missing field "id"' "$tmp/b3.err"
check "a duplicate id is named" grep -q 'bad.jsonl:7: duplicate id "t0"' "$tmp/b3.err"
check "an unknown field is named" grep -q 'bad.jsonl:12: unknown field "workfow"' "$tmp/b3.err"
check "the good lines ran" test "$(wc -l <"$tmp/bad-out.jsonl")" -eq 2
"$bin" batch "$tmp/bad.jsonl" --config "$cfg" --out "$tmp/strict.jsonl" \
  --strict >"$tmp/b4.out" 2>"$tmp/b4.err"
rc=$?
out=$(cat "$tmp/b4.out" "$tmp/b4.err")
check "--strict refuses to start: exit 2" test "$rc" -eq 2
check "--strict reports every bad line" \
  test "$(grep -c 'bad.jsonl:[0-9]*: ' "$tmp/b4.err")" -eq 12
check "--strict writes no output" test ! -e "$tmp/strict.jsonl"

# -- 4. Ctrl-C mid-batch ------------------------------------------------------
: >"$tmp/pids"
py 'import json
for i in range(60):
    print(json.dumps({"id": "t%d" % i, "task": "task %d: SLOW" % i}))' \
  >"$tmp/slow.jsonl"
"$bin" batch "$tmp/slow.jsonl" --config "$cfg" --out "$tmp/int.jsonl" \
  --concurrency 6 >"$tmp/b5.out" 2>"$tmp/b5.err" &
orch=$!
started+=("$orch")
# Wait on the output: 6 results in, at most 20 s.
for ((i = 0; i < 400; i++)); do
  [ -f "$tmp/int.jsonl" ] && [ "$(wc -l <"$tmp/int.jsonl")" -ge 6 ] && break
  sleep 0.05
done
lines_at_signal=$(wc -l <"$tmp/int.jsonl" 2>/dev/null || echo 0)
kill -INT "$orch"
wait "$orch"
rc=$?
out=$(cat "$tmp/b5.out" "$tmp/b5.err")
check "6 results were in before Ctrl-C" test "$lines_at_signal" -ge 6
check "Ctrl-C: exit 130" test "$rc" -eq 130
check "Ctrl-C: the batch did not run to its end" \
  test "$(wc -l <"$tmp/int.jsonl")" -lt 60
out=$(py 'import json,sys
for n, l in enumerate(open(sys.argv[1], "rb"), 1):
    if not l.endswith(b"\n"):
        print("line", n, "is torn")
    j = json.loads(l)
    if j["status"] == "cancelled":
        print("line", n, "is a cancelled run: --resume would skip it")' "$tmp/int.jsonl" 2>&1)
check "Ctrl-C: every output line parses, none is a cancelled run" test -z "$out"
out=$(no_agents_left)
check "Ctrl-C: no agent process is left" test -z "$out"
"$bin" batch "$tmp/slow.jsonl" --config "$cfg" --out "$tmp/int.jsonl" \
  --concurrency 16 --resume >"$tmp/b6.out" 2>"$tmp/b6.err"
rc=$?
out=$(cat "$tmp/b6.out" "$tmp/b6.err")
check "--resume after Ctrl-C completes the batch" test "$rc" -eq 0
out=$(ids_once "$tmp/int.jsonl" 60)
check "after Ctrl-C and --resume every id appears exactly once" test -z "$out"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
