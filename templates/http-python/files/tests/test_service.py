"""Tests for {{name}}: run with `python3 -m unittest` (or `make test`) from the repository root."""

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request

import service

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class InProcessTest(unittest.TestCase):
    """Runs the server in a thread on a free loopback port."""

    def setUp(self):
        self.logs = io.StringIO()
        self.server = service.Server("127.0.0.1", 0, service.Logger(stream=self.logs, env="test"))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()

    def get(self, path):
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as resp:
                return resp.status, resp.read().decode("utf-8")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8")

    def test_healthz(self):
        self.assertEqual(self.get("/healthz"), (200, '{"status":"ok"}\n'))

    def test_hello(self):
        code, body = self.get("/")
        self.assertEqual(code, 200)
        self.assertEqual(json.loads(body)["message"], "hello from {{name}}")

    def test_not_found(self):
        self.assertEqual(self.get("/nope")[0], 404)

    def test_metrics_count_requests(self):
        self.get("/")
        self.get("/")
        self.get("/nope")
        code, body = self.get("/metrics")
        self.assertEqual(code, 200)
        self.assertIn("# TYPE http_requests_total counter\n", body)
        self.assertIn('http_requests_total{path="/",code="200"} 2\n', body)
        self.assertIn('http_requests_total{path="other",code="404"} 1\n', body)
        self.assertIn('http_requests_total{path="/metrics",code="200"} 1\n', body)

    def test_logs_are_platform_json_lines(self):
        self.get("/")
        # the request line is written right after the answer: wait for it (at most 5 s)
        deadline = time.monotonic() + 5
        while '"body":"request"' not in self.logs.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        lines = self.logs.getvalue().splitlines()
        self.assertTrue(lines)
        for line in lines:
            rec = json.loads(line)
            for key in ("ts", "severity", "severity_number", "body", "attributes", "resource"):
                self.assertIn(key, rec)
            self.assertRegex(rec["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertEqual(rec["resource"]["service.name"], "{{name}}")
            self.assertEqual(rec["resource"]["team"], "{{team}}")
        req = json.loads(lines[-1])
        self.assertEqual(req["body"], "request")
        self.assertEqual(req["attributes"]["url.path"], "/")
        self.assertEqual(req["attributes"]["http.response.status_code"], 200)


class ProcessTest(unittest.TestCase):
    """Runs service.py as a process, as the platform does, and stops it with SIGTERM."""

    def test_sigterm_stops_cleanly(self):
        env = dict(os.environ, PORT="0", HOST="127.0.0.1", PYTHONUNBUFFERED="1")
        proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "service.py")], env=env,
                                stdout=subprocess.PIPE, text=True)
        try:
            first = json.loads(proc.stdout.readline())
            self.assertEqual(first["body"], "listening")
            port = first["attributes"]["port"]
            with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=5) as r:
                self.assertEqual(r.status, 200)
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=10), 0)
            rest = [json.loads(x) for x in proc.stdout.read().splitlines()]
            self.assertEqual(rest[-1]["body"], "shutting down")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()


if __name__ == "__main__":
    unittest.main()
