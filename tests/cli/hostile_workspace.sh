#!/usr/bin/env bash
# Hostile agents against the built binary: links planted in the workspace
# must never redirect a write (an agent's code block or our own manifest),
# and the pre-run copy must save every file of the user's, whatever its name,
# before an agent can delete it (issue 10, defects 1, 2 and 4).
# Usage: hostile_workspace.sh <ai-orchestrator binary> <source dir>
set -u
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/xdg NO_COLOR=1
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$tmp/outside"
passed=0
failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }

cat >"$tmp/hostile.yaml" <<YAML
agents:
  hostile:
    adapter: command
    command: $src/tests/fakes/hostile-writer
    env: [HOSTILE, OUTSIDE]
    deadlines: {first_output: 10, idle: 10, total: 30}
workflows:
  default:
    - {agent: hostile, task: implement}
YAML

# run_hostile ATTACK WORKSPACE -> output in $out, exit code in $rc
run_hostile() {
  out=$(HOSTILE=$1 OUTSIDE=$tmp/outside timeout -s KILL 60 "$bin" run "attack" \
    --config "$tmp/hostile.yaml" --output "$2" 2>&1)
  rc=$?
}

# 1. A link to .git inside the workspace: .git/config stays as it was.
ws=$tmp/ws-git
mkdir -p "$ws/.git"
printf '[core]\n\tbare = false\n' >"$ws/.git/config"
cp "$ws/.git/config" "$tmp/git-config.orig"
run_hostile git-link "$ws"
if cmp -s "$ws/.git/config" "$tmp/git-config.orig" && [ ! -e "$tmp/outside/pwned" ] \
  && grep -q 'g/config' <<<"$out"; then
  ok "a code block named through a link to .git is refused"
else
  fail "a code block named through a link to .git is refused"
  printf '%s\n' "$out"
  cat "$ws/.git/config"
fi

# 2. A planted manifest temp link: the outside file is not touched.
ws=$tmp/ws-meta-tmp
echo "precious" >"$tmp/outside/victim"
run_hostile meta-tmp "$ws"
if [ "$(cat "$tmp/outside/victim")" = "precious" ] \
  && python3 -c 'import json,sys; json.load(open(sys.argv[1]))' \
    "$ws/.orchestrator/manifest.json" 2>/dev/null; then
  ok "a planted manifest temp link is not followed"
else
  fail "a planted manifest temp link is not followed"
  printf '%s\n' "$out"
  ls -la "$ws/.orchestrator" "$tmp/outside"
fi

# 3. .orchestrator replaced by a link: nothing is written outside.
ws=$tmp/ws-meta-link
rm -rf "$tmp/outside" && mkdir -p "$tmp/outside"
run_hostile meta-link "$ws"
if [ -z "$(ls -A "$tmp/outside")" ]; then
  ok "a .orchestrator link leads no write outside"
else
  fail "a .orchestrator link leads no write outside"
  printf '%s\n' "$out"
  ls -laR "$tmp/outside"
fi

# 4. A folder link out of the workspace: the block is refused.
ws=$tmp/ws-dir-link
rm -rf "$tmp/outside" && mkdir -p "$tmp/outside"
run_hostile dir-link "$ws"
if [ ! -e "$tmp/outside/x.py" ] && grep -q 'src/x.py' <<<"$out"; then
  ok "a code block through a folder link out is refused"
else
  fail "a code block through a folder link out is refused"
  printf '%s\n' "$out"
fi

# 5. The user's files, odd names and links included, are all saved before an
#    agent deletes them.
ws=$tmp/ws-project
mkdir -p "$ws/sub"
names=('back\slash.txt' '~x' $'nb\xc2\xa0sp.txt' $'tab\there.txt' $'latin\xe9.txt' 'sub/plain.py')
for n in "${names[@]}"; do printf 'content of %s\n' "$n" >"$ws/$n"; done
ln -s sub/plain.py "$ws/link-to-plain"
run_hostile delete-all "$ws"
run_id=$(sed -n 's/^Run \([^:]*\):.*/\1/p' <<<"$out" | head -n 1)
backup=$ws/.orchestrator/backups/$run_id
all_saved=1
for n in "${names[@]}"; do
  if ! cmp -s "$backup/$n" <(printf 'content of %s\n' "$n"); then
    all_saved=0
    echo "not saved: $(printf '%q' "$n")"
  fi
done
[ -L "$backup/link-to-plain" ] && [ "$(readlink "$backup/link-to-plain")" = sub/plain.py ] \
  || { all_saved=0; echo "link not saved as a link"; }
if [ "$rc" -eq 0 ] && [ -n "$run_id" ] && [ "$all_saved" -eq 1 ]; then
  ok "every existing file and link is saved before the run"
else
  fail "every existing file and link is saved before the run (exit $rc)"
  printf '%s\n' "$out"
  ls -laR "$ws/.orchestrator" 2>/dev/null | head -40
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
