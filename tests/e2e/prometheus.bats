#!/usr/bin/env bats
# Monitoring end to end (docs/monitoring.md): a service scaffolded from the http-c template with
# an availability SLO is pushed, built and deployed behind the real HAProxy; the deploy
# controller writes DATA/monitoring/{targets.json,rules.yml,prometheus.yml}; a real Prometheus
# (Debian package `prometheus`, run directly on a free loopback port, never as the system
# service) is started with that config and must scrape the replica and the pave server, carry the
# service, team and env labels and load the generated rules, which promtool accepts. Every wait
# is bounded; teardown stops Prometheus, the server (--stop-workloads) and anything left over.

bats_require_minimum_version 1.5.0

SVC=web

setup_file() {
    load helpers
    command -v prometheus >/dev/null && command -v promtool >/dev/null || {
        echo "# prometheus and promtool are needed (scripts/install-deps --test)" >&2
        return 1
    }
    e2e_sandbox || return 1
    export E2E_ASAN_BASE="${E2E_ASAN_BASE:+$E2E_ASAN_BASE:}log_path=$E2E_SANLOG/srv"
    export E2E_UBSAN_BASE="${E2E_UBSAN_BASE:+$E2E_UBSAN_BASE:}log_path=$E2E_SANLOG/srv"
    export IPORT SPORT PPORT
    IPORT=$(e2e_free_port) || return 1
    SPORT=$((33000 - (RANDOM % 400) * 10))
    e2e_server_launch main "$E2E_ROOT/data" --demo --ingress "127.0.0.1:$IPORT" \
        --service-ports "$SPORT" --stop-workloads || return 1
    export E2E_MAIN_RUN="$SRV_RUN" E2E_DATA="$SRV_DIR" MAIN_PORT="$SRV_PORT"
    export PAVE_SERVER="http://127.0.0.1:$SRV_PORT" MON="$SRV_DIR/monitoring"
    export PAVE_TOKEN
    PAVE_TOKEN="$(cat "$E2E_DATA/admin.token")" || return 1
    (cd "$E2E_CWD" && "$PAVE_BIN" init "$SVC" --template http-c --team payments) >/dev/null ||
        return 1
    # an availability objective, so the error-budget burn alerts are generated too
    printf '  slo: { availability: 99.5 }\n' >>"$E2E_CWD/$SVC/pave.yaml"
    (cd "$E2E_CWD" && "$PAVE_BIN" catalog apply -f "$SVC/pave.yaml") >/dev/null || return 1
    e2e_git_push "$SVC" first || return 1
    (cd "$E2E_CWD" && "$PAVE_BIN" deploy "$SVC" --env dev) >/dev/null || return 1
}

teardown_file() {
    load helpers
    local rc=0
    if [ -s "$E2E_ROOT/prometheus.pid" ]; then
        kill -TERM "$(cat "$E2E_ROOT/prometheus.pid")" 2>/dev/null
        wait_gone "$(cat "$E2E_ROOT/prometheus.pid")" ||
            kill -KILL "$(cat "$E2E_ROOT/prometheus.pid")" 2>/dev/null
    fi
    if [ -n "${E2E_MAIN_RUN:-}" ]; then
        e2e_server_terminate "$E2E_MAIN_RUN" >/dev/null || rc=1
        e2e_no_sanitizer_output "$E2E_MAIN_RUN/stderr" || rc=1
    fi
    pkill -KILL -f "pave shim $E2E_DATA/" 2>/dev/null || true
    local m="$E2E_DATA/ingress/master.pid"
    [ -s "$m" ] && kill -KILL "$(cat "$m")" 2>/dev/null
    for f in "$E2E_SANLOG"/srv*; do
        [ -e "$f" ] || continue
        echo "# sanitizer report from the server or a shim ($f):" >&2
        cat "$f" >&2
        rc=1
    done
    e2e_kill_leftovers
    return $rc
}

setup() {
    load helpers
    cd "$E2E_CWD"
}

teardown() {
    e2e_check_sanitizer_logs
}

# ---- helpers ------------------------------------------------------------------------------

# Waits (at most 10 s) for process PID to exit.
wait_gone() {
    local _
    for _ in $(seq 1 100); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# Waits (at most N*0.2 s) until the jq filter over targets.json is true.
wait_targets() {
    local filter=$1 n=${2:-150} _
    for _ in $(seq 1 "$n"); do
        jq -e "$filter" "$MON/targets.json" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "# targets.json never matched: $filter" >&2
    cat "$MON/targets.json" >&2
    return 1
}

# Starts Prometheus on the generated config (once per file); sets PROM.
prometheus_start() {
    if [ -s "$E2E_ROOT/prometheus.url" ]; then
        PROM=$(cat "$E2E_ROOT/prometheus.url")
        return 0
    fi
    local port _
    port=$(e2e_free_port) || return 1
    mkdir -p "$E2E_ROOT/tsdb"
    (
        prometheus --config.file="$MON/prometheus.yml" \
            --storage.tsdb.path="$E2E_ROOT/tsdb" \
            --web.listen-address="127.0.0.1:$port" \
            >"$E2E_ROOT/prometheus.log" 2>&1 &
        echo $! >"$E2E_ROOT/prometheus.pid"
    ) 3>&- </dev/null
    PROM="http://127.0.0.1:$port"
    for _ in $(seq 1 150); do
        if curl -fsS -m 1 "$PROM/-/ready" >/dev/null 2>&1; then
            echo "$PROM" >"$E2E_ROOT/prometheus.url"
            return 0
        fi
        kill -0 "$(cat "$E2E_ROOT/prometheus.pid")" 2>/dev/null || break
        sleep 0.2
    done
    echo "# prometheus did not become ready:" >&2
    cat "$E2E_ROOT/prometheus.log" >&2
    return 1
}

# prom_query QUERY: prints the result vector (JSON) of an instant query.
prom_query() {
    curl -fsS -m 5 -G "$PROM/api/v1/query" --data-urlencode "query=$1" | jq -c '.data.result'
}

# Waits (at most N*0.5 s) until the jq filter over the result of QUERY is true.
wait_query() {
    local query=$1 filter=$2 n=${3:-120} _
    for _ in $(seq 1 "$n"); do
        prom_query "$query" 2>/dev/null | jq -e "$filter" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    echo "# query never matched: $query | $filter; last result:" >&2
    prom_query "$query" >&2
    curl -fsS -m 5 "$PROM/api/v1/targets" >&2
    return 1
}

lb_get() {
    curl -fsS -m 5 -o /dev/null -H "Host: dev.$SVC.localhost" "http://127.0.0.1:$IPORT${1:-/}"
}

# ---- tests ----------------------------------------------------------------------------------

@test "monitoring: targets.json lists the replica and the server, with service, team and env" {
    wait_targets "any(.[]; .labels.service == \"$SVC\")"
    run -0 jq -c "[.[] | select(.labels.service == \"$SVC\")][0]" "$MON/targets.json"
    [ "$(jq -r .labels.team <<<"$output")" = payments ]
    [ "$(jq -r .labels.env <<<"$output")" = dev ]
    [[ "$(jq -r .labels.instance_name <<<"$output")" == "$SVC.dev."* ]]
    [ "$(jq -r '.labels.revision | length' <<<"$output")" = 12 ]
    [[ "$(jq -r '.targets[0]' <<<"$output")" == 127.0.0.1:* ]]
    # the replica answers where the file says
    run -0 curl -fsS -m 5 "http://$(jq -r '.targets[0]' <<<"$output")/metrics"
    [[ "$output" == *"http_requests_total"* ]]
    # the server itself, as job "pave"
    run -0 jq -r '.[] | select(.labels.job == "pave") | .targets[0]' "$MON/targets.json"
    [ "$output" = "127.0.0.1:$MAIN_PORT" ]
    # and its /metrics has the replica gauges
    run -0 curl -fsS -m 5 "$PAVE_SERVER/metrics"
    [[ "$output" == *"# TYPE pave_replica_ready gauge"* ]]
    [[ "$output" == *"pave_replica_ready{service=\"$SVC\",env=\"dev\",replica=\"$SVC.dev."* ]]
    [[ "$output" == *"pave_replica_crash_looping{service=\"$SVC\",env=\"dev\""*"} 0"* ]]
    [[ "$output" == *"pave_replica_restarts_total{service=\"$SVC\""* ]]
    [[ "$output" == *"pave_deploy_replicas_wanted{service=\"$SVC\",env=\"dev\"} 1"* ]]
}

@test "monitoring: the files are rewritten only when their content changes" {
    wait_targets "any(.[]; .labels.service == \"$SVC\")"
    local before
    before=$(stat -c %Y.%i "$MON/targets.json" "$MON/rules.yml" "$MON/prometheus.yml")
    sleep 2.5 # five reconciler ticks
    [ "$(stat -c %Y.%i "$MON/targets.json" "$MON/rules.yml" "$MON/prometheus.yml")" = "$before" ]
}

@test "monitoring: promtool accepts the generated rules and config" {
    wait_targets "any(.[]; .labels.service == \"$SVC\")"
    run -0 promtool check rules "$MON/rules.yml"
    [[ "$output" == *"SUCCESS"* ]]
    run -0 promtool check config "$MON/prometheus.yml"
    run -0 grep -c 'alert: PaveTargetDown' "$MON/rules.yml"
    [ "$output" = 1 ]
    grep -q 'alert: PaveCrashLooping' "$MON/rules.yml"
    grep -q 'alert: PaveErrorBudgetBurnFast' "$MON/rules.yml"
    grep -q 'alert: PaveErrorBudgetBurnSlow' "$MON/rules.yml"
    grep -q 'alert: PaveServerDown' "$MON/rules.yml"
    # 99.5% availability: 14.4 times a 0.005 budget
    grep -q '> (14.4 \* 0.005)' "$MON/rules.yml"
}

@test "monitoring: a real Prometheus scrapes the replica with its labels and loads the rules" {
    wait_targets "any(.[]; .labels.service == \"$SVC\")"
    prometheus_start
    wait_query "up{service=\"$SVC\"}" '.[0].value[1] == "1"'
    run -0 prom_query "up{service=\"$SVC\"}"
    [ "$(jq -r '.[0].metric.team' <<<"$output")" = payments ]
    [ "$(jq -r '.[0].metric.env' <<<"$output")" = dev ]
    [ "$(jq -r '.[0].metric.job' <<<"$output")" = pave-services ]
    # traffic through the load balancer shows up in the template's request counter
    local i
    for i in 1 2 3 4 5; do lb_get /; done
    wait_query "http_requests_total{service=\"$SVC\",team=\"payments\",env=\"dev\",path=\"/\",code=\"200\"}" \
        '(.[0].value[1] | tonumber) >= 5'
    # the server is scraped too, with the replica gauges the crash-loop rule uses
    wait_query "pave_replica_ready{job=\"pave\",service=\"$SVC\",env=\"dev\"}" '.[0].value[1] == "1"'
    wait_query "pave_replica_crash_looping{job=\"pave\",service=\"$SVC\"}" '.[0].value[1] == "0"'
    # the rules are loaded and evaluate without errors
    run -0 curl -fsS -m 5 "$PROM/api/v1/rules"
    [ "$(jq -r '[.data.groups[].rules[].name] | sort | unique | join(",")' <<<"$output")" = \
        "PaveCertificateExpiringSoon,PaveCertificateNotRenewed,PaveCrashLooping,PaveErrorBudgetBurnFast,PaveErrorBudgetBurnSlow,PaveServerDown,PaveTargetDown" ]
    [ "$(jq '[.data.groups[].rules[] | select(.health == "err")] | length' <<<"$output")" = 0 ]
}
