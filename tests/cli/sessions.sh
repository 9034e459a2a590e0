#!/usr/bin/env bash
# Golden tests of `ai-orchestrator sessions` (table, --json, an unreadable
# file listed with its error, none saved) and `ai-orchestrator version`
# (the same line as --version). Session files are written as the session
# actor writes them (the seed's JSON); UPDATE_GOLDEN=1 rewrites the expected
# files. Usage: sessions.sh <ai-orchestrator binary> <source dir>
set -u
bin=$1
src=$2
golden=$src/tests/cli/golden
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/xdg NO_COLOR=1
mkdir -p "$HOME" "$XDG_CONFIG_HOME"
cd "$tmp"
passed=0
failed=0

normalise() {
  sed -E -e "s#$tmp#<TMP>#g" -e 's#  +#  #g'
}

# check NAME EXPECTED_EXIT -- COMMAND...
check() {
  local name=$1 want=$2
  shift 3
  local out rc
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

# `version` prints exactly what `--version` prints.
check version-command 0 -- "$bin" version
v_cmd=$("$bin" version)
v_flag=$("$bin" --version)
if [ "${v_cmd#ai-orchestrator }" != "$v_cmd" ] && [ "$v_cmd" = "$v_flag" ]; then
  echo "ok   version-same-as-flag"
  passed=$((passed + 1))
else
  echo "FAIL version-same-as-flag: '$v_cmd' vs '$v_flag'"
  failed=$((failed + 1))
fi

check sessions-none 0 -- "$bin" sessions

dir=$HOME/.local/state/ai-orchestrator/sessions
mkdir -p "$dir"
chmod 700 "$HOME/.local/state/ai-orchestrator" "$dir"
cat >"$dir/blog-api-project.json" <<'JSON'
{
  "session_id": "3f9a1c0e5b7d2a48",
  "created_at": "2024-01-15T10:00:00Z",
  "workflow": "default",
  "conversation_history": [
    {"role": "user", "content": "create a REST API", "files": [],
     "timestamp": "2024-01-15T10:00:00Z"},
    {"role": "assistant", "content": "API created...",
     "files": ["api.py", "models.py"], "timestamp": "2024-01-15T10:01:30Z"},
    {"role": "user", "content": "add authentication", "files": [],
     "timestamp": "2024-01-15T10:02:00Z"},
    {"role": "assistant", "content": "Authentication added!",
     "files": ["api/auth.py"], "timestamp": "2024-01-15T10:03:10Z"}
  ],
  "workspace": "/home/alice/workspace/session-3f9a1c0e5b7d2a48",
  "metadata": {}
}
JSON
# The seed's example, verbatim.
cat >"$dir/seed-example.json" <<'JSON'
{
  "session_id": "uuid-here",
  "created_at": "2024-01-15T10:00:00Z",
  "workflow": "quick",
  "conversation_history": [
    {"role": "user", "content": "create a REST API",
     "timestamp": "2024-01-15T10:00:00Z"},
    {"role": "assistant", "content": "API created...",
     "files": ["api.py", "models.py"], "timestamp": "2024-01-15T10:01:30Z"}
  ],
  "workspace": "./workspace",
  "metadata": {}
}
JSON
# Cut short by hand, and one with a wrong role.
printf '{"session_id": "x", "created_at": ' >"$dir/broken.json"
cat >"$dir/wrong-role.json" <<'JSON'
{"session_id": "y", "created_at": "2024-01-16T09:00:00Z", "workflow": "default",
 "conversation_history": [{"role": "robot", "content": "hi"}],
 "workspace": "/w", "metadata": {}}
JSON
# Not a session file: ignored.
echo 'notes' >"$dir/README.txt"
check sessions-list 0 -- "$bin" sessions
check sessions-json 0 -- "$bin" sessions --json
# The corrupt file was listed, not touched.
if [ "$(cat "$dir/broken.json")" = '{"session_id": "x", "created_at": ' ]; then
  echo "ok   sessions-corrupt-untouched"
  passed=$((passed + 1))
else
  echo "FAIL sessions-corrupt-untouched"
  failed=$((failed + 1))
fi

echo "passed: $passed, failed: $failed"
[ "$failed" -eq 0 ]
