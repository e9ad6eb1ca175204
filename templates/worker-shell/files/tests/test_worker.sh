#!/bin/sh
# Tests for {{name}}: runs the worker for a few runs, checks its log lines, then checks that
# SIGTERM stops it at once with exit 0. POSIX sh. Usage: tests/test_worker.sh [WORKER]
set -u
W=${1:-./worker.sh}
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

# 1. A bounded run: MAX_RUNS=2 with a 1 s interval ends by itself.
INTERVAL=1 MAX_RUNS=2 PAVE_ENV=test sh "$W" >"$TMP/run.log" 2>"$TMP/run.err"
check "a bounded run exits 0" [ $? = 0 ]
check "it logs 'started'" grep -q '"body":"started"' "$TMP/run.log"
check "it logs two runs" [ "$(grep -c '"body":"work done"' "$TMP/run.log")" = 2 ]
check "it logs why it stopped" grep -q '"body":"shutting down".*"reason":"max_runs"' "$TMP/run.log"
check "nothing on stderr" [ ! -s "$TMP/run.err" ]

lines_ok() {
    while IFS= read -r line; do
        case $line in
        '{"ts":"'*'","severity":"'*'","severity_number":'*',"body":"'*'","attributes":{'*'},"resource":{"service.name":"{{name}}","team":"{{team}}","deployment.environment":"test",'*'}}') ;;
        *)
            echo "# bad log line: $line"
            return 1
            ;;
        esac
        if command -v python3 >/dev/null 2>&1; then
            printf '%s\n' "$line" | python3 -c 'import json,sys; json.loads(sys.stdin.read())' ||
                return 1
        fi
    done <"$1"
}
check "log lines are JSON in the platform format" lines_ok "$TMP/run.log"

# 2. SIGTERM during the sleep: the worker stops at once and exits 0.
INTERVAL=30 PAVE_ENV=test sh "$W" >"$TMP/term.log" 2>&1 &
PID=$!
i=0
while [ $i -lt 50 ] && ! grep -q '"body":"work done"' "$TMP/term.log"; do
    sleep 0.1
    i=$((i + 1))
done
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
check "SIGTERM stops the worker within 5 s with exit 0" [ "$code" = 0 ]
[ -n "$code" ] && PID=
check "it logs the signal" grep -q '"body":"shutting down".*"reason":"signal"' "$TMP/term.log"

if [ "$fails" -ne 0 ]; then
    echo "$fails check(s) failed; logs:"
    cat "$TMP/run.log" "$TMP/term.log"
    exit 1
fi
echo "all checks passed"
