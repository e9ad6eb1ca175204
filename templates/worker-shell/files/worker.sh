#!/bin/sh
# {{name}}: a background worker in POSIX sh, scaffolded by `pave init --template worker-shell`.
#
# Every INTERVAL seconds (default {{var.interval}}) it runs do_work and logs the outcome. It has
# no HTTP port, so there is no /healthz: the platform treats a running process as alive, and a
# worker that is stuck should exit non-zero so that it is restarted.
#
# Environment: INTERVAL (seconds, a whole number), LOG_LEVEL (debug, info, warn, error),
# MAX_RUNS (stop after that many runs; 0 = forever, the default), PAVE_ENV, SERVICE_VERSION.
# Logs: JSON lines on stdout in the platform standard (ts, severity, severity_number, body,
# attributes, resource). SIGTERM and SIGINT finish the current run, log and exit 0.

SERVICE_NAME="{{name}}"
SERVICE_TEAM="{{team}}"
INTERVAL=${INTERVAL:-{{var.interval}}}
MAX_RUNS=${MAX_RUNS:-0}

case $INTERVAL in '' | *[!0-9]*) INTERVAL={{var.interval}} ;; esac
case $MAX_RUNS in '' | *[!0-9]*) MAX_RUNS=0 ;; esac

case ${LOG_LEVEL:-info} in
debug) LOG_MIN=5 ;;
warn) LOG_MIN=13 ;;
error) LOG_MIN=17 ;;
*) LOG_MIN=9 ;;
esac

# Escapes $1 for the inside of a JSON string (backslash, quote, control characters dropped).
json_str() {
    printf '%s' "$1" | tr -d '\000-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'
}

RESOURCE="\"service.name\":\"$SERVICE_NAME\",\"team\":\"$SERVICE_TEAM\""
RESOURCE="$RESOURCE,\"deployment.environment\":\"$(json_str "${PAVE_ENV:-local}")\""
RESOURCE="$RESOURCE,\"service.version\":\"$(json_str "${SERVICE_VERSION:-dev}")\""

now() {
    t=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ 2>/dev/null)
    case $t in *N* | '') t=$(date -u +%Y-%m-%dT%H:%M:%S.000Z) ;; esac
    printf '%s' "$t"
}

# log SEVERITY BODY [ATTRIBUTES], where ATTRIBUTES is the inside of a JSON object.
log() {
    case $1 in DEBUG) n=5 ;; INFO) n=9 ;; WARN) n=13 ;; *) n=17 ;; esac
    [ "$n" -lt "$LOG_MIN" ] && return 0
    printf '{"ts":"%s","severity":"%s","severity_number":%d,"body":"%s","attributes":{%s},"resource":{%s}}\n' \
        "$(now)" "$1" "$n" "$(json_str "$2")" "${3:-}" "$RESOURCE"
}

# The work itself: replace this. Return non-zero on failure; it is logged and the loop goes on.
do_work() {
    : # e.g. drain a queue, sync a file, call an API
}

stopping=0
sleeper=
on_stop() {
    stopping=1
    [ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null
}
trap on_stop TERM INT

log INFO "started" "\"interval_s\":$INTERVAL,\"max_runs\":$MAX_RUNS"
runs=0
failures=0
while [ "$stopping" = 0 ]; do
    runs=$((runs + 1))
    if do_work; then
        log INFO "work done" "\"run\":$runs"
    else
        failures=$((failures + 1))
        log ERROR "work failed" "\"run\":$runs,\"failures\":$failures"
    fi
    [ "$MAX_RUNS" -gt 0 ] && [ "$runs" -ge "$MAX_RUNS" ] && break
    [ "$stopping" = 0 ] || break
    # sleep in the background so a signal interrupts the wait at once
    sleep "$INTERVAL" &
    sleeper=$!
    wait "$sleeper" 2>/dev/null
    sleeper=
done
if [ "$stopping" = 1 ]; then
    log INFO "shutting down" "\"runs\":$runs,\"reason\":\"signal\""
else
    log INFO "shutting down" "\"runs\":$runs,\"reason\":\"max_runs\""
fi
exit 0
