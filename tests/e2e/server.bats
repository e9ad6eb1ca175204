#!/usr/bin/env bats
# The server process: metrics, its own log format, restarts on the same data dir, and the ways
# it refuses to start.

bats_require_minimum_version 1.5.0

setup_file() {
    load helpers
    e2e_server_start
}

teardown_file() {
    load helpers
    e2e_server_stop
}

setup() {
    load helpers
    cd "$E2E_CWD"
}

teardown() {
    e2e_kill_leftovers
    e2e_check_sanitizer_logs
}

# Prints the value of the metric line starting with SERIES (exact labels) from the last
# /metrics scrape in $output, or 0 if absent.
metric() {
    awk -v s="$1" 'index($0, s " ") == 1 { v = $NF } END { print (v == "" ? 0 : v) }' <<<"$output"
}

@test "/healthz answers without a token" {
    run -0 curl -fsS -m 10 "$PAVE_SERVER/healthz"
    [ "$output" = '{"status":"ok"}' ]
}

@test "/metrics counts requests by route and status" {
    local r='pave_http_requests_total{route="GET /api/v1/services/{name}"'
    run -0 curl -fsS -m 10 "$PAVE_SERVER/metrics"
    local ok0 nf0 un0
    ok0=$(metric "$r,status=\"200\"}")
    nf0=$(metric "$r,status=\"404\"}")
    un0=$(metric "$r,status=\"401\"}")
    local i
    for i in 1 2 3; do
        api admin GET /api/v1/services/ledger
        expect_status 200
    done
    for i in 1 2; do
        api admin GET /api/v1/services/no-such-service
        expect_status 404
    done
    api none GET /api/v1/services/ledger
    expect_status 401
    run -0 curl -fsS -m 10 "$PAVE_SERVER/metrics"
    [ "$(metric "$r,status=\"200\"}")" = $((ok0 + 3)) ]
    [ "$(metric "$r,status=\"404\"}")" = $((nf0 + 2)) ]
    [ "$(metric "$r,status=\"401\"}")" = $((un0 + 1)) ]
    [[ "$output" == *"# TYPE pave_http_requests_total counter"* ]]
}

@test "/metrics exposes a latency histogram per route with cumulative buckets" {
    local i
    for i in 1 2 3 4 5; do
        api alice GET /api/v1/teams
    done
    run -0 curl -fsS -m 10 "$PAVE_SERVER/metrics"
    [[ "$output" == *"# TYPE pave_http_request_duration_seconds histogram"* ]]
    local route='route="GET /api/v1/teams"'
    local count inf
    count=$(metric "pave_http_request_duration_seconds_count{$route}")
    inf=$(metric "pave_http_request_duration_seconds_bucket{$route,le=\"+Inf\"}")
    [ "$count" -ge 5 ]
    [ "$inf" = "$count" ]
    metric "pave_http_request_duration_seconds_sum{$route}" | grep -Eq '^[0-9]+\.[0-9]+$'
    # Buckets are cumulative: non-decreasing and ending at the count.
    grep -F "pave_http_request_duration_seconds_bucket{$route," <<<"$output" |
        awk -v n="$count" '{ if ($NF < prev) exit 1; prev = $NF } END { exit !(NR >= 2 && prev == n) }'
    # Every sample line has the form name{labels} value.
    local bad
    bad=$(grep -v '^#' <<<"$output" | grep -Ev '^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)+\})? [0-9.e+-]+$' || true)
    [ -z "$bad" ] || {
        echo "malformed sample lines: $bad"
        return 1
    }
}

# bats test_tags=slow
@test "the server's stderr is JSON lines with ts, severity, body and resource" {
    e2e_server_launch logcheck "$E2E_ROOT/logcheck-data" --demo
    local url="http://127.0.0.1:$SRV_PORT" tok
    tok=$(cat "$SRV_DIR/admin.token")
    # Some ordinary and some failing traffic, so the log has more than start-up lines.
    curl -sS -m 10 -o /dev/null "$url/api/v1/services"
    curl -sS -m 10 -o /dev/null -H "Authorization: Bearer $tok" "$url/api/v1/services/nope"
    curl -sS -m 10 -o /dev/null -H "Authorization: Bearer $tok" -X POST -d '[' "$url/api/v1/teams"
    curl -sS -m 10 -o /dev/null "$url/"
    run -0 e2e_server_terminate "$SRV_RUN"
    [ "$output" = 0 ]
    e2e_no_sanitizer_output "$SRV_ERR"
    [ "$(wc -l <"$SRV_ERR")" -ge 2 ]
    local n=0 line
    while IFS= read -r line; do
        n=$((n + 1))
        jq -e 'type == "object"
            and (.ts | type == "string" and test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$"))
            and (.severity | IN("TRACE","DEBUG","INFO","WARN","ERROR","FATAL"))
            and (.body | type == "string" and length > 0)
            and (.resource | type == "object" and has("service.name"))' <<<"$line" >/dev/null || {
            echo "line $n is not a valid log record: $line"
            return 1
        }
    done <"$SRV_ERR"
    grep -q '"body":"listening"' "$SRV_ERR"
    grep -q '"body":"stopping"' "$SRV_ERR"
}

# bats test_tags=slow
@test "a second start on the same data dir keeps the data and prints no new token" {
    local data="$E2E_ROOT/restart-data" tok audit1 audit2
    e2e_server_launch restart1 "$data" --demo
    local url="http://127.0.0.1:$SRV_PORT"
    grep -q 'Admin token (shown once' "$SRV_OUT"
    tok=$(cat "$data/admin.token")
    curl -fsS -m 10 -o /dev/null -H "Authorization: Bearer $tok" -H 'Content-Type: application/yaml' \
        --data-binary "@$BATS_TEST_DIRNAME/fixtures/checkout.yaml" "$url/api/v1/services"
    audit1=$(curl -fsS -m 10 -H "Authorization: Bearer $tok" "$url/api/v1/audit?limit=1000" | jq '.items | length')
    run -0 e2e_server_terminate "$SRV_RUN"
    [ "$output" = 0 ]

    e2e_server_launch restart2 "$data" --demo
    url="http://127.0.0.1:$SRV_PORT"
    run grep -c 'pave_[0-9a-f]\{40\}' "$SRV_OUT"
    [ "$output" = 0 ]
    grep -q "Admin token: in $data/admin.token" "$SRV_OUT"
    [ "$(cat "$data/admin.token")" = "$tok" ]
    run -0 curl -fsS -m 10 -H "Authorization: Bearer $tok" "$url/api/v1/services/checkout"
    [ "$(jq -r .revision <<<"$output")" = 1 ]
    run -0 curl -fsS -m 10 -H "Authorization: Bearer $tok" "$url/api/v1/services"
    [ "$(jq .total <<<"$output")" = 4 ]
    # Reloading the demo organization is idempotent: no new audit events.
    audit2=$(curl -fsS -m 10 -H "Authorization: Bearer $tok" "$url/api/v1/audit?limit=1000" | jq '.items | length')
    [ "$audit2" = "$audit1" ]
    run -0 e2e_server_terminate "$SRV_RUN"
    [ "$output" = 0 ]
    e2e_no_sanitizer_output "$SRV_ERR"
}

@test "pave server on a busy port exits 1 with a clear message" {
    run -1 timeout 30 env ASAN_OPTIONS="$E2E_ASAN_BASE" "$PAVE_BIN" server \
        --data-dir "$BATS_TEST_TMPDIR/busy" --listen "127.0.0.1:$SRV_PORT"
    [[ "$output" == *"cannot listen on 127.0.0.1:$SRV_PORT"* ]]
    [[ "$output" == *"is another server using the port?"* ]]
    e2e_no_sanitizer_output <(echo "$output")
    # The running server is unaffected.
    run -0 curl -fsS -m 10 "$PAVE_SERVER/healthz"
}

@test "pave server refuses an invalid --listen with exit 2" {
    run -2 timeout 30 "$PAVE_BIN" server --data-dir "$BATS_TEST_TMPDIR/d" --listen nonsense
    [[ "$output" == *"invalid --listen 'nonsense'"* ]]
    run -2 timeout 30 "$PAVE_BIN" server --data-dir "$BATS_TEST_TMPDIR/d" --listen 127.0.0.1:70000
}

# bats test_tags=slow,needs-sqlite3
@test "pave server refuses a database whose schema is newer, asking for an upgrade" {
    command -v sqlite3 >/dev/null || skip "sqlite3 not installed"
    local data="$E2E_ROOT/newer-data"
    e2e_server_launch newer "$data"
    run -0 e2e_server_terminate "$SRV_RUN"
    [ "$output" = 0 ]
    sqlite3 "$data/pave.db" 'PRAGMA user_version = 99;'
    [ "$(sqlite3 "$data/pave.db" 'PRAGMA user_version;')" = 99 ]
    run -1 timeout 30 env ASAN_OPTIONS="$E2E_ASAN_BASE" "$PAVE_BIN" server --data-dir "$data" \
        --listen 127.0.0.1:0
    [[ "$output" == *"99"* ]]
    [[ "$output" == *"upgrade"* ]]
    e2e_no_sanitizer_output <(echo "$output")
    # It did not touch the database.
    [ "$(sqlite3 "$data/pave.db" 'PRAGMA user_version;')" = 99 ]
}

# bats test_tags=slow
@test "SIGINT stops the server cleanly too" {
    e2e_server_launch sigint "$E2E_ROOT/sigint-data"
    kill -INT "$SRV_PID"
    run -0 e2e_server_terminate "$SRV_RUN"
    [ "$output" = 0 ]
    e2e_no_sanitizer_output "$SRV_ERR"
}
