"""`serve --workers` (issue 16): the HTTP API's tasks and sessions run on
worker nodes over mutual TLS. A task's files come back under the state
directory's worker-files/<run id>/ and the file routes read them there; a
session's follow-up starts on its node from a copy of the session's
workspace (links left out) and what it wrote or deleted there comes back
into that workspace.

Usage: serve_workers.py <ai-orchestrator> <source dir> <nodes> <ca> <cert> <key>
(the workers are started by worker_nodes.sh)."""

import os
import signal
import sys
import urllib.parse

sys.path.insert(0, os.path.join(sys.argv[2], "tests", "server"))
from serverlib import Checks, Env, Server, wait_session_idle, wait_task  # noqa: E402

binary, src, nodes, ca, cert, key = sys.argv[1:7]
t = Checks()
env = Env(src)
config = os.path.join(env.tmp, "serve.yaml")
with open(config, "w") as f:
    f.write("""agents:
  node-agent:
    adapter: command
    command: %s/tests/fakes/node-agent
    deadlines: {first_output: 20, idle: 20, total: 60}
  local-only:
    adapter: command
    command: /bin/true
workflows:
  default:
    - {agent: node-agent, task: implement}
settings:
  workspace_dir: %s
""" % (src, env.workspaces))
outside = os.path.join(env.tmp, "outside")
os.makedirs(outside)
with open(os.path.join(outside, "secret"), "w") as f:
    f.write("top secret")


def content(srv, base, path):
    st, _, body = srv.request("GET", "%s/files/content?path=%s"
                              % (base, urllib.parse.quote(path, safe="")))
    return body if st == 200 else None


srv = Server(binary, env, config,
             ["--workers", nodes, "--tls-ca", ca, "--tls-cert", cert, "--tls-key", key,
              "--node-timeout", "4"])
try:
    # -- the agents, as the nodes have them -------------------------------------
    st, _, ag = srv.request("GET", "/api/agents")
    by = {a["name"]: a for a in ag.get("agents", [])} if st == 200 else {}
    t.check("agents: node-agent is available, on both worker nodes",
            by.get("node-agent", {}).get("available") is True
            and sorted(by["node-agent"].get("nodes", [])) == sorted(nodes.split(",")),
            (st, ag))
    t.check("agents: one no node has is not available, though this machine has it",
            by.get("local-only", {}).get("available") is False
            and "on no connected worker node" in by["local-only"].get("reason", ""),
            (st, ag))

    # -- a task ---------------------------------------------------------------
    st, _, sub = srv.request("POST", "/api/tasks", {"task": "serve task one"})
    t.check("task: accepted (202)", st == 202 and sub.get("id"), (st, sub))
    run_id = sub["id"]
    info = wait_task(srv, run_id)
    files_dir = os.path.join(env.state, "ai-orchestrator", "worker-files")
    t.check("task: completed on a worker node", info.get("status") == "completed", info)
    t.check("task: its workspace is worker-files/<run id> in the state directory",
            info.get("workspace") == os.path.join(files_dir, run_id), info.get("workspace"))
    st, _, lst = srv.request("GET", "/api/tasks/%s/files" % run_id)
    t.check("task: GET .../files lists what the agent wrote on the node",
            st == 200 and "out.txt" in [f["path"] for f in lst["files"]], (st, lst))
    out = content(srv, "/api/tasks/" + run_id, "out.txt")
    t.check("task: GET .../content reads it", out is not None and "serve task one" in out, out)

    # -- a session: its workspace travels to the node and back ---------------
    st, _, s = srv.request("POST", "/api/sessions", {"name": "remote"})
    t.check("session: created (201)", st == 201, (st, s))
    st, _, m1 = srv.request("POST", "/api/sessions/remote/messages",
                            {"text": "Build a shopping list CLI"})
    t.check("session: the first message is accepted", st == 202, (st, m1))
    s1 = wait_session_idle(srv, "remote", 1)
    ws = s1["workspace"]
    t1 = wait_task(srv, m1["id"])
    t.check("session: the first task completed in the session's workspace",
            t1.get("status") == "completed" and t1.get("workspace") == ws, t1)
    t.check("session: the node's files came back into the session's workspace",
            "shopping list" in open(os.path.join(ws, "out.txt")).read())
    first_out = open(os.path.join(ws, "out.txt")).read()
    st, _, _ = srv.request("PUT", "/api/sessions/remote/files/content?path=delete-me.txt",
                           raw=b"bye\n")
    t.check("session: a file saved through the API before the follow-up", st == 200, st)
    os.symlink(os.path.join(outside, "secret"), os.path.join(ws, "link.txt"))
    st, _, m2 = srv.request("POST", "/api/sessions/remote/messages",
                            {"text": "add a delete command"})
    t.check("session: the next message is a follow-up", st == 202 and m2.get("followup"),
            (st, m2))
    wait_session_idle(srv, "remote", 2)
    t2 = wait_task(srv, m2["id"])
    t.check("session: the follow-up completed in the same workspace",
            t2.get("status") == "completed" and t2.get("workspace") == ws, t2)
    seen = open(os.path.join(ws, "seen.txt")).read().split()
    t.check("session: on the node, the follow-up started from the session's files",
            "out.txt" in seen and "delete-me.txt" in seen, seen)
    t.check("session: a link in the session's workspace was not sent along",
            "link.txt" not in seen, seen)
    t.check("session: the file the node deleted is deleted here",
            not os.path.exists(os.path.join(ws, "delete-me.txt")))
    t.check("session: the planted link and its target are untouched",
            os.path.islink(os.path.join(ws, "link.txt"))
            and open(os.path.join(outside, "secret")).read() == "top secret")
    second_out = open(os.path.join(ws, "out.txt")).read()
    t.check("session: the follow-up's out.txt replaced the first one",
            second_out != first_out and "delete command" in second_out, second_out)
finally:
    rc = srv.stop(signal.SIGTERM)
t.check("serve --workers stops with exit 0 on SIGTERM", rc == 0, srv.stderr())
env.cleanup()
t.finish()
