#!/usr/bin/env python3
"""`serve` security and request checks:
- malformed, oversized and wrongly typed JSON: 400/413 naming the field;
- Origin that does not match Host: 403;
- the API rate limit: 429 with Retry-After;
- the API token: made at first start (0600, printed once), required off
  loopback (bound to 127.0.0.2) or with --token-required: 401 without it,
  also on the event streams (which accept ?token=) and the WebSocket;
- no internal path or stack trace in an error body.
Usage: api_security.py <ai-orchestrator binary> <source dir>"""

import os
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serverlib import Checks, Env, Server, Sse, WebSocket  # noqa: E402

binary, src = sys.argv[1], sys.argv[2]
t = Checks()
env = Env(src)
config = env.gate_config()


def err(body):
    return body.get("error", {}) if isinstance(body, dict) else {}


srv = Server(binary, env, config, ["--max-body", "2048"])
try:
    st, _, body = srv.request("POST", "/api/tasks", raw=b'{"task": "x",', headers={
        "Content-Type": "application/json"})
    t.check("json: malformed JSON is 400 invalid_json", st == 400 and err(body)["code"] == "invalid_json",
            body)
    st, _, body = srv.request("POST", "/api/tasks", raw=b"[1]")
    t.check("json: an array body is 400", st == 400 and "object" in err(body)["message"], body)
    st, _, body = srv.request("POST", "/api/tasks", {"task": "x", "max_iterations": "3"})
    t.check("json: a string max_iterations is 400 naming the field",
            st == 400 and "'max_iterations'" in err(body)["message"], body)
    st, _, body = srv.request("POST", "/api/tasks", {"task": "x", "max_iterations": 11})
    t.check("json: max_iterations out of 1..10 is 400", st == 400 and "1 to 10" in err(body)["message"],
            body)
    st, _, body = srv.request("POST", "/api/tasks", {"workflow": "default"})
    t.check("json: a missing task is 400 naming it", st == 400 and "'task'" in err(body)["message"], body)
    st, _, body = srv.request("POST", "/api/tasks", {"task": "x", "no_cache": "yes"})
    t.check("json: a string no_cache is 400 naming it", st == 400 and "'no_cache'" in err(body)["message"],
            body)
    st, _, body = srv.request("POST", "/api/tasks", {"task": "x", "agents": [1]})
    t.check("json: a number in agents is 400 naming it", st == 400 and "'agents'" in err(body)["message"],
            body)
    st, _, body = srv.request("POST", "/api/tasks", {"task": "x", "colour": "red"})
    t.check("json: an unknown field is 400 naming it", st == 400 and "colour" in err(body)["message"],
            body)
    st, _, body = srv.request("POST", "/api/tasks", {"task": "x", "workflow": "nope"})
    t.check("json: an unknown workflow is 400 naming the field",
            st == 400 and "'workflow'" in err(body)["message"], body)
    st, _, body = srv.request("POST", "/api/tasks", {"task": "x", "agents": "ghost"})
    t.check("json: an unknown agent is 400", st == 400 and "ghost" in err(body)["message"], body)
    st, _, body = srv.request("POST", "/api/tasks", {"task": "x" * 4000})
    t.check("json: a body over --max-body is 413", st == 413 and err(body)["code"] == "body_too_large",
            body)
    st, _, body = srv.request("GET", "/api/tasks/x/events?since=abc")
    t.check("json: a bad since is 400 naming it", st == 400 and "since" in err(body)["message"], body)
    st, _, body = srv.request("GET", "/api/nothing")
    t.check("route: an unknown /api route is 404 JSON", st == 404 and err(body)["code"] == "not_found")
    st, h, body = srv.request("PUT", "/api/tasks")
    t.check("route: a wrong method is 405 with Allow", st == 405 and "GET" in h.get("allow", ""), h)
    # Origin: a browser page from elsewhere.
    st, _, body = srv.request("GET", "/api/tasks", headers={"Origin": "http://evil.example"})
    t.check("origin: a foreign Origin is 403", st == 403 and err(body)["code"] == "forbidden_origin", body)
    st, _, body = srv.request("POST", "/api/tasks", {"task": "x"},
                              headers={"Origin": "http://127.0.0.1:1"})
    t.check("origin: another port is another origin (403)", st == 403, body)
    st, _, body = srv.request("GET", "/api/tasks",
                              headers={"Origin": "http://127.0.0.1:%d" % srv.port})
    t.check("origin: the server's own origin is accepted", st == 200, body)
    ws = WebSocket(srv, "/api/ws", headers={"Origin": "http://evil.example"})
    t.check("origin: a foreign WebSocket upgrade is refused (403)", ws.status == 403, ws.status)
    ws.close()
    st, _, body = srv.request("GET", "/api/auth")
    t.check("auth: loopback needs no token", st == 200 and body == {"required": False}, body)
    everything = str(body)
    for path in ("/api/tasks/x", "/api/tasks", "/api/nothing"):
        everything += str(srv.request("POST", path, raw=b"{")[2])
    t.check("errors: no internal path or trace in error bodies",
            env.tmp not in everything and "/work" not in everything and "Traceback" not in everything
            and ".cpp" not in everything, everything)
finally:
    t.check("the server exits 0", srv.stop() == 0)

# -- the rate limit -----------------------------------------------------------
srv = Server(binary, env, config, ["--rate-limit", "60", "--rate-burst", "3"])
try:
    codes = [srv.request("GET", "/api/tasks") for _ in range(5)]
    statuses = [c[0] for c in codes]
    t.check("rate: a burst of 3 then 429", statuses[:3] == [200, 200, 200] and statuses[3] == 429,
            statuses)
    st, h, body = codes[3]
    t.check("rate: 429 has Retry-After (seconds >= 1) and the error shape",
            int(h.get("retry-after", "0")) >= 1 and err(body)["code"] == "rate_limited", (h, body))
    st, _, body = srv.request("GET", "/api/auth")
    t.check("rate: /api/auth is not limited", st == 200)
finally:
    t.check("the server exits 0", srv.stop() == 0)

# -- the token ----------------------------------------------------------------
token_file = os.path.join(env.state, "ai-orchestrator", "api-token")
srv = Server(binary, env, config, ["--token-required"])
try:
    token = open(token_file).read().strip()
    mode = stat.S_IMODE(os.stat(token_file).st_mode)
    t.check("token: made at first start, 64 hex digits, mode 0600",
            len(token) == 64 and mode == 0o600, (len(token), oct(mode)))
    t.check("token: printed once on stderr", token in srv.stderr())
    st, h, body = srv.request("GET", "/api/tasks")
    t.check("token: 401 without it", st == 401 and err(body)["code"] == "unauthorized"
            and "bearer" in h.get("www-authenticate", "").lower(), (st, body))
    st, _, _ = srv.request("GET", "/api/tasks", headers={"Authorization": "Bearer " + "0" * 64})
    t.check("token: 401 with a wrong one", st == 401)
    st, _, _ = srv.request("GET", "/api/tasks", headers={"Authorization": "Bearer " + token[:10]})
    t.check("token: 401 with a prefix of it", st == 401)
    auth = {"Authorization": "Bearer " + token}
    st, _, _ = srv.request("GET", "/api/tasks", headers=auth)
    t.check("token: 200 with it", st == 200)
    st, _, body = srv.request("GET", "/api/auth")
    t.check("token: /api/auth is open and says required", st == 200 and body == {"required": True})
    st, _, body = srv.request("POST", "/api/tasks", {"task": "x"}, headers=auth)
    run_id = body["id"]
    env.release(run_id)
    st, _, _ = srv.request("GET", "/api/tasks/%s/events" % run_id)
    t.check("token: the event stream needs it too", st == 401, st)
    st, _, _ = srv.request("GET", "/api/events")
    t.check("token: the all-runs stream needs it too", st == 401, st)
    s = Sse(srv, "/api/tasks/%s/events?token=%s" % (run_id, token))
    t.check("token: the stream accepts ?token=", s.status == 200, s.status)
    s.close()
    st, _, _ = srv.request("GET", "/api/tasks?token=" + token)
    t.check("token: ?token= is for streams only", st == 401, st)
    ws = WebSocket(srv, "/api/ws")
    t.check("token: a WebSocket without it is refused (401)", ws.status == 401, ws.status)
    ws.close()
    ws = WebSocket(srv, "/api/ws?token=" + token)
    t.check("token: a WebSocket with ?token= is accepted", ws.status == 101, ws.status)
    ws.close()
finally:
    t.check("the server exits 0", srv.stop() == 0)

# Off loopback: 127.0.0.2 (still this machine) needs the same token, not
# printed again.
srv = Server(binary, env, config, host="127.0.0.2")
try:
    st, _, body = srv.request("GET", "/api/auth")
    t.check("off loopback: the token is required", body == {"required": True}, body)
    st, _, _ = srv.request("GET", "/api/tasks")
    t.check("off loopback: 401 without it", st == 401, st)
    st, _, _ = srv.request("GET", "/api/tasks", headers={"Authorization": "Bearer " + token})
    t.check("off loopback: the same token works", st == 200, st)
    t.check("off loopback: the existing token is not printed again", token not in srv.stderr())
finally:
    t.check("the server exits 0", srv.stop() == 0)

# A token file others can read is refused, not used.
os.chmod(token_file, 0o644)
srv_ok = True
try:
    Server(binary, env, config, ["--token-required"]).stop()
except RuntimeError as e:
    srv_ok = False
    t.check("token: a file readable by others is refused at start", "not ours alone" in str(e), e)
t.check("token: the server did not start with an unsafe token file", not srv_ok)
env.cleanup()
t.finish()
