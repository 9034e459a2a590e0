#!/usr/bin/env bash
# Golden tests of the CLI's text output and exit codes: runs the built binary
# on fixture configs and the demo agents, normalises what varies between runs
# (run ids, durations, temp paths, token counts; runs of spaces, since table
# widths follow path lengths) and diffs against
# tests/cli/golden/*.txt. UPDATE_GOLDEN=1 rewrites the expected files.
# Usage: golden_output.sh <ai-orchestrator binary> <source dir>
set -u
bin=$1
src=$2
golden=$src/tests/cli/golden
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# No user or local config may leak in: the built-in default must apply.
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/xdg NO_COLOR=1
mkdir -p "$HOME" "$XDG_CONFIG_HOME"
cd "$tmp"
passed=0
failed=0

normalise() {
  sed -E \
    -e "s#$src#<SRC>#g" \
    -e "s#$tmp#<TMP>#g" \
    -e 's#[0-9]{8}-[0-9]{6}-[0-9]{3}-[0-9a-f]{6}#<RUN-ID>#g' \
    -e 's#[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}#<UUID>#g' \
    -e 's#\([0-9]+\.[0-9]s\)#(<T>)#g' \
    -e 's#\([0-9]+m[0-9]{2}s\)#(<T>)#g' \
    -e 's#stopped after [0-9]+\.[0-9] s#stopped after <T> s#g' \
    -e 's#<prompt> \([0-9]+ bytes\)#<prompt> (<N> bytes)#' \
    -e 's#^Usage: [0-9]+ input, [0-9]+ output#Usage: <N> input, <N> output#' \
    -e 's#  +#  #g'
}

# check NAME EXPECTED_EXIT -- COMMAND...
check() {
  local name=$1 want=$2
  shift 3
  local out rc
  # No step cached by an earlier check: it would change this one's output.
  rm -rf "$HOME/.local/state/ai-orchestrator/cache"
  # A fixed environment: what the agents get (and dry-run shows) must not
  # depend on the caller's.
  out=$(env -i PATH="$PATH" HOME="$HOME" XDG_CONFIG_HOME="$XDG_CONFIG_HOME" \
    NO_COLOR=1 LANG=C.UTF-8 ${UBSAN_OPTIONS:+UBSAN_OPTIONS="$UBSAN_OPTIONS"} \
    ${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS"} "$@" 2>&1)
  rc=$?
  out=$(printf '%s\nexit: %s\n' "$out" "$rc" | normalise)
  if [ -n "${UPDATE_GOLDEN:-}" ]; then
    printf '%s\n' "$out" >"$golden/$name.txt"
  fi
  if [ "$rc" != "$want" ]; then
    echo "FAIL $name: exit $rc, expected $want"
    printf '%s\n' "$out"
    failed=$((failed + 1))
  elif ! diff -u "$golden/$name.txt" <(printf '%s\n' "$out"); then
    echo "FAIL $name: output differs from $golden/$name.txt"
    failed=$((failed + 1))
  else
    echo "ok   $name"
    passed=$((passed + 1))
  fi
}

cat >"$tmp/broken.yaml" <<'YAML'
agents:
  codex:
    command: codex
    deadlines: {first_output: 900, idle: -5, total: 600}
    colour: blue
  gemini:
    max_concurrency: many
workflows:
  default:
    - {agent: codex, task: implement}
    - {agent: gemeni, task: review}
  empty: []
YAML

# A real-format codex that answers 401 (its recorded output), and one that
# writes a file and then hangs past its deadline.
cat >"$tmp/failing.yaml" <<YAML
agents:
  codex:
    command: $src/tests/fakes/codex
    env_set: {FAKE_CASE: api-401}
  slow:
    adapter: codex
    command: $src/tests/fakes/codex
    env_set: {FAKE_CASE: hang}
    deadlines: {first_output: 0.3, idle: 0.3, total: 5}
    retry: {attempts: 1}
workflows:
  default:
    - {agent: codex, task: implement}
  slow:
    - {agent: slow, task: implement}
settings: {kill_grace: 0.1}
YAML

demo=$src/examples/demo.yaml
check version 0 -- "$bin" --version
check workflows-builtin 0 -- "$bin" workflows
check validate-builtin 0 -- "$bin" validate
check validate-broken 2 -- "$bin" validate --config "$tmp/broken.yaml"
check validate-demo 0 -- "$bin" validate --config "$demo"
check agents-demo 0 -- "$bin" agents --config "$demo"
check run-demo-default 0 -- "$bin" run "Create a REST API for blog posts" \
  --config "$demo" --output "$tmp/ws-default"
check run-demo-parallel 0 -- "$bin" run "Create a REST API for blog posts" \
  --config "$demo" --workflow parallel-review --output "$tmp/ws-parallel"
check run-unknown-workflow 2 -- "$bin" run "x" --config "$demo" --workflow nope
check run-dry-run 0 -- "$bin" run "Add error handling" --config "$demo" \
  --workflow quick --output "$tmp/ws-dry" --dry-run
check run-dry-run-agents 0 -- "$bin" run "Add error handling" --config "$demo" \
  --agents demo-codex,demo-copilot,demo-claude --output "$tmp/ws-dry" --dry-run
check run-agents-wrong-count 2 -- "$bin" run "x" --config "$demo" \
  --agents demo-codex,demo-claude
check run-verbose-quick 0 -- "$bin" run "Create a CLI tool" --config "$demo" \
  --workflow quick --verbose --output "$tmp/ws-verbose"
check run-agent-auth-failure 1 -- "$bin" run "Create a CLI tool" \
  --config "$tmp/failing.yaml" --output "$tmp/ws-fail"
check run-agent-timeout 1 -- "$bin" run "Create a CLI tool" \
  --config "$tmp/failing.yaml" --workflow slow --output "$tmp/ws-slow"
[ -e "$tmp/ws-dry" ] && { echo "FAIL --dry-run created its workspace"; failed=$((failed + 1)); }

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
