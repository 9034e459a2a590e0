#!/usr/bin/env python3
"""`serve` end to end: /health, /ready, /metrics.
- /health: the seed's fields, agents by name with status and breaker;
  degraded when an enabled agent is missing;
- /ready: 200 with the coordinator answering;
- /metrics: the Prometheus text format with the seed's names, values after
  a task, `promtool check metrics` passes on it;
- a real Prometheus (started here on 127.0.0.1, 1 s scrape interval, temp
  storage) scrapes /metrics, and orchestrator_tasks_total is read back
  through its query API;
- with --token-required: /health and /ready stay open, /metrics needs it.
Usage: api_observability.py <ai-orchestrator binary> <source dir>"""

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serverlib import DEADLINE, Checks, Env, Server, wait_for, wait_task  # noqa: E402

binary, src = sys.argv[1], os.path.abspath(sys.argv[2])
t = Checks()
env = Env(src)

SEED_NAMES = [
    "orchestrator_tasks_total", "orchestrator_task_duration_seconds",
    "orchestrator_task_failures_total", "orchestrator_task_success_rate",
    "orchestrator_agent_calls_total", "orchestrator_agent_errors_total",
    "orchestrator_agent_response_time_seconds", "orchestrator_agent_availability",
    "orchestrator_cache_hits_total", "orchestrator_cache_misses_total",
    "orchestrator_active_sessions", "orchestrator_memory_usage_bytes",
]


def demo_config(extra_agent=""):
    with open(os.path.join(src, "examples", "demo.yaml")) as f:
        text = f.read()
    agents = os.path.join(src, "examples", "demo-agents") + "/"
    text = text.replace("command: demo-agents/", "command: " + agents)
    text = text.replace("workspace_dir: ./workspace", "workspace_dir: " + env.workspaces)
    text = text.replace("agents:\n", "agents:\n" + extra_agent, 1)
    path = os.path.join(env.tmp, "demo-%d.yaml" % len(extra_agent))
    with open(path, "w") as f:
        f.write(text)
    return path


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sample(text, name_and_labels):
    """The value of the sample line starting with `name_and_labels `."""
    for line in text.splitlines():
        if line.startswith(name_and_labels + " "):
            return float(line.split(" ")[1])
    return None


def promtool_check(text):
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=DEADLINE)
    return p.returncode, p.stdout + p.stderr


# -- /health, /ready, /metrics, promtool ---------------------------------------
# `ghost` is enabled but not installed: the server is degraded.
ghost = """  ghost:
    adapter: command
    command: %s/no-such-agent-here
""" % env.tmp
srv = Server(binary, env, demo_config(ghost))
try:
    st, hdr, h = srv.request("GET", "/health")
    t.check("health: 200 with JSON", st == 200 and hdr["content-type"].startswith("application/json"),
            (st, hdr))
    t.check("health: the seed's fields",
            set(h) == {"status", "version", "agents", "uptime_seconds", "active_sessions"}, h)
    t.check("health: the version is the binary's", h["version"] == "0.1.0", h["version"])
    t.check("health: uptime and sessions are numbers",
            isinstance(h["uptime_seconds"], (int, float)) and h["uptime_seconds"] >= 0
            and h["active_sessions"] == 0, h)
    t.check("health: every agent by name with status and breaker",
            set(h["agents"]) == {"demo-codex", "demo-gemini", "demo-claude", "demo-copilot", "ghost"}
            and all(a["breaker"] == "closed" for a in h["agents"].values()), h["agents"])
    t.check("health: the demo agents are available",
            h["agents"]["demo-codex"]["status"] == "available", h["agents"]["demo-codex"])
    t.check("health: a missing agent is unavailable with the reason",
            h["agents"]["ghost"]["status"] == "unavailable"
            and "not installed" in h["agents"]["ghost"]["reason"], h["agents"]["ghost"])
    t.check("health: an enabled agent missing makes the status degraded",
            h["status"] == "degraded", h["status"])
    st, _, r = srv.request("GET", "/ready")
    t.check("ready: 200 {ready: true} with the coordinator answering",
            st == 200 and r == {"ready": True}, (st, r))

    st, hdr, text = srv.request("GET", "/metrics")
    t.check("metrics: 200 in the text format 0.0.4",
            st == 200 and hdr["content-type"].startswith("text/plain; version=0.0.4"), hdr)
    missing = [n for n in SEED_NAMES if "# TYPE %s " % n not in text]
    t.check("metrics: every seed name is exposed", not missing, missing)
    t.check("metrics: availability per agent",
            sample(text, 'orchestrator_agent_availability{agent="demo-codex"}') == 1
            and sample(text, 'orchestrator_agent_availability{agent="ghost"}') == 0)
    t.check("metrics: the memory gauge holds the resident set",
            (sample(text, "orchestrator_memory_usage_bytes") or 0) > 1 << 20)

    st, _, body = srv.request("POST", "/api/tasks", {"task": "Build a CLI", "workflow": "quick"})
    run_id = body["id"]
    wait_task(srv, run_id)
    text = wait_for(lambda: (lambda x: x if 'workflow="quick"} 1' in x else None)(
        srv.request("GET", "/metrics")[2]), "the run in /metrics")
    t.check("metrics: the finished run is counted by workflow and status",
            sample(text, 'orchestrator_tasks_total{status="completed",workflow="quick"}') == 1,
            [x for x in text.splitlines() if x.startswith("orchestrator_tasks_total")])
    t.check("metrics: its agent call is counted with a response time",
            sample(text, 'orchestrator_agent_calls_total{agent="demo-codex"}') == 1
            and sample(text, 'orchestrator_agent_response_time_seconds_count{agent="demo-codex"}') == 1)
    t.check("metrics: the tokens the agent reported are counted",
            (sample(text, 'orchestrator_agent_tokens_total{agent="demo-codex",type="output"}') or 0) > 0,
            [x for x in text.splitlines() if "tokens_total{" in x])
    t.check("metrics: the success rate of the workflow",
            sample(text, 'orchestrator_task_success_rate{workflow="quick"}') == 1)
    t.check("metrics: the cache miss of the step",
            sample(text, 'orchestrator_cache_misses_total{agent="demo-codex"}') == 1,
            [x for x in text.splitlines() if "cache_" in x])
    rc, out = promtool_check(text)
    t.check("metrics: promtool check metrics passes on /metrics", rc == 0, out)

    # -- a real Prometheus scrapes us ----------------------------------------
    prom_bin = shutil.which("prometheus") or "/usr/bin/prometheus"
    pport = free_port()
    pdir = os.path.join(env.tmp, "prometheus")
    os.makedirs(os.path.join(pdir, "data"))
    with open(os.path.join(pdir, "prometheus.yml"), "w") as f:
        f.write("""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: orchestrator
    static_configs:
      - targets: ['127.0.0.1:%d']
""" % srv.port)
    plog = open(os.path.join(pdir, "log"), "w")
    prom = subprocess.Popen([prom_bin, "--config.file=" + os.path.join(pdir, "prometheus.yml"),
                             "--storage.tsdb.path=" + os.path.join(pdir, "data"),
                             "--web.listen-address=127.0.0.1:%d" % pport],
                            stdout=plog, stderr=subprocess.STDOUT, cwd=pdir)
    try:
        def prom_get(path):
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d%s" % (pport, path),
                                            timeout=5) as r:
                    return r.status, r.read().decode()
            except OSError:
                return 0, ""

        wait_for(lambda: prom_get("/-/ready")[0] == 200, "prometheus to be ready")
        t.check("prometheus: started on 127.0.0.1", True)

        def tasks_series():
            st, body = prom_get("/api/v1/query?query=" + urllib.parse.quote(
                'orchestrator_tasks_total{workflow="quick"}'))
            if st != 200:
                return None
            res = json.loads(body)["data"]["result"]
            return res if res and float(res[0]["value"][1]) >= 1 else None

        series = wait_for(tasks_series, "prometheus to scrape orchestrator_tasks_total")
        t.check("prometheus: orchestrator_tasks_total read back through the query API",
                series[0]["metric"]["status"] == "completed"
                and series[0]["metric"]["job"] == "orchestrator"
                and float(series[0]["value"][1]) == 1, series)
        st, body = prom_get("/api/v1/targets")
        t.check("prometheus: our target is up",
                st == 200 and any(x["health"] == "up"
                                  for x in json.loads(body)["data"]["activeTargets"]), body[:300])
    finally:
        prom.terminate()
        try:
            rc = prom.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            prom.kill()
            rc = prom.wait()
        plog.close()
        t.check("prometheus: stopped", rc is not None)
finally:
    t.check("server: exits 0 on SIGTERM", srv.stop() == 0)

# -- with a token ----------------------------------------------------------------
srv = Server(binary, env, demo_config(), args=["--token-required"])
try:
    token = wait_for(lambda: open(os.path.join(env.state, "ai-orchestrator", "api-token")).read().strip(),
                     "the token file")
    st, _, h = srv.request("GET", "/health")
    t.check("token: /health stays open", st == 200 and h["status"] == "healthy", (st, h))
    st, _, _ = srv.request("GET", "/ready")
    t.check("token: /ready stays open", st == 200, st)
    st, _, body = srv.request("GET", "/metrics")
    t.check("token: /metrics without the token is 401", st == 401, (st, body))
    st, _, text = srv.request("GET", "/metrics", headers={"Authorization": "Bearer " + token})
    t.check("token: /metrics with the token is 200",
            st == 200 and "orchestrator_tasks_total" in text, st)
finally:
    t.check("token: the server exits 0 on SIGTERM", srv.stop() == 0)

env.cleanup()
t.finish()
