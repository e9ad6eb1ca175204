#!/usr/bin/env python3
"""Loads N generated services into a pave server through POST /api/v1/services.

Usage: load_services.py URL TOKEN N [CONNECTIONS]

Services are named svc-00000 .. svc-<N-1>, spread over the demo teams, each with a small but
complete manifest (JSON body, like `pave catalog apply` of a JSON manifest). Uses keep-alive
connections (http.client), one per worker thread, and prints progress to stderr. Exits 1 if any
request is refused.
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse

TEAMS = ["payments", "identity"]


def manifest(i):
    name = "svc-%05d" % i
    return {
        "apiVersion": "pave/v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "team": TEAMS[i % len(TEAMS)],
            "tier": 1 + i % 4,
            "description": "Generated service %d for the catalog benchmark" % i,
            "tags": {"cost-center": "cc-%04d" % (1000 + i % 50)},
        },
        "spec": {
            "run": {
                "command": ["./bin/" + name],
                "ports": [{"name": "http", "port": 8000 + i % 1000, "protocol": "http"}],
                "health": {"path": "/healthz", "interval": "5s", "timeout": "1s"},
                "resources": {"cpu": 0.5, "memory": "256Mi"},
            },
            "replicas": 1 + i % 3,
            "slo": {"availability": 99.9, "latencyP99": "300ms"},
        },
    }


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    url, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    conns = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    u = urllib.parse.urlsplit(url)
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    lock = threading.Lock()
    state = {"done": 0, "failed": 0, "first_error": None}
    start = time.monotonic()

    def worker(k):
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        for i in range(k, n, conns):
            body = json.dumps(manifest(i)).encode()
            c.request("POST", "/api/v1/services?source=bench", body=body, headers=headers)
            r = c.getresponse()
            data = r.read()
            with lock:
                if r.status not in (200, 201):
                    state["failed"] += 1
                    if state["first_error"] is None:
                        state["first_error"] = "%d %s" % (r.status, data[:300].decode("utf-8", "replace"))
                state["done"] += 1
                d = state["done"]
                if d % 1000 == 0 or d == n:
                    el = time.monotonic() - start
                    print("  loaded %5d/%d services (%.1f s, %.0f/s)" % (d, n, el, d / el),
                          flush=True)
        c.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if state["failed"]:
        print("  %d requests refused; first: %s" % (state["failed"], state["first_error"]),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
