#!/bin/sh
# Smoke test for {{name}}: starts the built binary on a free loopback port, checks every
# endpoint and the log format, then stops it with SIGTERM. Needs curl. Usage: tests/smoke.sh BIN
set -u
BIN=${1:-./bin/{{name}}}
TMP=$(mktemp -d)
PID=
cleanup() {
    [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
fails=0
check() { # check DESCRIPTION COMMAND...
    desc=$1
    shift
    if "$@"; then
        echo "ok - $desc"
    else
        echo "not ok - $desc"
        fails=$((fails + 1))
    fi
}

PORT=0 HOST=127.0.0.1 PAVE_ENV=test "$BIN" >"$TMP/log" 2>"$TMP/err" &
PID=$!
port=
i=0
while [ $i -lt 100 ]; do
    port=$(sed -n 's/.*"body":"listening".*"port":\([0-9][0-9]*\).*/\1/p' "$TMP/log" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
    i=$((i + 1))
done
if [ -z "$port" ]; then
    echo "not ok - service did not start; log:"
    cat "$TMP/log" "$TMP/err"
    exit 1
fi
URL="http://127.0.0.1:$port"

get() { # get PATH -> body in $TMP/body, status code on stdout
    curl -sS -m 5 -o "$TMP/body" -w '%{http_code}' "$URL$1"
}

check "GET /healthz answers 200" [ "$(get /healthz)" = 200 ]
check "/healthz body is {\"status\":\"ok\"}" grep -q '"status":"ok"' "$TMP/body"
check "GET / answers 200" [ "$(get /)" = 200 ]
check "GET / says hello as JSON" grep -q '"message":"hello from {{name}}"' "$TMP/body"
check "GET /nope answers 404" [ "$(get /nope)" = 404 ]
check "GET /metrics answers 200" [ "$(get /metrics)" = 200 ]
check "/metrics has a TYPE line" grep -q '^# TYPE http_requests_total counter$' "$TMP/body"
check "/metrics counted GET /" grep -q '^http_requests_total{path="/",code="200"} 1$' "$TMP/body"
check "/metrics counted the 404" \
    grep -q '^http_requests_total{path="other",code="404"} 1$' "$TMP/body"
check "/metrics counted GET /healthz" \
    grep -q '^http_requests_total{path="/healthz",code="200"} 1$' "$TMP/body"

kill -TERM "$PID"
code=
i=0
while [ $i -lt 50 ]; do
    if ! kill -0 "$PID" 2>/dev/null; then
        wait "$PID"
        code=$?
        break
    fi
    sleep 0.1
    i=$((i + 1))
done
PID_DONE=$PID
PID=
check "SIGTERM stops the service with exit 0" [ "$code" = 0 ]
[ -n "$code" ] || kill -KILL "$PID_DONE" 2>/dev/null

log_ok() {
    grep -q '"body":"shutting down"' "$TMP/log" || return 1
    grep -q '"body":"request".*"url.path":"/nope","http.response.status_code":404' "$TMP/log" ||
        return 1
    # every line is a JSON object with the platform's fields
    while IFS= read -r line; do
        case $line in
        '{"ts":"'*'","severity":"'*'"body":"'*'"attributes":{'*'"resource":{"service.name":"{{name}}","team":"{{team}}"'*'}}') ;;
        *)
            echo "# bad log line: $line"
            return 1
            ;;
        esac
        if command -v python3 >/dev/null 2>&1; then
            printf '%s\n' "$line" | python3 -c 'import json,sys; json.loads(sys.stdin.read())' ||
                return 1
        fi
    done <"$TMP/log"
}
check "logs are JSON lines in the platform format" log_ok

if [ "$fails" -ne 0 ]; then
    echo "$fails check(s) failed; service log:"
    cat "$TMP/log"
    exit 1
fi
echo "all checks passed"
