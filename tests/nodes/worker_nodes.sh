#!/usr/bin/env bash
# Worker nodes across processes on 127.0.0.1 (issue 16, parts 2-4): two
# workers with mutual TLS (a CA and certificates made here with openssl),
# a node pool driving 40 tasks over both; kill -9 of one worker mid-batch
# and every task still ends exactly once; files come back under --out-dir;
# a worker whose certificate another CA signed is refused; a version
# mismatch is refused naming both versions; off loopback without TLS is
# refused. Ports are picked by the workers (port 0) and read from their
# first line; readiness is polled, never slept on. Every process here runs
# with a node timeout of 4 s (heartbeats every second). A stale OpenSSL
# error on the pool's multiplexer thread drops no connection (the cause of
# the surviving worker being dropped with a killed one); a killed worker
# restarted on its port rejoins the pool and takes tasks again; a stopped
# worker (SIGSTOP: no FIN) is found silent and its tasks move on. `serve
# --workers` runs the API's tasks and sessions on the nodes
# (tests/nodes/serve_workers.py).
# Usage: worker_nodes.sh <ai-orchestrator> <source dir> <node_pool_harness>
set -u
bin=$(realpath "$1")
src=$(realpath "$2")
harness=$(realpath "$3")
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  [ -n "${ORCH_KEEP_TMP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/xdg XDG_STATE_HOME=$tmp/state NO_COLOR=1
mkdir -p "$HOME" "$XDG_CONFIG_HOME"
passed=0
failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }
check() { # check NAME COMMAND...
  local name=$1
  shift
  if "$@"; then ok "$name"; else fail "$name"; fi
}
json() { # json FILE PYTHON-EXPR-ON-d
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1" 2>/dev/null
}

# -- certificates -------------------------------------------------------------
cd "$tmp" || exit 1
mkca() { # mkca NAME
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$1.key" -out "$1.pem" -days 2 -subj "/CN=$1" 2>/dev/null
}
mkcert() { # mkcert NAME CA
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$1.key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null &&
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" \
      -CAcreateserial -out "$1.pem" -days 2 2>/dev/null
}
mkca ca && mkca rogue-ca && mkcert w1 ca && mkcert w2 ca && mkcert coord ca &&
  mkcert rogue rogue-ca
check "the CA and the node certificates are made with openssl" \
  test -s ca.pem -a -s w1.pem -a -s coord.pem -a -s rogue.pem
tls_of() { echo --tls-ca "$tmp/ca.pem" --tls-cert "$tmp/$1.pem" --tls-key "$tmp/$1.key"; }

# -- workers ------------------------------------------------------------------
write_config() { # write_config FILE WORKSPACE_DIR
  cat >"$1" <<YAML
agents:
  node-agent:
    adapter: command
    command: $src/tests/fakes/node-agent
    env: [NODE_AGENT_SLEEP]
    deadlines: {first_output: 20, idle: 20, total: 60}
workflows:
  default:
    - {agent: node-agent, task: implement}
settings:
  workspace_dir: $2
YAML
}
export NODE_AGENT_SLEEP=0.2
start_worker() { # start_worker NAME CERT [extra args...] -> sets port_NAME
  local name=$1 cert=$2
  shift 2
  write_config "$tmp/$name.yaml" "$tmp/ws-$name"
  # A worker started again under its name: its old first line must not be
  # read as the new one's.
  rm -f "$tmp/$name.out"
  # shellcheck disable=SC2046
  "$bin" -c "$tmp/$name.yaml" worker --listen "127.0.0.1:${LISTEN_PORT:-0}" \
    --slots 4 --node-timeout 4 $(tls_of "$cert") "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pids+=($!)
  eval "pid_$name=$!"
  local deadline=$((SECONDS + 60)) port=""
  while [ $SECONDS -lt $deadline ]; do
    port=$(sed -n 's/^worker listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$tmp/$name.out" 2>/dev/null)
    [ -n "$port" ] && break
    kill -0 "$!" 2>/dev/null || break
    sleep 0.05
  done
  eval "port_$name=$port"
  [ -n "$port" ]
}
check "worker 1 listens with TLS" start_worker w1 w1
check "worker 2 listens with TLS" start_worker w2 w2
check "the worker's first line names TLS and its agents" \
  grep -q "mutual TLS.*agents: node-agent" "$tmp/w1.out"
nodes="127.0.0.1:$port_w1,127.0.0.1:$port_w2"

# -- workers table ------------------------------------------------------------
# shellcheck disable=SC2046
timeout 60 "$bin" workers --workers "$nodes" $(tls_of coord) --json >"$tmp/workers.json" 2>"$tmp/workers.err"
check "workers: exit 0 when both answer" test $? -eq 0
check "workers: both nodes with version, 4 slots and the agent" \
  test "$(json "$tmp/workers.json" "sum(1 for n in d if n['ok'] and n['slots']==4 and n['agents']==['node-agent'] and n['version'])")" = 2
# shellcheck disable=SC2046
timeout 60 "$bin" workers --workers "$nodes" $(tls_of coord) >"$tmp/workers.txt" 2>&1
check "workers: a table with a row per node" \
  test "$(grep -c "^127.0.0.1:.* ok$" "$tmp/workers.txt")" = 2

# -- 40 tasks over both ---------------------------------------------------------
# shellcheck disable=SC2046
timeout 120 "$harness" --node-timeout 4000 --workers "$nodes" --tasks 40 $(tls_of coord) >"$tmp/spread.json" 2>"$tmp/spread.err"
check "40 tasks: every one ends exactly once" test $? -eq 0
check "40 tasks: all completed" \
  test "$(json "$tmp/spread.json" "d['statuses'].get('completed')")" = 40
check "40 tasks: both workers ran some" \
  test "$(json "$tmp/spread.json" "sum(1 for v in d['by_node'].values() if v > 0)")" = 2

# -- files come back under --out-dir -------------------------------------------
mkdir -p "$tmp/out"
# shellcheck disable=SC2046
timeout 120 "$harness" --node-timeout 4000 --workers "$nodes" --tasks 4 --out-dir "$tmp/out" $(tls_of coord) >"$tmp/files.json" 2>"$tmp/files.err"
check "out-dir: the run ends" test $? -eq 0
first_id=$(json "$tmp/files.json" "d['ids'][0]")
check "out-dir: <out-dir>/<id>/out.txt holds what the agent wrote on the node" \
  grep -qx "task 0" "$tmp/out/$first_id/out.txt"

# -- batch --workers: the batch command on the node pool ------------------------
for i in $(seq 1 12); do
  printf '{"id": "t%s", "task": "batch task %s"}\n' "$i" "$i"
done >"$tmp/tasks.jsonl"
# shellcheck disable=SC2046
timeout 120 "$bin" -c "$tmp/w1.yaml" batch "$tmp/tasks.jsonl" --out "$tmp/results.jsonl" -j 8 \
  --workers "$nodes" --out-dir "$tmp/batch-out" --node-timeout 4 $(tls_of coord) >"$tmp/batch.out" 2>"$tmp/batch.err"
check "batch --workers: exit 0" test $? -eq 0
check "batch --workers: one completed line per id" \
  test "$(python3 -c 'import json,sys; L=[json.loads(l) for l in open(sys.argv[1])]; print(len(L), len({l["id"] for l in L}), sum(l["status"]=="completed" for l in L))' "$tmp/results.jsonl")" = "12 12 12"
check "batch --workers: each task's files under --out-dir/<task id>/" \
  test "$(python3 -c '
import json,sys,os
n=0
for l in open(sys.argv[1]):
  d=json.loads(l)
  assert d["workspace"] == os.path.join(sys.argv[2], d["id"]), d["workspace"]
  p=os.path.join(d["workspace"],"out.txt")
  n+=("batch task "+d["id"][1:]+"\n") in open(p).read()
print(n)' "$tmp/results.jsonl" "$tmp/batch-out")" = 12
"$bin" -c "$tmp/w1.yaml" batch "$tmp/tasks.jsonl" --out "$tmp/r2.jsonl" --workers 192.0.2.1:4000 >"$tmp/batch-plain.out" 2>&1
check "batch --workers off loopback without TLS: exit 2, nothing sent" test $? -eq 2
check "batch --workers off loopback without TLS: says why" \
  grep -q "refusing to connect to 192.0.2.1:4000 without TLS" "$tmp/batch-plain.out"

# -- serve --workers: the HTTP API's tasks and sessions on the nodes ------------
timeout 180 python3 "$src/tests/nodes/serve_workers.py" "$bin" "$src" "$nodes" \
  "$tmp/ca.pem" "$tmp/coord.pem" "$tmp/coord.key" >"$tmp/serve.txt" 2>&1
serve_rc=$?
sed 's/^/     serve: /' "$tmp/serve.txt"
check "serve --workers: every check passed" test "$serve_rc" -eq 0
"$bin" -c "$tmp/w1.yaml" serve --listen 127.0.0.1:0 --out-dir "$tmp/x" >"$tmp/serve-plain.out" 2>&1
check "serve --out-dir without --workers: exit 2, says why" \
  bash -c "[ $? -eq 2 ] && grep -q -- '--out-dir and --tls-\* go with --workers' '$tmp/serve-plain.out'"

# check_moved LABEL RC RESULT_JSON STDERR: a harness run that lost one of two
# workers mid-batch: it ended cleanly, both workers were connected at the
# start, all 40 tasks completed, and the lost worker's tasks ran again.
check_moved() {
  local label=$1 rc=$2 out=$3 err=$4
  check "$label: every task still ends exactly once" test "$rc" -eq 0
  check "$label: both workers were connected at the start" \
    bash -c "! grep -q '^error' '$err'"
  check "$label: all 40 completed" \
    test "$(json "$out" "d['statuses'].get('completed')")" = 40
  check "$label: the lost worker's tasks ran again elsewhere" \
    test "$(json "$out" "d['requeued']")" -gt 0
}

# -- kill -9 of one worker mid-batch --------------------------------------------
# shellcheck disable=SC2046
timeout 120 "$harness" --node-timeout 4000 --workers "$nodes" --tasks 40 --kill-pid "$pid_w2" --kill-after 6 \
  $(tls_of coord) >"$tmp/kill.json" 2>"$tmp/kill.err"
check_moved "kill -9 mid-batch" $? "$tmp/kill.json" "$tmp/kill.err"
check "40 tasks without a kill: none ran twice" \
  test "$(json "$tmp/spread.json" "d['requeued']")" = 0
check "kill -9 mid-batch: worker 2 is gone" \
  bash -c "[ -n '$pid_w2' ] && ! kill -0 '$pid_w2' 2>/dev/null"

# -- the cause of the surviving connection dropping too ------------------------
# A TLS connection that dies with a FIN leaves "unexpected eof" in the
# OpenSSL error queue of the middleman's one multiplexer thread; CAF 0.17.6
# never empties it, and the next would-block read of the healthy connection
# then failed too. The binaries empty it before every SSL call
# (actors/tls_error_queue.hpp); the harness leaves such an error there on
# purpose mid-run: no connection may drop for it.
check "start worker 2 again" start_worker w2 w2
nodes="127.0.0.1:$port_w1,127.0.0.1:$port_w2"
# shellcheck disable=SC2046
timeout 120 "$harness" --node-timeout 4000 --workers "$nodes" --tasks 40 --poison-after 6 \
  $(tls_of coord) >"$tmp/poison.json" 2>"$tmp/poison.err"
check "a stale OpenSSL error on the multiplexer thread: every task ends once" test $? -eq 0
check "a stale OpenSSL error on the multiplexer thread: the guard is in use" \
  test "$(json "$tmp/poison.json" "d['tls_guard']")" = True
check "a stale OpenSSL error on the multiplexer thread: all 40 completed, none re-ran" \
  test "$(json "$tmp/poison.json" "(d['statuses'].get('completed'), d['requeued'])")" = "(40, 0)"
check "a stale OpenSSL error on the multiplexer thread: both workers ran tasks" \
  test "$(json "$tmp/poison.json" "sum(1 for v in d['by_node'].values() if v > 0)")" = 2

# -- a killed worker restarted on its port rejoins the pool ----------------------
wait_for() { # wait_for SECONDS COMMAND...: polls COMMAND until true or timeout
  local deadline=$((SECONDS + $1))
  shift
  while [ $SECONDS -lt $deadline ]; do
    "$@" && return 0
    sleep 0.05
  done
  return 1
}
# shellcheck disable=SC2046
timeout 150 "$harness" --node-timeout 4000 --workers "$nodes" --tasks 40 --kill-pid "$pid_w2" \
  --kill-after 6 --reconnect 1 --rejoin "127.0.0.1:$port_w2" $(tls_of coord) \
  >"$tmp/rejoin.json" 2>"$tmp/rejoin.err" &
harness_pid=$!
check "rejoin: worker 2 killed mid-batch" wait_for 60 grep -q "^killed" "$tmp/rejoin.err"
LISTEN_PORT=$port_w2
check "rejoin: worker 2 restarted on its port" start_worker w2b w2
unset LISTEN_PORT
check "rejoin: the restarted worker listens on the same port" test "$port_w2b" = "$port_w2"
wait "$harness_pid"
check "rejoin: every task ends exactly once" test $? -eq 0
check "rejoin: both workers were connected at the start" \
  bash -c "! grep -q '^error' '$tmp/rejoin.err'"

check "rejoin: all completed" \
  test "$(json "$tmp/rejoin.json" "d['statuses'].get('completed') == d['submitted']")" = True
check "rejoin: later tasks ran on the restarted worker" \
  test "$(json "$tmp/rejoin.json" "d['rejoined']")" = True

# -- a stopped worker (no FIN) is found silent -----------------------------------
# shellcheck disable=SC2046
timeout 120 "$harness" --node-timeout 4000 --workers "127.0.0.1:$port_w1,127.0.0.1:$port_w2b" \
  --tasks 40 --stop-pid "$pid_w2b" --stop-after 6 --reconnect 1 $(tls_of coord) \
  >"$tmp/stop.json" 2>"$tmp/stop.err"
stop_rc=$?
kill -KILL "$pid_w2b" 2>/dev/null
check_moved "SIGSTOP mid-batch" "$stop_rc" "$tmp/stop.json" "$tmp/stop.err"
# Found after 4 s of silence, checked on each 1 s heartbeat tick: 4-5 s,
# plus slack for a loaded machine.
check "SIGSTOP mid-batch: found silent within 9 s" \
  test "$(json "$tmp/stop.json" "2000 <= d['stop_detected_ms'] < 9000")" = True
echo "     (stopped worker found after $(json "$tmp/stop.json" "d['stop_detected_ms']") ms)"

# -- a certificate another CA signed -------------------------------------------
write_config "$tmp/rogue.yaml" "$tmp/ws-rogue"
"$bin" -c "$tmp/rogue.yaml" worker --listen 127.0.0.1:0 --tls-ca "$tmp/ca.pem" \
  --tls-cert "$tmp/rogue.pem" --tls-key "$tmp/rogue.key" >"$tmp/rogue.out" 2>&1 &
pids+=($!)
deadline=$((SECONDS + 60))
port_rogue=""
while [ $SECONDS -lt $deadline ] && [ -z "$port_rogue" ]; do
  port_rogue=$(sed -n 's/^worker listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$tmp/rogue.out" 2>/dev/null)
  sleep 0.05
done
# shellcheck disable=SC2046
timeout 60 "$bin" workers --workers "127.0.0.1:$port_rogue" $(tls_of coord) >"$tmp/rogue.txt" 2>&1
check "rogue certificate: workers exits 1" test $? -eq 1
check "rogue certificate: the error says it cannot reach it with TLS" \
  grep -q "cannot reach the node at 127.0.0.1:$port_rogue.*TLS" "$tmp/rogue.txt"
# shellcheck disable=SC2046
timeout 60 "$harness" --node-timeout 4000 --workers "127.0.0.1:$port_rogue" --tasks 1 $(tls_of coord) >/dev/null 2>"$tmp/rogue-pool.err"
check "rogue certificate: the pool refuses the node" test $? -eq 2

# -- version mismatch -----------------------------------------------------------
ORCH_FAKE_VERSION=9.9.9 start_worker w3 w1
# shellcheck disable=SC2046
timeout 60 "$bin" workers --workers "127.0.0.1:$port_w3" $(tls_of coord) >"$tmp/mismatch.txt" 2>&1
check "version mismatch: workers exits 1" test $? -eq 1
check "version mismatch: the message names both versions" \
  grep -q "version mismatch: .*9\.9\.9.*" "$tmp/mismatch.txt"
check "version mismatch: ...and this side's" \
  grep -q "ai-orchestrator $("$bin" version | awk '{print $2}')" "$tmp/mismatch.txt"

# -- off loopback without TLS -----------------------------------------------------
"$bin" -c "$tmp/w1.yaml" worker --listen 0.0.0.0:0 >"$tmp/plain.out" 2>&1
check "off loopback without TLS: worker exits 2" test $? -eq 2
check "off loopback without TLS: worker says why" \
  grep -q "refusing to listen on 0.0.0.0:0 without TLS" "$tmp/plain.out"
"$bin" workers --workers 192.0.2.1:4000 >"$tmp/plain2.out" 2>&1
check "off loopback without TLS: workers exits 2 (nothing sent)" test $? -eq 2
check "off loopback without TLS: workers says why" \
  grep -q "refusing to connect to 192.0.2.1:4000 without TLS" "$tmp/plain2.out"
"$bin" -c "$tmp/w1.yaml" worker --listen 127.0.0.1:0 --tls-ca "$tmp/ca.pem" >"$tmp/half.out" 2>&1
check "TLS options: all three or none" grep -q -- "--tls-cert is missing" "$tmp/half.out"

echo "passed $passed, failed $failed"
if [ "$failed" -ne 0 ]; then
  for f in "$tmp"/*.err "$tmp"/*.out "$tmp"/*.txt; do echo "== $f"; tail -5 "$f"; done
  exit 1
fi
