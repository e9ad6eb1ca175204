#!/usr/bin/env bats
# File integrity monitoring and the workload watch through the real server: a service scaffolded
# from the http-python template, with the fixture tests/e2e/fixtures/intruder/intruder.py as its
# command (it opens a second listening port and starts `sleep` after it starts), is pushed,
# built and deployed as a sandboxed replica. Tampering with a file of its deployed bundle raises
# a high fim.modified alert for the service; a --fim-path file raises a medium one and is
# accepted through the API (audited); the replica's extra port and child process raise
# builtin.new-listening-port and builtin.unexpected-process. Alerts are read with
# GET /api/v1/security/alerts. Bounded waits only; the server runs with --stop-workloads.

bats_require_minimum_version 1.5.0

SVC=intruder

setup_file() {
    load helpers
    e2e_sandbox || return 1
    export E2E_ASAN_BASE="${E2E_ASAN_BASE:+$E2E_ASAN_BASE:}log_path=$E2E_SANLOG/srv"
    export E2E_UBSAN_BASE="${E2E_UBSAN_BASE:+$E2E_UBSAN_BASE:}log_path=$E2E_SANLOG/srv"
    export WATCHED="$E2E_ROOT/watched"
    mkdir -p "$WATCHED/conf.d"
    echo "port = 5432" >"$WATCHED/conf.d/db.conf"
    export IPORT SPORT
    IPORT=$(e2e_free_port) || return 1
    SPORT=$((33000 - (RANDOM % 400) * 10))
    e2e_server_launch main "$E2E_ROOT/data" --demo --ingress "127.0.0.1:$IPORT" \
        --service-ports "$SPORT" --stop-workloads --fim-path "$WATCHED" \
        --fim-interval 300 || return 1
    export E2E_MAIN_RUN="$SRV_RUN" E2E_DATA="$SRV_DIR" MAIN_PORT="$SRV_PORT"
    export PAVE_SERVER="http://127.0.0.1:$SRV_PORT"
    export PAVE_TOKEN ADMIN_TOKEN
    PAVE_TOKEN="$(cat "$E2E_DATA/admin.token")" || return 1
    ADMIN_TOKEN="$PAVE_TOKEN"
    (cd "$E2E_CWD" && "$PAVE_BIN" init "$SVC" --template http-python --team payments) \
        >/dev/null || return 1
    local d="$E2E_CWD/$SVC"
    cp "$E2E_DIR/fixtures/intruder/intruder.py" "$d/" || return 1
    sed -i 's/command: \["python3", "service.py"\]/command: ["python3", "intruder.py"]/' \
        "$d/pave.yaml" || return 1
    sed -i 's/paths: \[service.py, bin\/\]/paths: [service.py, intruder.py, bin\/]/' \
        "$d/.pave/pipeline.yml" || return 1
    grep -q intruder.py "$d/pave.yaml" && grep -q intruder.py "$d/.pave/pipeline.yml" || return 1
    (cd "$E2E_CWD" && "$PAVE_BIN" catalog apply -f "$SVC/pave.yaml") >/dev/null || return 1
    e2e_git_push "$SVC" "first" || return 1
    (cd "$E2E_CWD" && "$PAVE_BIN" deploy "$SVC" --env dev) >/dev/null || return 1
}

teardown_file() {
    load helpers
    local rc=0
    [ -n "${E2E_MAIN_RUN:-}" ] && { e2e_server_terminate "$E2E_MAIN_RUN" >/dev/null || rc=1; }
    # safety net: the replicas' shims by their pid files (nothing else is matched)
    local p
    for p in "$E2E_DATA"/deploy/replicas/*/shim.pid; do
        [ -s "$p" ] && kill -KILL "$(cat "$p")" 2>/dev/null
    done
    local m="$E2E_DATA/ingress/master.pid"
    [ -s "$m" ] && kill -KILL "$(cat "$m")" 2>/dev/null
    [ -n "${E2E_MAIN_RUN:-}" ] && { e2e_no_sanitizer_output "$E2E_MAIN_RUN/stderr" || rc=1; }
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
}

teardown() {
    e2e_check_sanitizer_logs
}

# Waits (at most N*0.2 s, default 20 s) for an alert matching the jq filter over the alert list;
# prints it.
wait_alert() {
    local filter=$1 n=${2:-100} hit _
    for _ in $(seq 1 "$n"); do
        api admin GET "/api/v1/security/alerts?limit=200"
        if [ "$API_STATUS" = 200 ]; then
            hit=$(jq -c "[.items[] | select($filter)][0] // empty" <<<"$API_BODY")
            [ -n "$hit" ] && {
                echo "$hit"
                return 0
            }
        fi
        sleep 0.2
    done
    echo "# no alert matched $filter; last answer $API_STATUS: $API_BODY" >&2
    return 1
}

bundle_root() {
    local b
    for b in "$E2E_DATA"/bundles/*/rootfs; do
        [ -f "$b/intruder.py" ] && echo "$b" && return 0
    done
    return 1
}

@test "fim: the deployed bundle is baselined without alerts, tampering raises a high alert" {
    local root
    root=$(bundle_root)
    # the new bundle is in the baseline (allow a scan period) and raised nothing
    local _ n=0
    for _ in $(seq 1 50); do
        api admin GET "/api/v1/security/fim?scope=bundle"
        n=$(jq --arg p "$root/intruder.py" '[.items[] | select(.path == $p)] | length' \
            <<<"$API_BODY" 2>/dev/null || echo 0)
        [ "$n" = 1 ] && break
        sleep 0.2
    done
    [ "$n" = 1 ]
    api admin GET "/api/v1/security/alerts?limit=200"
    expect_status 200
    [ "$(jq '[.items[] | select(.source == "fim")] | length' <<<"$API_BODY")" = 0 ]
    echo "# tampered" >>"$root/intruder.py"
    run -0 wait_alert ".rule_id == \"fim.modified\" and .service == \"$SVC\""
    [ "$(jq -r .severity <<<"$output")" = high ]
    [ "$(jq -r .team <<<"$output")" = payments ]
    [[ "$(jq -r .summary <<<"$output")" == *"$root/intruder.py"* ]]
    # before and after are in the event
    local id
    id=$(jq -r .id <<<"$output")
    api admin GET "/api/v1/security/alerts/$id"
    expect_status 200
    [ "$(jq -r '.events[0].before.sha256 | length' <<<"$API_BODY")" = 64 ]
    [ "$(jq -r '.events[0].after.sha256 | length' <<<"$API_BODY")" = 64 ]
    # repeated scans keep one alert with one occurrence
    sleep 1
    api admin GET "/api/v1/security/alerts?limit=200"
    [ "$(jq '[.items[] | select(.rule_id == "fim.modified" and .service == "intruder")] | length' <<<"$API_BODY")" = 1 ]
    [ "$(jq '[.items[] | select(.rule_id == "fim.modified" and .service == "intruder")][0].count' <<<"$API_BODY")" = 1 ]
}

@test "fim: a --fim-path file changed raises a medium alert; accepting it is audited" {
    echo "port = 6543" >"$WATCHED/conf.d/db.conf"
    run -0 wait_alert ".rule_id == \"fim.modified\" and (.summary | contains(\"db.conf\"))"
    [ "$(jq -r .severity <<<"$output")" = medium ]
    touch "$WATCHED/conf.d/new.conf"
    run -0 wait_alert ".rule_id == \"fim.added\" and (.summary | contains(\"new.conf\"))"
    api admin POST /api/v1/security/fim/accept -H 'Content-Type: application/json' \
        -d "{\"path\":\"$WATCHED\"}"
    expect_status 200
    api admin POST /api/v1/security/fim/scan
    expect_status 200
    [ "$(jq '[.items[] | select(.scope == "path")] | length' <<<"$API_BODY")" = 0 ]
    run -0 pave audit list -o json
    [[ "$output" == *'"security.fim.accept"'* ]]
    # a path nobody watches is explained
    api admin POST /api/v1/security/fim/accept -H 'Content-Type: application/json' \
        -d '{"path":"/nowhere"}'
    expect_status 404
    [[ "$API_BODY" == *"not watched"* ]]
}

@test "watch: the replica's second listening port and its child process raise built-in alerts" {
    run -0 wait_alert '.rule_id == "builtin.unexpected-process"' 100
    [ "$(jq -r .severity <<<"$output")" = high ]
    [ "$(jq -r .service <<<"$output")" = "$SVC" ]
    [[ "$(jq -r .summary <<<"$output")" == *"sleep"*"(pid "*"sleep 600"* ]]
    run -0 wait_alert '.rule_id == "builtin.new-listening-port"' 100
    [ "$(jq -r .severity <<<"$output")" = high ]
    [ "$(jq -r .service <<<"$output")" = "$SVC" ]
    # the assigned port is not reported, and each finding is one alert
    api admin GET "/api/v1/security/alerts?limit=200"
    [ "$(jq '[.items[] | select(.rule_id == "builtin.new-listening-port")] | length' <<<"$API_BODY")" = 1 ]
    [ "$(jq '[.items[] | select(.rule_id == "builtin.unexpected-process")] | length' <<<"$API_BODY")" = 1 ]
}

@test "fim: the portal's /security page lists the alerts" {
    local jar="$BATS_TEST_TMPDIR/jar"
    curl -fsS -o /dev/null -c "$jar" --data-urlencode "token=$ADMIN_TOKEN" "$PAVE_SERVER/login"
    run -0 curl -sS -o "$BATS_TEST_TMPDIR/page" -w '%{http_code}' -b "$jar" "$PAVE_SERVER/security"
    [ "$output" = 404 ] && skip "the portal's /security page is not there yet"
    [ "$output" = 200 ]
    grep -q "intruder.py" "$BATS_TEST_TMPDIR/page"
    grep -q "builtin.unexpected-process\|Unexpected process" "$BATS_TEST_TMPDIR/page"
}

@test "fim: bad --fim-interval and --fim-path are usage errors" {
    run -2 "$PAVE_BIN" server --data-dir "$E2E_ROOT/x" --fim-interval 5
    [[ "$output" == *"invalid --fim-interval '5'"* ]]
    run -2 "$PAVE_BIN" server --data-dir "$E2E_ROOT/x" --fim-path ""
    [[ "$output" == *"--fim-path takes a file or directory"* ]]
    run -0 "$PAVE_BIN" server --help
    [[ "$output" == *"--fim-path PATH"* ]]
}
