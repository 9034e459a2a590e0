#!/usr/bin/env python3
"""SSE fan-out benchmark client: opens N streams of one run
(/api/tasks/<id>/events?since=0), creates the gate file that lets the run's
agent start talking, and counts the events every client receives until each
has its run_finished. Prints one JSON line: clients, events per client,
total events, seconds, events/s.
Usage: sse_clients.py HOST PORT RUN_ID GATE_FILE [CLIENTS]"""

import json
import selectors
import socket
import sys
import time

host, port, run_id, gate = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
n = int(sys.argv[5]) if len(sys.argv) > 5 else 100
sel = selectors.DefaultSelector()
state = {}
for i in range(n):
    s = socket.create_connection((host, port))
    s.sendall(("GET /api/tasks/%s/events?since=0 HTTP/1.1\r\nHost: %s:%d\r\n"
               "Accept: text/event-stream\r\n\r\n" % (run_id, host, port)).encode())
    s.setblocking(False)
    state[s] = {"events": 0, "tail": b"", "done": False}
    sel.register(s, selectors.EVENT_READ)
# Every stream is open (its headers arrive once the server runs the handler).
time.sleep(0.5)
start = time.monotonic()
open(gate, "w").close()
left = n
deadline = start + 300
while left and time.monotonic() < deadline:
    for key, _ in sel.select(timeout=1):
        s = key.fileobj
        st = state[s]
        try:
            data = s.recv(1 << 18)
        except BlockingIOError:
            continue
        if data:
            buf = st["tail"] + data
            cut = buf.rfind(b"\n\n")
            if cut >= 0:
                whole = buf[:cut + 2]
                st["tail"] = buf[cut + 2:]
                st["events"] += whole.count(b"\ndata: ")
                if b"event: run_finished" in whole:
                    st["done"] = True
            else:
                st["tail"] = buf
        if not data or st["done"]:
            sel.unregister(s)
            s.close()
            left -= 1
elapsed = time.monotonic() - start
events = [st["events"] for st in state.values()]
total = sum(events)
print(json.dumps({"clients": n, "finished": n - left, "events_per_client_min": min(events),
                  "events_per_client_max": max(events), "total_events": total,
                  "seconds": round(elapsed, 3), "events_per_second": round(total / elapsed)}))
