#!/usr/bin/env python3
"""`serve` end to end: tasks and live events.
- the demo agents: submit, stream events until run_finished, fetch the
  result (the run --json document) and the files;
- reconnect mid-run with Last-Event-ID: no gap, no duplicate (the gate
  agent blocks until the test releases it, so "mid-run" is a state, not a
  time);
- two tasks at once, cancel one: the other completes;
- GET /api/events (all runs) and the WebSocket /api/ws;
- a flood of agent output lines is throttled, every dropped line counted.
Usage: api_tasks.py <ai-orchestrator binary> <source dir>"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serverlib import (Checks, Env, Server, Sse, WebSocket,  # noqa: E402
                       read_until_finished, wait_for)

binary, src = sys.argv[1], sys.argv[2]
t = Checks()
env = Env(src)


def seqs(events):
    return [d["seq"] for (_, _, d) in events]


def without_counters(doc):
    doc = dict(doc)
    doc.pop("counters", None)
    return doc


# -- the demo agents ----------------------------------------------------------
srv = Server(binary, env, os.path.join(src, "examples", "demo.yaml"))
try:
    st, _, body = srv.request("POST", "/api/tasks", {"task": "Build a shopping list CLI",
                                                     "workflow": "default"})
    t.check("demo: POST /api/tasks answers 202 with an id", st == 202 and body.get("id"), body)
    run_id = body["id"]
    s = Sse(srv, "/api/tasks/%s/events" % run_id)
    t.check("demo: the event stream answers 200", s.status == 200, s.status)
    evs = read_until_finished(s)
    s.close()
    kinds = [k for (_, k, _) in evs]
    t.check("demo: the stream starts with run_started and ends with run_finished",
            kinds and kinds[0] == "run_started" and kinds[-1] == "run_finished", kinds[:3])
    t.check("demo: ids are the seq numbers 1..N, no gap", seqs(evs) == list(range(1, len(evs) + 1)),
            seqs(evs))
    t.check("demo: SSE id equals data.seq", all(i == str(d["seq"]) for (i, _, d) in evs))
    t.check("demo: step events name agent and task kind",
            any(k == "step_finished" and d["agent"] == "demo-gemini" and d["task_kind"] == "review"
                for (_, k, d) in evs))
    final = evs[-1][2]
    t.check("demo: run_finished carries the result document",
            final.get("result", {}).get("status") == "converged", final.get("result", {}).get("status"))
    st, _, task = srv.request("GET", "/api/tasks/" + run_id)
    t.check("demo: GET /api/tasks/{id} says finished with the result",
            st == 200 and task["state"] == "finished" and task["status"] == "converged", task)
    t.check("demo: the result is the run --json document (same as the manifest's keys)",
            set(task["result"].keys()) >= {"run_id", "status", "iterations", "findings", "files",
                                           "usage", "counters"}, list(task["result"].keys()))
    t.check("demo: the stream's result equals GET's (counters aside)",
            without_counters(task["result"]) == without_counters(final["result"]))
    ws_dir = task["workspace"]
    files = task["result"]["files"]
    t.check("demo: the files are in the workspace",
            files and all(os.path.isfile(os.path.join(ws_dir, f)) for f in files), files)
    with open(os.path.join(ws_dir, ".orchestrator", "manifest.json")) as f:
        manifest = json.load(f)
    t.check("demo: the manifest says the same status", manifest["status"] == "converged")
    st, _, lst = srv.request("GET", "/api/tasks")
    t.check("demo: GET /api/tasks lists the run, finished, with finished_ms",
            st == 200 and lst["tasks"][0]["id"] == run_id and "finished_ms" in lst["tasks"][0], lst)
    # A finished run's stream replays everything and closes.
    s = Sse(srv, "/api/tasks/%s/events?since=0" % run_id)
    again = read_until_finished(s)
    s.close()
    t.check("demo: a finished run replays the same events", seqs(again) == seqs(evs))
    s = Sse(srv, "/api/tasks/%s/events?since=%d" % (run_id, len(evs) - 2))
    tail = read_until_finished(s)
    s.close()
    t.check("demo: ?since=N sends the events after N", seqs(tail) == seqs(evs)[-2:], seqs(tail))
    st, _, _ = srv.request("GET", "/api/tasks/nope-123/events")
    t.check("demo: an unknown run's stream is 404 before it starts", st == 404, st)
    st, _, body = srv.request("GET", "/api/tasks/nope-123")
    t.check("demo: an unknown task is 404", st == 404 and body["error"]["code"] == "not_found", body)
    st, _, ag = srv.request("GET", "/api/agents")
    t.check("demo: GET /api/agents lists the demo agents with breaker state",
            st == 200 and {a["name"] for a in ag["agents"]} >= {"demo-codex", "demo-gemini"}
            and all("breaker" in a and "available" in a for a in ag["agents"]), ag)
    st, _, wf = srv.request("GET", "/api/workflows")
    t.check("demo: GET /api/workflows has default", st == 200 and wf["default"] == "default"
            and any(w["name"] == "default" for w in wf["workflows"]), wf)
    # WebSocket: subscribe to the finished run from 0: every event, in order.
    ws = WebSocket(srv, "/api/ws")
    t.check("ws: the upgrade answers 101", ws.status == 101, ws.status)
    ws.send({"subscribe": run_id, "since": 0})
    got = []
    while True:
        m = ws.recv()
        if m is None:
            break
        got.append(m)
        if m["kind"] == "run_finished":
            break
    t.check("ws: a subscription replays the run's events", [m["seq"] for m in got] == seqs(evs),
            [m["seq"] for m in got])
    ws.send({"subscribe": 5})
    m = ws.recv()
    t.check("ws: a malformed command gets an error frame naming the field",
            m and "subscribe" in m["error"]["message"], m)
    ws.close()
finally:
    t.check("demo: the server exits 0 on SIGTERM", srv.stop() == 0)

# -- the gate agent: reconnect mid-run, two runs, cancel one -----------------
srv = Server(binary, env, env.gate_config(steps=2))
try:
    # The all-runs stream, open before anything is submitted.
    all_stream = Sse(srv, "/api/events")
    st, _, body = srv.request("POST", "/api/tasks", {"task": "gate run"})
    run_id = body["id"]
    s = Sse(srv, "/api/tasks/%s/events" % run_id)
    first = []
    for ev in s.events():
        first.append(ev)
        if ev[1] == "step_started":
            break
    wait_for(lambda: env.started(run_id), "the gate agent to start")
    s.close()
    last_id = first[-1][0]
    t.check("reconnect: the first connection saw run_started..step_started",
            [k for (_, k, _) in first][0] == "run_started", first)
    # Mid-run: the agent is blocked. Reconnect after the last id seen.
    s = Sse(srv, "/api/tasks/%s/events" % run_id, headers={"Last-Event-ID": last_id})
    env.release(run_id)
    second = read_until_finished(s)
    s.close()
    s = Sse(srv, "/api/tasks/%s/events?since=0" % run_id)
    full = read_until_finished(s)
    s.close()
    joined = seqs(first) + seqs(second)
    t.check("reconnect: first + resumed = the whole stream (no gap, no duplicate)",
            joined == seqs(full) and len(set(joined)) == len(joined), (joined, seqs(full)))
    t.check("reconnect: the run completed", second[-1][2]["result"]["status"] == "completed",
            second[-1][2].get("result", {}).get("status"))
    # The all-runs stream saw this run's events, ids "<run>:<seq>".
    seen = []
    for (i, k, d) in all_stream.events():
        seen.append((i, k))
        if k == "run_finished" and d["run_id"] == run_id:
            break
    all_stream.close()
    t.check("events: /api/events ids are <run id>:<seq>",
            seen and all(i == "%s:%d" % (run_id, n + 1) for n, (i, _) in enumerate(seen)), seen[:3])

    # Two runs at once; cancel one, the other completes.
    _, _, a = srv.request("POST", "/api/tasks", {"task": "run A"})
    _, _, b = srv.request("POST", "/api/tasks", {"task": "run B"})
    a, b = a["id"], b["id"]
    pid_a = wait_for(lambda: env.started(a), "agent A to start")
    wait_for(lambda: env.started(b), "agent B to start")
    st, _, _ = srv.request("GET", "/api/tasks/" + a)
    sa = Sse(srv, "/api/tasks/%s/events" % a)
    st, _, body = srv.request("POST", "/api/tasks/%s/cancel" % a)
    t.check("cancel: POST /api/tasks/{id}/cancel answers cancelled true",
            st == 200 and body == {"cancelled": True}, body)
    evs_a = read_until_finished(sa)
    sa.close()
    t.check("cancel: A's stream ends with run_finished, status cancelled",
            evs_a[-1][1] == "run_finished" and evs_a[-1][2]["result"]["status"] == "cancelled",
            evs_a[-1])
    env.release(b)
    sb = Sse(srv, "/api/tasks/%s/events" % b)
    evs_b = read_until_finished(sb)
    sb.close()
    t.check("cancel: B completes", evs_b[-1][2]["result"]["status"] == "completed",
            evs_b[-1][2].get("result", {}).get("status"))
    _, _, ta = srv.request("GET", "/api/tasks/" + a)
    t.check("cancel: GET A says cancelled", ta["status"] == "cancelled", ta.get("status"))
    with open(os.path.join(ta["workspace"], ".orchestrator", "manifest.json")) as f:
        t.check("cancel: A's manifest says cancelled", json.load(f)["status"] == "cancelled")

    def gone(pid):
        try:
            os.kill(pid, 0)
            return False
        except ProcessLookupError:
            return True
    t.check("cancel: A's agent process is gone", wait_for(lambda: gone(pid_a), "agent A to exit"))
    st, _, body = srv.request("POST", "/api/tasks/%s/cancel" % a)
    t.check("cancel: cancelling a finished task answers cancelled false",
            st == 200 and body == {"cancelled": False}, body)
    st, _, body = srv.request("POST", "/api/tasks/nope/cancel")
    t.check("cancel: cancelling an unknown task is 404", st == 404, st)
finally:
    env.release()
    t.check("gate: the server exits 0 on SIGTERM", srv.stop() == 0)

# -- agent output lines are throttled ----------------------------------------
chatty = os.path.join(env.tmp, "chatty.yaml")
with open(chatty, "w") as f:
    f.write("""agents:
  chatty:
    adapter: codex
    command: %s/bench/chatty-agent
    env: [BENCH_GATE, CHATTY_EVENTS]
workflows:
  default:
    - {agent: chatty, task: implement}
settings:
  workspace_dir: %s
""" % (src, env.workspaces))
open(os.path.join(env.tmp, "open-gate"), "w").close()
env.env.update(BENCH_GATE=os.path.join(env.tmp, "open-gate"), CHATTY_EVENTS="1000")
srv = Server(binary, env, chatty, ["--agent-events-per-second", "20"])
try:
    _, _, body = srv.request("POST", "/api/tasks", {"task": "chatty"})
    s = Sse(srv, "/api/tasks/%s/events" % body["id"])
    evs = read_until_finished(s)
    s.close()
    lines = [d for (_, k, d) in evs if k == "agent_event"]
    skipped = sum(d.get("skipped", 0) for (_, _, d) in evs)
    # 1000 tool calls and the session start.
    t.check("throttle: a flood of 1001 agent lines is cut (burst 100 + 20/s)",
            100 <= len(lines) < 1001, len(lines))
    t.check("throttle: every dropped line is counted in a later event's skipped",
            len(lines) + skipped == 1001, (len(lines), skipped))
    t.check("throttle: seq still only grows, and the run completes",
            seqs(evs) == sorted(set(seqs(evs)))
            and evs[-1][2]["result"]["status"] == "completed")
    s = Sse(srv, "/api/tasks/%s/events?since=0" % body["id"])
    again = read_until_finished(s)
    s.close()
    t.check("throttle: a replay sends the same events", seqs(again) == seqs(evs))
finally:
    t.check("chatty: the server exits 0 on SIGTERM", srv.stop() == 0)
    env.cleanup()
t.finish()
