#!/usr/bin/env bats
# The loki sink and `pave logs`, end to end: a `pave server` whose telemetry config adds a loki
# sink (with a disk buffer) next to the store sink; lines go in through POST /api/v1/logs and
# must come back from Loki's query API enriched (team) and redacted, and from `pave logs`.
#
# Debian has no Grafana Loki package (Debian's `loki` is a genetics program), so the Loki here
# is a small stand-in (python3, written below) that speaks the two endpoints we use: the push
# API (POST /loki/api/v1/push, validated like Loki: streams, labels, ["<ns>", "<line>"] pairs)
# and query_range with a {label="value",...} selector, plus /ready. It keeps what it received
# in a file, so it can be stopped and started again on the same port.
# Tags: slow (waits for retries).

load helpers

fake_loki_write() {
    cat >"$E2E_ROOT/fake_loki.py" <<'EOF'
import json, os, re, sys, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, STORE = int(sys.argv[1]), sys.argv[2]

def load():
    out = []
    if os.path.exists(STORE):
        with open(STORE) as f:
            out = [json.loads(l) for l in f if l.strip()]
    return out

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def reply(self, code, body, ctype="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        if u.path == "/ready":
            return self.reply(200, "ready\n")
        if u.path == "/loki/api/v1/query_range":
            q = urllib.parse.parse_qs(u.query).get("query", [""])[0]
            want = dict(re.findall(r'(\w+)="([^"]*)"', q))
            streams = {}
            for s in load():
                if all(s["stream"].get(k) == v for k, v in want.items()):
                    key = json.dumps(s["stream"], sort_keys=True)
                    streams.setdefault(key, []).extend(s["values"])
            res = [{"stream": json.loads(k), "values": v} for k, v in streams.items()]
            return self.reply(200, json.dumps({"status": "success",
                              "data": {"resultType": "streams", "result": res}}),
                              "application/json")
        self.reply(404, "404 page not found\n")
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        if self.path in ("/collect", "/_bulk"):  # the http and elasticsearch sinks
            with open(STORE + self.path.replace("/", "."), "a") as f:
                f.write(json.dumps({"ctype": self.headers.get("Content-Type"),
                                    "xtest": self.headers.get("X-Test"),
                                    "body": raw.decode()}) + "\n")
            if self.path == "/collect":
                return self.reply(200, "ok\n")
            lines = raw.decode().splitlines()
            items = [{"index": {"status": 201}} for _ in lines[1::2]]
            bad = any("es-reject" in l for l in lines)
            if bad:
                items[0] = {"index": {"status": 400, "error": {"type": "mapper_parsing_exception",
                                                               "reason": "failed to parse"}}}
            return self.reply(200, json.dumps({"errors": bad, "items": items}), "application/json")
        if self.path != "/loki/api/v1/push":
            return self.reply(404, "404 page not found\n")
        try:
            doc = json.loads(raw)
            assert self.headers.get("Content-Type") == "application/json", "content type"
            assert isinstance(doc["streams"], list) and doc["streams"], "no streams"
            for s in doc["streams"]:
                labels = s["stream"]
                assert isinstance(labels, dict) and labels, "stream needs labels"
                for k, v in labels.items():
                    assert re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", k), "label name " + k
                    assert isinstance(v, str) and v, "label value"
                assert s["values"], "no values"
                for ts, line in s["values"]:
                    assert isinstance(ts, str) and ts.isdigit() and len(ts) >= 18, "timestamp"
                    assert isinstance(line, str), "line"
        except Exception as e:  # Loki answers 400 with a plain message
            return self.reply(400, "error parsing push request: %s\n" % e)
        with open(STORE, "a") as f:
            for s in doc["streams"]:
                f.write(json.dumps(s) + "\n")
        self.reply(204, "")

ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
EOF
}

# Starts the stand-in on LOKI_PORT; waits (at most 10 s) for /ready.
fake_loki_start() {
    python3 "$E2E_ROOT/fake_loki.py" "$LOKI_PORT" "$E2E_ROOT/loki.jsonl" \
        >>"$E2E_ROOT/loki.log" 2>&1 3>&- </dev/null &
    echo $! >"$E2E_ROOT/loki.pid"
    local _
    for _ in $(seq 1 100); do
        curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$LOKI_PORT/ready" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "# the fake loki did not become ready" >&2
    cat "$E2E_ROOT/loki.log" >&2
    return 1
}

fake_loki_stop() {
    [ -s "$E2E_ROOT/loki.pid" ] || return 0
    kill "$(cat "$E2E_ROOT/loki.pid")" 2>/dev/null || true
    local _
    for _ in $(seq 1 50); do
        kill -0 "$(cat "$E2E_ROOT/loki.pid")" 2>/dev/null || break
        sleep 0.1
    done
    rm -f "$E2E_ROOT/loki.pid"
}

# Prints the values Loki has for SELECTOR as "labels-json<TAB>line" rows.
loki_query() {
    curl -fsS -m 5 -G "http://127.0.0.1:$LOKI_PORT/loki/api/v1/query_range" \
        --data-urlencode "query=$1" |
        jq -r '.data.result[] | .stream as $s | .values[] | "\($s | tojson)\t\(.[1])"'
}

# Waits (at most SECS) until Loki holds a line containing TEXT for SELECTOR.
loki_wait_for() {
    local selector=$1 text=$2 secs=${3:-15} _
    for _ in $(seq 1 $((secs * 5))); do
        loki_query "$selector" 2>/dev/null | grep -qF -- "$text" && return 0
        sleep 0.2
    done
    echo "# loki has no line with '$text' for $selector; it has:" >&2
    loki_query "$selector" >&2 || true
    return 1
}

ingest() {
    api admin POST "/api/v1/logs?service=$1&env=prod" -H 'Content-Type: application/x-ndjson' \
        --data-binary "$2"
    expect_status 202
}

setup_file() {
    e2e_sandbox
    fake_loki_write
    local p
    for p in $(seq 1 20); do
        LOKI_PORT=$((20000 + RANDOM % 12000))
        e2e_port_busy "$LOKI_PORT" || break
    done
    export LOKI_PORT
    fake_loki_start
    cat >"$E2E_ROOT/telemetry.yaml" <<EOF
sources: [{type: http}]
transforms: [{type: enrich}, {type: redact}]
sinks:
  - {type: store}
  - type: loki
    name: loki
    url: http://127.0.0.1:$LOKI_PORT
    labels: {cluster: e2e}
    buffer: {type: disk}
  - type: http
    url: http://127.0.0.1:$LOKI_PORT/collect
    format: json
    headers: {X-Test: e2e}
    when: {service: ledger}
  - type: elasticsearch
    name: es
    url: http://127.0.0.1:$LOKI_PORT
    when: {service: ledger}
EOF
    e2e_server_launch main "$E2E_ROOT/data" --demo --telemetry-config "$E2E_ROOT/telemetry.yaml"
    export E2E_MAIN_RUN="$SRV_RUN" E2E_DATA="$SRV_DIR"
    export PAVE_SERVER="http://127.0.0.1:$SRV_PORT"
    export ADMIN_TOKEN
    ADMIN_TOKEN="$(cat "$E2E_DATA/admin.token")"
    export PAVE_TOKEN="$ADMIN_TOKEN"
}

teardown_file() {
    fake_loki_stop
    local rc
    rc="$(e2e_server_terminate "$E2E_MAIN_RUN")" || true
    e2e_kill_leftovers
    e2e_no_sanitizer_output "$SRV_ERR"
    [ "$rc" = 0 ] || {
        echo "# pave server exited $rc" >&2
        cat "$SRV_ERR" >&2
        return 1
    }
}

teardown() {
    e2e_check_sanitizer_logs
}

@test "lines reach loki as streams, enriched with the team and redacted" {
    ingest payments-api '{"level":"warn","msg":"card declined for bob@example.com","order":42}
plain text line from payments'
    loki_wait_for '{service="payments-api"}' 'card declined'
    loki_wait_for '{service="payments-api"}' 'plain text line from payments'
    run loki_query '{service="payments-api",severity="warn"}'
    [ "$status" = 0 ]
    [[ "$output" == *'[REDACTED:email]'* ]]
    [[ "$output" != *'bob@example.com'* ]]
    labels="$(printf '%s\n' "$output" | head -1 | cut -f1)"
    [ "$(jq -r .team <<<"$labels")" = payments ]
    [ "$(jq -r .env <<<"$labels")" = prod ]
    [ "$(jq -r .cluster <<<"$labels")" = e2e ]
    # the line itself is the standard JSON
    line="$(printf '%s\n' "$output" | head -1 | cut -f2-)"
    [ "$(jq -r .body <<<"$line")" = 'card declined for [REDACTED:email]' ]
    [ "$(jq -r '.resource["service.name"]' <<<"$line")" = payments-api ]
}

@test "pave logs reads the store: text, json, filters, unknown service" {
    ingest ledger '{"level":"error","msg":"ledger out of balance","account":"a-1"}
{"level":"info","msg":"ledger closed the day"}'
    local _
    for _ in $(seq 1 50); do
        run pave logs ledger
        [[ "$output" == *'ledger closed the day'* ]] && break
        sleep 0.2
    done
    [ "$status" = 0 ]
    [[ "$output" == *'ERROR'*'ledger out of balance'*'account=a-1'* ]]
    [[ "$output" == *'INFO'*'ledger closed the day'* ]]

    run pave logs ledger -o json
    [ "$status" = 0 ]
    [ "$(printf '%s\n' "$output" | jq -s length)" = 2 ]
    [ "$(printf '%s\n' "$output" | jq -r 'select(.severity=="ERROR") | .body')" = 'ledger out of balance' ]

    run pave logs ledger --level error
    [ "$status" = 0 ]
    [[ "$output" == *'out of balance'* ]]
    [[ "$output" != *'closed the day'* ]]

    run pave logs ledger --grep 'closed' --limit 1 --since 1h
    [ "$status" = 0 ]
    [ "$(printf '%s\n' "$output" | wc -l)" = 1 ]
    [[ "$output" == *'closed the day'* ]]

    run pave logs ledger --env staging
    [ "$status" = 0 ]
    [ -z "$output" ]

    run pave logs no-such-service
    [ "$status" = 1 ]
    [[ "$output" == *'no-such-service'* ]] || [[ "$output" == *'not found'* ]]

    run pave logs ledger --since yesterday
    [ "$status" = 1 ]
    [[ "$output" == *'since'* ]]

    api admin GET '/api/v1/services/ledger/logs?limit=1'
    expect_status 200
    [ "$(jq -r .body <<<"$API_BODY")" = 'ledger closed the day' ]
    api none GET '/api/v1/services/ledger/logs'
    expect_status 401
}

@test "the http and elasticsearch sinks post the lines; a refused bulk is dead-lettered" {
    ingest ledger '{"level":"info","msg":"to the collectors"}'
    local _
    for _ in $(seq 1 50); do
        grep -qs 'to the collectors' "$E2E_ROOT/loki.jsonl._bulk" &&
            grep -qs 'to the collectors' "$E2E_ROOT/loki.jsonl.collect" && break
        sleep 0.2
    done
    # http, format json: one JSON array of standard lines, with the configured header
    rec="$(grep 'to the collectors' "$E2E_ROOT/loki.jsonl.collect" | tail -1)"
    [ "$(jq -r .ctype <<<"$rec")" = application/json ]
    [ "$(jq -r .xtest <<<"$rec")" = e2e ]
    [ "$(jq -r '.body | fromjson | map(select(.body=="to the collectors")) | length' <<<"$rec")" = 1 ]
    # elasticsearch: action + line pairs into the day's index
    rec="$(grep 'to the collectors' "$E2E_ROOT/loki.jsonl._bulk" | tail -1)"
    [ "$(jq -r .ctype <<<"$rec")" = application/x-ndjson ]
    action="$(jq -r .body <<<"$rec" | head -1)"
    [[ "$(jq -r .index._index <<<"$action")" =~ ^pave-logs-[0-9]{4}\.[0-9]{2}\.[0-9]{2}$ ]]
    # a bulk answer with errors: the batch goes to the dead letters with the item's reason
    ingest ledger '{"level":"info","msg":"es-reject this one"}'
    for _ in $(seq 1 50); do
        grep -qs 'es-reject' "$E2E_DATA/telemetry/dead-letter/es.jsonl" && break
        sleep 0.2
    done
    grep -q 'es-reject' "$E2E_DATA/telemetry/dead-letter/es.jsonl"
    grep -q 'mapper_parsing_exception' "$E2E_DATA/telemetry/dead-letter/es.jsonl"
}

@test "pave logs -f streams new lines as they arrive" {
    (cd "$E2E_CWD" && exec timeout 20 "$PAVE_BIN" logs auth-service -f -o json \
        >"$E2E_ROOT/follow.out" 2>"$E2E_ROOT/follow.err" 3>&-) &
    local fpid=$! _
    sleep 1
    ingest auth-service '{"level":"info","msg":"followed line one"}'
    for _ in $(seq 1 50); do
        grep -q 'followed line one' "$E2E_ROOT/follow.out" && break
        sleep 0.2
    done
    ingest auth-service '{"level":"info","msg":"followed line two"}'
    for _ in $(seq 1 50); do
        grep -q 'followed line two' "$E2E_ROOT/follow.out" && break
        sleep 0.2
    done
    kill "$fpid" 2>/dev/null || true
    wait "$fpid" 2>/dev/null || true
    grep -q 'followed line one' "$E2E_ROOT/follow.out"
    grep -q 'followed line two' "$E2E_ROOT/follow.out"
    [ "$(grep -c 'followed line one' "$E2E_ROOT/follow.out")" = 1 ]
}

@test "lines pushed while loki is down arrive after it comes back" {
    fake_loki_stop
    ingest payments-api '{"level":"info","msg":"sent while loki was down"}'
    sleep 3
    run loki_query '{service="payments-api"}'
    [[ "$output" != *'sent while loki was down'* ]]
    fake_loki_start
    # the sink retries with backoff (at most 30 s between tries)
    loki_wait_for '{service="payments-api"}' 'sent while loki was down' 40
    # and nothing was dead-lettered
    [ ! -s "$E2E_DATA/telemetry/dead-letter/loki.jsonl" ]
}
