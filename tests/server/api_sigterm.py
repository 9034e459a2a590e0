#!/usr/bin/env python3
"""`serve` stops gracefully: SIGTERM while a task runs (its agent blocked
by the test) cancels the task, writes its manifest with status cancelled,
sends run_finished to the open event stream and closes it, leaves no agent
process behind, and exits 0. SIGINT likewise on an idle server.
Usage: api_sigterm.py <ai-orchestrator binary> <source dir>"""

import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serverlib import Checks, Env, Server, Sse, read_until_finished, wait_for  # noqa: E402

binary, src = sys.argv[1], sys.argv[2]
t = Checks()
env = Env(src)
config = env.gate_config(steps=2)


def gone(pid):
    try:
        os.kill(pid, 0)
        return False
    except ProcessLookupError:
        return True


srv = Server(binary, env, config)
rc = None
try:
    _, _, body = srv.request("POST", "/api/tasks", {"task": "interrupted"})
    run_id = body["id"]
    pid = wait_for(lambda: env.started(run_id), "the agent to start")
    _, _, info = srv.request("GET", "/api/tasks/" + run_id)
    t.check("sigterm: the task is running", info["state"] == "running", info)
    s = Sse(srv, "/api/tasks/%s/events" % run_id)
    srv.proc.send_signal(signal.SIGTERM)
    evs = read_until_finished(s)
    rest = list(s.events())  # the server closes the stream after run_finished
    s.close()
    t.check("sigterm: the open stream gets run_finished, status cancelled",
            evs and evs[-1][1] == "run_finished"
            and evs[-1][2].get("result", {}).get("status") == "cancelled", evs[-1:])
    t.check("sigterm: then the stream is closed", rest == [], rest)
    rc = srv.stop()
    t.check("sigterm: the server exits 0", rc == 0, rc)
    t.check("sigterm: it says what it cancelled", "1 running task(s) cancelled" in srv.stderr(),
            srv.stderr())
    with open(os.path.join(info["workspace"], ".orchestrator", "manifest.json")) as f:
        manifest = json.load(f)
    t.check("sigterm: the manifest says cancelled", manifest["status"] == "cancelled", manifest["status"])
    t.check("sigterm: no agent process is left", wait_for(lambda: gone(pid), "the agent to exit"))
finally:
    if rc is None:
        srv.stop()

srv = Server(binary, env, config)
t.check("sigint: an idle server exits 0", srv.stop(signal.SIGINT) == 0)
env.cleanup()
t.finish()
