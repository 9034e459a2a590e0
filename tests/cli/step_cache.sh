#!/usr/bin/env bash
# The step cache through the binary (issue 12, part 6): the same task run
# twice on two fresh workspaces with the same content spawns the agent once;
# the second run writes the same files with the same bytes, deletes what the
# first deleted, and its manifest, `--json` and progress line say "cached".
# `--no-cache` runs the agent again; a corrupted cache file does not break a
# run (it runs the agent and is reported in the log); settings.cache.enabled
# false runs it too.
# Usage: step_cache.sh <ai-orchestrator binary> <source dir>
set -u
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/xdg XDG_STATE_HOME=$tmp/state NO_COLOR=1
export COUNT_FILE=$tmp/invocations
mkdir -p "$HOME" "$XDG_CONFIG_HOME"
: >"$COUNT_FILE"
passed=0
failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }
check() { # check NAME COMMAND...
  local name=$1
  shift
  if "$@"; then ok "$name"; else fail "$name"; fi
}
count() { wc -l <"$COUNT_FILE" | tr -d ' '; }
# cached_of MANIFEST_OR_JSON -> "true"/"false" of the first step
cached_of() {
  python3 -c 'import json,sys; print(str(json.load(open(sys.argv[1]))["iterations"][0]["steps"][0]["cached"]).lower())' "$1" 2>/dev/null
}

write_config() { # write_config FILE ENABLED
  cat >"$1" <<YAML
agents:
  counter:
    adapter: command
    command: $src/tests/fakes/counting-agent
    env: [COUNT_FILE]
    deadlines: {first_output: 10, idle: 10, total: 30}
workflows:
  default:
    - {agent: counter, task: implement}
settings:
  cache: {enabled: $2, ttl: 3600}
YAML
}
write_config "$tmp/on.yaml" true
write_config "$tmp/off.yaml" false

fresh() { # fresh WORKSPACE: the same content each time
  mkdir -p "$1"
  printf 'apples\npears\n' >"$1/in.txt"
  printf 'old\n' >"$1/obsolete.txt"
}

# run_in WORKSPACE CONFIG [ARGS...] -> stdout in $out, stderr in $err, $rc
run_in() {
  local ws=$1 cfg=$2
  shift 2
  out=$(timeout -s KILL 60 "$bin" run "Write the list" --config "$cfg" \
    --output "$ws" "$@" 2>"$tmp/stderr")
  rc=$?
  err=$(cat "$tmp/stderr")
}

# 1. The first run: a miss, the agent runs once.
fresh "$tmp/ws1"
run_in "$tmp/ws1" "$tmp/on.yaml"
check "the first run succeeds" test "$rc" -eq 0
check "the first run spawns the agent" test "$(count)" -eq 1
check "the first run is not cached" test "$(cached_of "$tmp/ws1/.orchestrator/manifest.json")" = false
check "an entry file appears in the state directory's cache" \
  bash -c "ls '$tmp/state/ai-orchestrator/cache/'*.entry >/dev/null 2>&1"

# 2. The same task on a fresh workspace with the same content: a hit.
fresh "$tmp/ws2"
run_in "$tmp/ws2" "$tmp/on.yaml" --json
check "the second run succeeds" test "$rc" -eq 0
check "the second run spawns no agent process" test "$(count)" -eq 1
for f in out.txt notes.md; do
  check "the second run writes $f with the same bytes" cmp -s "$tmp/ws1/$f" "$tmp/ws2/$f"
done
check "the second run deletes what the first deleted" test ! -e "$tmp/ws2/obsolete.txt"
check "the manifest marks the step cached" \
  test "$(cached_of "$tmp/ws2/.orchestrator/manifest.json")" = true
printf '%s' "$out" >"$tmp/out2.json"
check "run --json marks the step cached" test "$(cached_of "$tmp/out2.json")" = true
if grep -q 'implement.*cached' <<<"$err"; then
  ok "the progress line says cached"
else
  fail "the progress line says cached"
  printf '%s\n' "$err"
fi

# 3. --no-cache runs the agent again.
fresh "$tmp/ws3"
run_in "$tmp/ws3" "$tmp/on.yaml" --no-cache
check "--no-cache succeeds" test "$rc" -eq 0
check "--no-cache runs the agent again" test "$(count)" -eq 2
check "--no-cache is not marked cached" test "$(cached_of "$tmp/ws3/.orchestrator/manifest.json")" = false

# 4. A corrupted cache file: the run still works, runs the agent, logs it.
for f in "$tmp/state/ai-orchestrator/cache/"*.entry; do
  head -c 100 "$f" >"$f.cut" && mv "$f.cut" "$f"
done
fresh "$tmp/ws4"
run_in "$tmp/ws4" "$tmp/on.yaml"
check "a run with a corrupted cache file succeeds" test "$rc" -eq 0
check "a corrupted cache file is a miss: the agent runs" test "$(count)" -eq 3
check "the run writes its files" cmp -s "$tmp/ws1/out.txt" "$tmp/ws4/out.txt"
check "the corrupted entry is reported in the log" \
  grep -q 'cache-corrupt' "$tmp/state/ai-orchestrator/logs/ai-orchestrator.log"
# ... and the entry was stored again: the next identical run hits.
fresh "$tmp/ws5"
run_in "$tmp/ws5" "$tmp/on.yaml"
check "after a corrupted entry the cache works again" test "$(count)" -eq 3

# 5. settings.cache.enabled: false runs the agent every time.
fresh "$tmp/ws6"
run_in "$tmp/ws6" "$tmp/off.yaml"
check "cache.enabled false runs the agent" test "$(count)" -eq 4

# 6. Another workspace content is another key.
fresh "$tmp/ws7"
printf 'plums\n' >>"$tmp/ws7/in.txt"
run_in "$tmp/ws7" "$tmp/on.yaml"
check "another workspace content runs the agent" test "$(count)" -eq 5

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
