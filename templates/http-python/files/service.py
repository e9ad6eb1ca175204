"""{{name}}: an HTTP service on the Python 3 standard library, scaffolded by
`pave init --template http-python`.

  GET /         hello, as JSON
  GET /healthz  liveness: 200 {"status": "ok"}
  GET /metrics  Prometheus text format: http_requests_total{path,code}, process start time

Configuration comes from the environment: PORT (default {{var.port}}; 0 picks a free port,
reported in the "listening" log line), HOST (default 0.0.0.0), LOG_LEVEL (debug, info, warn,
error), PAVE_ENV and SERVICE_VERSION (copied into every log line's resource).

Logs are JSON lines on stdout in the platform standard: ts, severity, severity_number, body,
attributes, resource {service.name, team, deployment.environment, service.version}.
SIGTERM and SIGINT stop the service cleanly (exit 0).
"""

import datetime
import http.server
import json
import os
import signal
import sys
import threading
import time

SERVICE_NAME = "{{name}}"
SERVICE_TEAM = "{{team}}"
DEFAULT_PORT = {{var.port}}

SEVERITIES = {"DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17}
ROUTES = ("/", "/healthz", "/metrics")


class Logger:
    """Writes one JSON object per line in the platform's logging standard."""

    def __init__(self, stream=None, level=None, env=None, version=None):
        self.stream = stream if stream is not None else sys.stdout
        level = (level or os.environ.get("LOG_LEVEL") or "info").upper()
        self.min = SEVERITIES.get(level, SEVERITIES["INFO"])
        self.resource = {
            "service.name": SERVICE_NAME,
            "team": SERVICE_TEAM,
            "deployment.environment": env or os.environ.get("PAVE_ENV") or "local",
            "service.version": version or os.environ.get("SERVICE_VERSION") or "dev",
        }
        self.lock = threading.Lock()

    def log(self, severity, body, **attributes):
        number = SEVERITIES[severity]
        if number < self.min:
            return
        now = datetime.datetime.now(datetime.timezone.utc)
        line = json.dumps({
            "ts": now.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (now.microsecond // 1000),
            "severity": severity,
            "severity_number": number,
            "body": body,
            "attributes": attributes,
            "resource": self.resource,
        }, separators=(",", ":"))
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()


class Metrics:
    """Request counters by route and status code, rendered in Prometheus text format."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = {}
        self.start_time = time.time()

    def count(self, path, code):
        route = path if path in ROUTES else "other"
        with self.lock:
            self.requests[(route, code)] = self.requests.get((route, code), 0) + 1

    def render(self):
        lines = [
            "# HELP http_requests_total HTTP requests served, by path and status.",
            "# TYPE http_requests_total counter",
        ]
        with self.lock:
            for (route, code), n in sorted(self.requests.items()):
                lines.append('http_requests_total{path="%s",code="%d"} %d' % (route, code, n))
        lines += [
            "# HELP process_start_time_seconds Start time of the process since the Unix epoch "
            "in seconds.",
            "# TYPE process_start_time_seconds gauge",
            "process_start_time_seconds %.3f" % self.start_time,
        ]
        return "\n".join(lines) + "\n"


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = SERVICE_NAME
    protocol_version = "HTTP/1.1"

    def _send(self, code, body, content_type="application/json"):
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _handle(self):
        start = time.monotonic()
        path = self.path.split("?", 1)[0]
        metrics = self.server.metrics
        if path in ROUTES and self.command not in ("GET", "HEAD"):
            code, body, ctype = 405, '{"error":"method not allowed"}\n', "application/json"
        elif path == "/":
            code, ctype = 200, "application/json"
            body = json.dumps({"message": "hello from " + SERVICE_NAME,
                               "service": SERVICE_NAME, "team": SERVICE_TEAM}) + "\n"
        elif path == "/healthz":
            code, body, ctype = 200, '{"status":"ok"}\n', "application/json"
        elif path == "/metrics":
            metrics.count(path, 200)  # this scrape is counted in its own answer
            code, body = 200, metrics.render()
            ctype = "text/plain; version=0.0.4; charset=utf-8"
        else:
            code, body, ctype = 404, '{"error":"not found"}\n', "application/json"
        if path != "/metrics" or code != 200:
            metrics.count(path, code)
        self._send(code, body, ctype)
        self.server.logger.log("INFO", "request", **{
            "http.request.method": self.command,
            "url.path": path,
            "http.response.status_code": code,
            "duration_ms": round((time.monotonic() - start) * 1000, 3),
        })

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    def log_message(self, format, *args):  # noqa: A002 - replaced by the JSON request log
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host, port, logger=None):
        super().__init__((host, port), Handler)
        self.logger = logger or Logger()
        self.metrics = Metrics()


def main():
    host = os.environ.get("HOST") or "0.0.0.0"
    port = int(os.environ.get("PORT") or DEFAULT_PORT)
    server = Server(host, port)
    server.logger.log("INFO", "listening", host=host, port=server.server_address[1])

    def stop(signum, frame):
        # shutdown() waits for serve_forever() to return, so call it from another thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    server.logger.log("INFO", "shutting down")
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
