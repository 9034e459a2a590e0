# Shared by the fake agent CLIs (tests/fakes/{codex,claude,gemini,copilot}):
# replays what the real CLI printed, from tests/fixtures/agent-output/<cli>/.
# Sourced, not run: `. "$(dirname "$0")/lib/replay.sh"; fake_main <cli>`.
#
# FAKE_CASE selects the behaviour (default: implement):
#   <case>  a fixture: cat <case>.stdout to stdout and <case>.stderr to
#           stderr, then exit with the meta's exit_code; a case the real CLI
#           never ended by itself (meta "timed_out": true) hangs afterwards
#   hang    prints nothing and never exits (first-output deadline)
#   crash   dies of SIGSEGV
#   flood   endless JSON lines (output cap); with FAKE_FLOOD_BYTES=N it
#           stops after N bytes, prints the implement fixture and exits 0
#   write   writes version.py into the working directory, then replays
#           write-allowed
# Paths are found from this file's own location, never from the caller's.

fake_fixtures() {
  printf '%s/../../fixtures/agent-output/%s' \
    "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)" "$1"
}

fake_replay() {
  local dir=$1 name=$2
  if [ ! -f "$dir/$name.stdout" ]; then
    echo "fake: no fixture $dir/$name" >&2
    exit 64
  fi
  cat "$dir/$name.stdout"
  cat "$dir/$name.stderr" >&2
  if grep -q '"timed_out": *true' "$dir/$name.meta.json"; then
    exec sleep infinity
  fi
  local code
  code=$(sed -n 's/^ *"exit_code": *\([0-9]*\).*/\1/p' "$dir/$name.meta.json")
  exit "${code:-0}"
}

fake_main() {
  local dir
  dir=$(fake_fixtures "$1")
  # Like the real CLIs: read the prompt to EOF before answering.
  cat > /dev/null
  case "${FAKE_CASE:-implement}" in
    hang)
      exec sleep infinity
      ;;
    crash)
      ulimit -c 0 # no core file in the workspace
      kill -SEGV $$
      ;;
    flood)
      local line='{"type":"noise","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}'
      if [ -n "${FAKE_FLOOD_BYTES:-}" ]; then
        yes "$line" | head -c "$FAKE_FLOOD_BYTES"
        echo
        fake_replay "$dir" implement
      fi
      exec yes "$line"
      ;;
    write)
      printf '__version__ = "0.1.0"' > version.py
      fake_replay "$dir" write-allowed
      ;;
    *)
      fake_replay "$dir" "$FAKE_CASE"
      ;;
  esac
}
