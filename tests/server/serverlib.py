"""Helpers for the end-to-end tests of `ai-orchestrator serve`: start the
real binary on 127.0.0.1 (a free port: --listen 127.0.0.1:0), talk HTTP,
read Server-Sent Events and WebSocket frames, wait for conditions with a
deadline (never a bare sleep as synchronisation)."""

import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

DEADLINE = 60.0  # seconds: the bound of every wait


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, cond, detail=""):
        if cond:
            print("ok   " + name)
            self.passed += 1
        else:
            print("FAIL " + name + (": " + str(detail) if detail else ""))
            self.failed += 1
        sys.stdout.flush()
        return cond

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


def wait_for(cond, what, timeout=DEADLINE, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise TimeoutError("timed out waiting for " + what)


def wait_task(srv, run_id):
    """The task's JSON once its state is finished."""
    def done():
        st, _, body = srv.request("GET", "/api/tasks/" + run_id)
        return body if st == 200 and body.get("state") == "finished" else None
    return wait_for(done, "task %s to finish" % run_id)


def wait_session_idle(srv, name, tasks):
    """The session's JSON once `tasks` tasks ran and none is running (each
    with its question and answer in the history)."""
    def idle():
        st, _, body = srv.request("GET", "/api/sessions/" + name)
        if st == 200 and body["running"] is None and body["tasks"] == tasks \
                and body["messages"] == 2 * tasks:
            return body
        return None
    return wait_for(idle, "session %s to finish task %d" % (name, tasks))


class Env:
    """A temporary HOME/state/config for one test file."""

    def __init__(self, src):
        self.src = src
        self.tmp = tempfile.mkdtemp(prefix="orch-server-test-")
        self.home = os.path.join(self.tmp, "home")
        self.state = os.path.join(self.tmp, "state")
        self.gate = os.path.join(self.tmp, "gate")
        self.workspaces = os.path.join(self.tmp, "ws")
        for d in (self.home, self.gate, self.workspaces):
            os.makedirs(d)
        self.env = dict(os.environ)
        self.env.update(HOME=self.home, XDG_STATE_HOME=self.state,
                        XDG_CONFIG_HOME=os.path.join(self.tmp, "xdg"),
                        GATE_DIR=self.gate, NO_COLOR="1")

    def gate_config(self, steps=1, extra=""):
        """A config whose agent `gate` waits for the test (tests/fakes/gate-agent)."""
        path = os.path.join(self.tmp, "gate.yaml")
        wf = "\n".join("    - {agent: gate, task: implement}" for _ in range(steps))
        with open(path, "w") as f:
            f.write("""agents:
  gate:
    adapter: command
    command: %s/tests/fakes/gate-agent
    env: [GATE_DIR]
    max_concurrency: 4
    deadlines: {first_output: 60, idle: 60, total: 120}
  instant:
    adapter: command
    command: %s/bench/instant-agent
    max_concurrency: 8
workflows:
  default:
%s
  instant:
    - {agent: instant, task: implement}
settings:
  workspace_dir: %s
  kill_grace: 2
%s""" % (self.src, self.src, wf, self.workspaces, extra))
        return path

    def started(self, run_id):
        p = os.path.join(self.gate, "started-" + run_id)
        if not os.path.exists(p):
            return None
        with open(p) as f:
            text = f.read().strip()
        return int(text) if text else None

    def release(self, run_id="all"):
        open(os.path.join(self.gate, "release-" + run_id), "w").close()

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


class Server:
    def __init__(self, binary, env, config, args=(), host="127.0.0.1"):
        self.host = host
        self.err_path = os.path.join(env.tmp, "serve-%d.err" % time.monotonic_ns())
        self.err = open(self.err_path, "w")
        cmd = [binary, "serve", "--config", config, "--listen", host + ":0"]
        cmd += list(args)
        self.proc = subprocess.Popen(cmd, env=env.env, stdout=subprocess.PIPE,
                                     stderr=self.err, text=True)
        line = self.proc.stdout.readline()
        if "listening on http://" not in line:
            self.proc.kill()
            raise RuntimeError("server did not start: %r %s" % (line, self.stderr()))
        self.port = int(line.strip().rsplit(":", 1)[1])

    def stderr(self):
        if not self.err.closed:
            self.err.flush()
        with open(self.err_path) as f:
            return f.read()

    def conn(self, timeout=DEADLINE):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, raw=None):
        """Returns (status, headers dict (lower-case), parsed JSON or text)."""
        c = self.conn()
        h = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        text = r.read().decode("utf-8", "replace")
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        try:
            return r.status, hdrs, json.loads(text)
        except ValueError:
            return r.status, hdrs, text

    def stop(self, sig=signal.SIGTERM, timeout=DEADLINE):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.err.close()
        return rc


class Sse:
    """One SSE stream; events() yields (id, event, data dict)."""

    def __init__(self, server, path, headers=None):
        self.c = server.conn()
        self.c.request("GET", path, headers=headers or {})
        self.r = self.c.getresponse()
        self.status = self.r.status

    def events(self):
        ev = {}
        while True:
            line = self.r.fp.readline()
            if not line:
                return
            line = line.decode("utf-8", "replace").rstrip("\n")
            if line == "":
                if "data" in ev:
                    yield ev.get("id"), ev.get("event"), json.loads(ev["data"])
                ev = {}
            elif line.startswith(":"):
                continue
            else:
                key, _, value = line.partition(": ")
                ev[key] = value

    def close(self):
        self.r.close()
        self.c.close()


class WebSocket:
    """A minimal WebSocket client (text frames, client masking)."""

    def __init__(self, server, path, headers=None):
        self.s = socket.create_connection((server.host, server.port), timeout=DEADLINE)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n" % (path, server.host, server.port, key))
        for k, v in (headers or {}).items():
            req += "%s: %s\r\n" % (k, v)
        self.s.sendall((req + "\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.s.recv(1)
            if not chunk:
                break
            head += chunk
        self.status = int(head.split(b" ", 2)[1]) if head else 0
        self.buf = b""

    def send(self, obj):
        payload = json.dumps(obj).encode()
        mask = os.urandom(4)
        hdr = bytes([0x81])
        n = len(payload)
        if n < 126:
            hdr += bytes([0x80 | n])
        else:
            hdr += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.s.sendall(hdr + mask + masked)

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("websocket closed")
            self.buf += chunk

    def recv(self):
        """Returns the next text frame as JSON, or None on a close frame."""
        while True:
            self._need(2)
            op = self.buf[0] & 0x0F
            n = self.buf[1] & 0x7F
            off = 2
            if n == 126:
                self._need(4)
                n = int.from_bytes(self.buf[2:4], "big")
                off = 4
            elif n == 127:
                self._need(10)
                n = int.from_bytes(self.buf[2:10], "big")
                off = 10
            self._need(off + n)
            payload = self.buf[off:off + n]
            self.buf = self.buf[off + n:]
            if op == 0x8:
                return None
            if op == 0x9:  # ping: answer pong
                self.s.sendall(bytes([0x8A, 0x80]) + os.urandom(4))
                continue
            if op == 0x1:
                return json.loads(payload.decode())

    def close(self):
        self.s.close()


def read_until_finished(stream, limit=None):
    """Collects (id, kind, data) until run_finished (or `limit` events)."""
    out = []
    for ev in stream.events():
        out.append(ev)
        if ev[1] == "run_finished" or (limit and len(out) >= limit):
            break
    return out
