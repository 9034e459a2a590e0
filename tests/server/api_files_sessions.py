#!/usr/bin/env python3
"""`serve` end to end: the file API and the sessions API (demo agents).
- files of a task: list, read (same bytes as on disk), the editor's save
  (the file on disk changes, the old content is backed up), traversal,
  absolute paths and planted symlinks refused (400/403, nothing outside
  touched), FIFOs, unaddressable names, size limits;
- sessions: create, a message, a follow-up that runs in the same workspace,
  conversation mode off, POST /api/tasks with `session`, a message's own
  workflow, max_iterations, agents and no_cache applied to its run, save, delete, a
  saved session made live again, and sessions saved when the server stops.
Usage: api_files_sessions.py <ai-orchestrator binary> <source dir>"""

import json
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serverlib import Checks, Env, Server, wait_session_idle, wait_task  # noqa: E402

binary, src = sys.argv[1], os.path.abspath(sys.argv[2])
t = Checks()
env = Env(src)


def demo_config():
    """examples/demo.yaml with absolute agent paths and the test's
    workspace folder."""
    with open(os.path.join(src, "examples", "demo.yaml")) as f:
        text = f.read()
    agents = os.path.join(src, "examples", "demo-agents") + "/"
    text = text.replace("command: demo-agents/", "command: " + agents)
    text = text.replace("workspace_dir: ./workspace", "workspace_dir: " + env.workspaces)
    path = os.path.join(env.tmp, "demo.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def q(path):
    return urllib.parse.quote(path, safe="")


sessions_dir = os.path.join(env.state, "ai-orchestrator", "sessions")
config = demo_config()
outside = os.path.join(env.tmp, "outside")
os.makedirs(outside)
with open(os.path.join(outside, "secret"), "w") as f:
    f.write("top secret")

# -- files of a task ----------------------------------------------------------
srv = Server(binary, env, config)
try:
    st, _, body = srv.request("POST", "/api/tasks", {"task": "Build a shopping list CLI",
                                                     "workflow": "quick"})
    t.check("files: the task is accepted", st == 202, body)
    run_id = body["id"]
    task = wait_task(srv, run_id)
    ws = task["workspace"]
    base = "/api/tasks/%s/files" % run_id
    st, _, lst = srv.request("GET", base)
    paths = [f["path"] for f in lst.get("files", [])]
    t.check("files: GET .../files lists the written files, sorted",
            st == 200 and "app/main.py" in paths and paths == sorted(paths), lst)
    t.check("files: the listing leaves out the meta folder",
            not any(p.startswith(".orchestrator") for p in paths), paths)
    main = next(f for f in lst["files"] if f["path"] == "app/main.py")
    on_disk = open(os.path.join(ws, "app", "main.py"), "rb").read()
    t.check("files: size and mtime_ms of each file",
            main["size"] == len(on_disk) and main["mtime_ms"] > 1600000000000, main)
    st, hdr, text = srv.request("GET", base + "/content?path=app/main.py")
    t.check("files: GET .../content answers the file's bytes as text",
            st == 200 and text == on_disk.decode() and hdr["content-type"].startswith("text/plain"),
            (st, hdr))
    t.check("files: content is served sandboxed and never sniffed",
            "sandbox" in hdr.get("content-security-policy", "")
            and hdr.get("x-content-type-options") == "nosniff", hdr)
    st, hdr, _ = srv.request("GET", base + "/content?path=app/main.py&download=1")
    t.check("files: ?download=1 adds Content-Disposition",
            st == 200 and hdr.get("content-disposition") == 'attachment; filename="main.py"', hdr)

    # The editor's save.
    st, _, saved = srv.request("PUT", base + "/content?path=app/main.py", raw=b"print('edited')\n")
    t.check("files: PUT answers path, size and the backup",
            st == 200 and saved["path"] == "app/main.py" and saved["size"] == 16
            and saved["written"] is True and saved["backup"], saved)
    t.check("files: the file on disk changed",
            open(os.path.join(ws, "app", "main.py"), "rb").read() == b"print('edited')\n")
    t.check("files: the backup holds the old content",
            saved["backup"] and saved["backup"].startswith(".orchestrator/backups/edit-")
            and open(os.path.join(ws, saved["backup"]), "rb").read() == on_disk, saved)
    st, _, again = srv.request("PUT", base + "/content?path=app/main.py", raw=b"print('edited')\n")
    t.check("files: saving the same content writes nothing and backs up nothing",
            st == 200 and again["written"] is False and again["backup"] is None, again)
    st, _, new = srv.request("PUT", base + "/content?path=" + q("docs/new file.md"), raw=b"# new\n")
    t.check("files: PUT creates a new file and its folders",
            st == 200 and new["backup"] is None
            and open(os.path.join(ws, "docs", "new file.md"), "rb").read() == b"# new\n", new)

    # Traversal and absolute paths: 400, nothing read or written.
    for bad in ["../outside/secret", "/etc/passwd", "a/../../x", "app/../../x", "~/x",
                ".orchestrator/manifest.json", ".git/config", "a\\b"]:
        st, _, body = srv.request("GET", base + "/content?path=" + q(bad))
        t.check("files: GET %r is 400 invalid_path" % bad,
                st == 400 and body["error"]["code"] == "invalid_path", (st, body))
        st, _, body = srv.request("PUT", base + "/content?path=" + q(bad), raw=b"pwned")
        t.check("files: PUT %r is 400 invalid_path" % bad,
                st == 400 and body["error"]["code"] == "invalid_path", (st, body))
    t.check("files: nothing outside the workspace was written",
            open(os.path.join(outside, "secret")).read() == "top secret"
            and not os.path.exists(os.path.join(env.tmp, "x")))
    st, _, body = srv.request("GET", base + "/content")
    t.check("files: a missing ?path is 400 naming it",
            st == 400 and "path" in body["error"]["message"], body)

    # Planted symlinks (a folder and a file pointing outside, one inside).
    os.symlink(outside, os.path.join(ws, "linkdir"))
    os.symlink(os.path.join(outside, "secret"), os.path.join(ws, "link.txt"))
    os.symlink("app/main.py", os.path.join(ws, "inner.py"))
    for bad in ["linkdir/secret", "link.txt", "inner.py"]:
        st, _, body = srv.request("GET", base + "/content?path=" + bad)
        t.check("files: GET through the symlink %s is 403" % bad,
                st == 403 and body["error"]["code"] == "forbidden"
                and "symlink" in body["error"]["message"], (st, body))
        st, _, body = srv.request("PUT", base + "/content?path=" + bad, raw=b"pwned")
        t.check("files: PUT through the symlink %s is 403" % bad, st == 403, (st, body))
    st, _, body = srv.request("PUT", base + "/content?path=linkdir/new", raw=b"pwned")
    t.check("files: PUT of a new file below a linked folder is 403", st == 403, body)
    t.check("files: the symlinks' targets are untouched",
            open(os.path.join(outside, "secret")).read() == "top secret"
            and not os.path.exists(os.path.join(outside, "new"))
            and os.path.islink(os.path.join(ws, "link.txt")))
    st, _, lst = srv.request("GET", base)
    paths = [f["path"] for f in lst["files"]]
    t.check("files: the listing follows no symlink",
            not any(p.startswith("linkdir") or p in ("link.txt", "inner.py") for p in paths), paths)

    # Odd entries: a FIFO, a folder, a name that is not UTF-8, a huge file.
    os.mkfifo(os.path.join(ws, "fifo"))
    st, _, body = srv.request("GET", base + "/content?path=fifo")
    t.check("files: a FIFO is 403 (and the read does not block)", st == 403, body)
    st, _, body = srv.request("GET", base + "/content?path=app")
    t.check("files: a folder is 403", st == 403, body)
    st, _, body = srv.request("GET", base + "/content?path=nope.txt")
    t.check("files: a missing file is 404", st == 404 and body["error"]["code"] == "not_found", body)
    with open(os.path.join(ws.encode(), b"bad\xffname.txt"), "w") as f:
        f.write("x")
    st, _, lst = srv.request("GET", base)
    t.check("files: a name the API cannot address is listed under skipped",
            st == 200 and lst["skipped"] == ["bad\\xffname.txt"], lst.get("skipped"))
    with open(os.path.join(ws, "huge.bin"), "wb") as f:
        f.truncate(40 << 20)  # sparse
    st, _, body = srv.request("GET", base + "/content?path=huge.bin")
    t.check("files: a file over the read limit is 413", st == 413, (st, body))
    st, _, body = srv.request("PUT", base + "/content?path=big.bin", raw=b"x" * ((16 << 20) + 1))
    t.check("files: a body over the save limit is 413, nothing written",
            st == 413 and not os.path.exists(os.path.join(ws, "big.bin")), st)
    with open(os.path.join(ws, "page.html"), "w") as f:
        f.write("<script>alert(1)</script>")
    st, hdr, _ = srv.request("GET", base + "/content?path=page.html")
    t.check("files: HTML is served as text/plain", hdr["content-type"].startswith("text/plain"), hdr)
    st, _, body = srv.request("GET", "/api/tasks/nope-1/files")
    t.check("files: an unknown task is 404", st == 404, body)

    # -- sessions -------------------------------------------------------------
    st, _, s = srv.request("POST", "/api/sessions", {"name": "blog", "workflow": "quick"})
    t.check("sessions: POST creates a live session (201)",
            st == 201 and s["name"] == "blog" and s["workflow"] == "quick"
            and s["conversation"] is True and s["tasks"] == 0 and s["history"] == [], (st, s))
    st, _, body = srv.request("POST", "/api/sessions", {"name": "blog"})
    t.check("sessions: the same name again is 409", st == 409, body)
    for bad in [{"name": "../x"}, {"name": ".hidden"}, {"name": 5}, {"conversation": "yes"},
                {"nope": 1}]:
        st, _, body = srv.request("POST", "/api/sessions", bad)
        t.check("sessions: POST %s is 400" % json.dumps(bad), st == 400, (st, body))
    st, _, m1 = srv.request("POST", "/api/sessions/blog/messages",
                            {"text": "Build a shopping list CLI"})
    t.check("sessions: the first message starts a new task (202)",
            st == 202 and m1["id"] and m1["followup"] is False, (st, m1))
    s1 = wait_session_idle(srv, "blog", 1)
    session_ws = s1["workspace"]
    t.check("sessions: the history holds the message and the answer",
            [h["role"] for h in s1["history"]] == ["user", "assistant"]
            and s1["history"][0]["run_id"] == m1["id"], s1["history"])
    t1 = wait_task(srv, m1["id"])
    t.check("sessions: the task ran in the session's workspace", t1["workspace"] == session_ws,
            (t1["workspace"], session_ws))
    st, _, m2 = srv.request("POST", "/api/sessions/blog/messages", {"text": "add a delete command"})
    t.check("sessions: with conversation on, the next message is a follow-up",
            st == 202 and m2["followup"] is True and m2["id"] != m1["id"], (st, m2))
    wait_session_idle(srv, "blog", 2)
    t2 = wait_task(srv, m2["id"])
    t.check("sessions: the follow-up continued the same workspace",
            t2["workspace"] == session_ws and "follow-up" in t2["task"], t2["workspace"])
    st, _, lst = srv.request("GET", "/api/sessions/blog/files")
    t.check("sessions: GET /api/sessions/{name}/files lists the workspace",
            st == 200 and "app/main.py" in [f["path"] for f in lst["files"]], lst)
    st, _, saved = srv.request("PUT", "/api/sessions/blog/files/content?path=notes.txt",
                               raw=b"session note")
    t.check("sessions: the editor's save works on a session's workspace",
            st == 200 and open(os.path.join(session_ws, "notes.txt")).read() == "session note",
            saved)
    st, _, p = srv.request("PATCH", "/api/sessions/blog", {"conversation": False})
    t.check("sessions: PATCH turns conversation mode off", st == 200 and p["conversation"] is False, p)
    st, _, m3 = srv.request("POST", "/api/sessions/blog/messages", {"text": "add a delete command"})
    t.check("sessions: with conversation off, a message is a new task",
            st == 202 and m3["followup"] is False, (st, m3))
    wait_session_idle(srv, "blog", 3)
    st, _, body = srv.request("PATCH", "/api/sessions/blog", {"workflow": "nope"})
    t.check("sessions: PATCH to an unknown workflow is 400", st == 400, body)
    st, _, body = srv.request("POST", "/api/tasks", {"task": "write docs", "session": "blog"})
    t.check("sessions: POST /api/tasks with session goes through it",
            st == 202 and body.get("session") == "blog", (st, body))
    wait_session_idle(srv, "blog", 4)
    st, _, body = srv.request("POST", "/api/sessions/blog/messages", {"text": "  "})
    t.check("sessions: an empty message is 400", st == 400, body)
    st, _, body = srv.request("POST", "/api/sessions/nope/messages", {"text": "hi"})
    t.check("sessions: a message to an unknown session is 404", st == 404, body)
    st, _, body = srv.request("POST", "/api/sessions/blog/save")
    t.check("sessions: save answers the name", st == 200 and body == {"saved": "blog"}, body)
    path = os.path.join(sessions_dir, "blog.json")
    with open(path) as f:
        doc = json.load(f)
    t.check("sessions: the saved file is the seed's JSON with the history",
            doc["workflow"] == "quick" and len(doc["conversation_history"]) == 8
            and doc["workspace"] == session_ws, doc.get("workflow"))
    st, _, lst = srv.request("GET", "/api/sessions")
    t.check("sessions: GET /api/sessions lists it",
            st == 200 and [x["name"] for x in lst["sessions"]] == ["blog"]
            and lst["sessions"][0]["tasks"] == 4, lst)
    st, _, h = srv.request("GET", "/health")
    t.check("sessions: /health counts the live session", h["active_sessions"] == 1, h)
    st, _, body = srv.request("DELETE", "/api/sessions/blog")
    t.check("sessions: DELETE ends it and removes its saved file",
            st == 200 and body["deleted"] == "blog" and not os.path.exists(path), body)
    st, _, body = srv.request("GET", "/api/sessions/blog")
    t.check("sessions: a deleted session is 404", st == 404, body)
    st, _, lst = srv.request("GET", "/api/sessions")
    t.check("sessions: the list is empty again", lst["sessions"] == [], lst)
    t.check("sessions: the workspace stays on disk",
            os.path.isfile(os.path.join(session_ws, "notes.txt")))

    # A message's own workflow, iteration limit and agents (what the web
    # UI's task box sends) reach its run; the session's settings stay.
    st, _, s = srv.request("POST", "/api/sessions", {"name": "opts", "workflow": "quick"})
    st, _, m = srv.request("POST", "/api/sessions/opts/messages",
                           {"text": "Build a shopping list CLI", "workflow": "default",
                            "max_iterations": 1, "no_cache": True,
                            "agents": ["demo-codex", "demo-copilot", "demo-claude"]})
    t.check("overrides: a message with workflow/max_iterations/agents is 202",
            st == 202 and m["followup"] is False, (st, m))
    if st == 202:
        so = wait_session_idle(srv, "opts", 1)
        r = wait_task(srv, m["id"]).get("result", {})
        its = r.get("iterations", [])
        t.check("overrides: the run used the message's workflow and iteration limit",
                r.get("workflow") == "default" and len(its) == 1, (r.get("workflow"), len(its)))
        t.check("overrides: the run's steps used the message's agents",
                its and [x["agent"] for x in its[0]["steps"]]
                == ["demo-codex", "demo-copilot", "demo-claude"], its)
        t.check("overrides: the session's workflow stays", so["workflow"] == "quick", so)
    st, _, s = srv.request("POST", "/api/sessions", {"name": "opts2", "workflow": "quick"})
    st, _, body = srv.request("POST", "/api/tasks",
                              {"task": "Build a shopping list CLI", "session": "opts2",
                               "workflow": "default", "max_iterations": 2})
    t.check("overrides: POST /api/tasks with session passes them on (202)",
            st == 202 and body.get("session") == "opts2", (st, body))
    if st == 202:
        wait_session_idle(srv, "opts2", 1)
        r = wait_task(srv, body["id"]).get("result", {})
        t.check("overrides: ... and the run used them (2 iterations of default, not 3)",
                r.get("workflow") == "default" and len(r.get("iterations", [])) == 2,
                (r.get("workflow"), len(r.get("iterations", []))))
    for bad, field in [({"max_iterations": 0}, "max_iterations"),
                       ({"max_iterations": "3"}, "max_iterations"),
                       ({"agents": []}, "agents"), ({"agents": ["a,b"]}, "agents"),
                       ({"agents": 5}, "agents"), ({"workflow": ""}, "workflow"),
                       ({"workflow": "nope"}, "workflow"), ({"no_cache": "yes"}, "no_cache")]:
        bad["text"] = "Build a CLI"
        st, _, body = srv.request("POST", "/api/sessions/opts/messages", bad)
        t.check("overrides: message %s is 400 naming the field" % json.dumps(bad),
                st == 400 and ("'%s'" % field) in body.get("error", {}).get("message", ""),
                (st, body))
    st, _, body = srv.request("POST", "/api/tasks", {"task": "x", "session": "opts",
                                                     "workflow": "nope"})
    t.check("overrides: POST /api/tasks with session and an unknown workflow is 400",
            st == 400 and "'workflow'" in body.get("error", {}).get("message", ""), (st, body))
    for name in ("opts", "opts2"):
        srv.request("DELETE", "/api/sessions/" + name)

    # A session saved, then made live again by name.
    srv.request("POST", "/api/sessions", {"name": "keep", "workflow": "quick"})
    st, _, m = srv.request("POST", "/api/sessions/keep/messages", {"text": "Build a CLI"})
    wait_session_idle(srv, "keep", 1)
    srv.request("POST", "/api/sessions/keep/save")
    kept_ws = srv.request("GET", "/api/sessions/keep")[2]["workspace"]
finally:
    t.check("server: exits 0 on SIGTERM", srv.stop() == 0)

# -- a new server: saved sessions listed, loaded, saved again on stop --------
srv = Server(binary, env, config)
try:
    st, _, lst = srv.request("GET", "/api/sessions")
    t.check("saved: a saved session is listed, not live",
            st == 200 and [(x["name"], x["live"], x["tasks"]) for x in lst["sessions"]]
            == [("keep", False, 1)], lst)
    st, _, s = srv.request("GET", "/api/sessions/keep")
    t.check("saved: GET shows its history without loading it",
            st == 200 and s["live"] is False and len(s["history"]) == 2, s)
    st, _, m = srv.request("POST", "/api/sessions/keep/messages", {"text": "add a test"})
    t.check("saved: a message loads it and continues its task",
            st == 202 and m["followup"] is True and m["workspace"] == kept_ws, (st, m))
    wait_session_idle(srv, "keep", 2)
    st, _, s = srv.request("POST", "/api/sessions", {"name": "fresh"})
    st, _, m = srv.request("POST", "/api/sessions/fresh/messages", {"text": "Build a CLI"})
    wait_session_idle(srv, "fresh", 1)
finally:
    t.check("saved: the server exits 0 on SIGTERM", srv.stop() == 0)
with open(os.path.join(sessions_dir, "keep.json")) as f:
    t.check("saved: the stop saved the unsaved messages",
            len(json.load(f)["conversation_history"]) == 4)
t.check("saved: a session never saved by hand is saved under its name on stop",
        os.path.isfile(os.path.join(sessions_dir, "fresh.json")))

env.cleanup()
t.finish()
