#!/usr/bin/env bats
# Deployments end to end, with the real parts: a service scaffolded from the http-c template,
# pushed over git, built and signed by its pipeline, deployed by `pave deploy` as sandboxed
# replicas behind a real HAProxy. The four reliability tests of the deploy controller live here:
# a rolling v1 -> v2 update under wrk with zero errors, kill -9 of a replica, kill -9 of the
# server mid-rollout, and a failing health check rolled back automatically. Everything is on
# loopback, every wait is bounded, and the server runs with --stop-workloads so nothing outlives
# the file (teardown also kills leftovers).

bats_require_minimum_version 1.5.0

SVC=web

setup_file() {
    load helpers
    e2e_sandbox || return 1
    # sanitizer reports of the server and of the replica shims it starts go to files
    export E2E_ASAN_BASE="${E2E_ASAN_BASE:+$E2E_ASAN_BASE:}log_path=$E2E_SANLOG/srv"
    export E2E_UBSAN_BASE="${E2E_UBSAN_BASE:+$E2E_UBSAN_BASE:}log_path=$E2E_SANLOG/srv"
    export IPORT SPORT
    IPORT=$(e2e_free_port) || return 1
    SPORT=$((33000 - (RANDOM % 400) * 10)) # 10 consecutive ports below the ephemeral range
    e2e_server_launch main "$E2E_ROOT/data" --demo --ingress "127.0.0.1:$IPORT" \
        --service-ports "$SPORT" --stop-workloads || return 1
    export E2E_MAIN_RUN="$SRV_RUN" E2E_DATA="$SRV_DIR" MAIN_PORT="$SRV_PORT"
    export PAVE_SERVER="http://127.0.0.1:$SRV_PORT"
    export PAVE_TOKEN ADMIN_TOKEN BOB_TOKEN
    PAVE_TOKEN="$(cat "$E2E_DATA/admin.token")" || return 1
    ADMIN_TOKEN="$PAVE_TOKEN"
    BOB_TOKEN="$(e2e_token_for bob)" || return 1
    # the golden path up to an image: init, git push, pipeline
    (cd "$E2E_CWD" && "$PAVE_BIN" init "$SVC" --template http-c --team payments) >/dev/null ||
        return 1
    git_push "first" || return 1
}

teardown_file() {
    load helpers
    local rc=0
    if [ -n "${E2E_MAIN_RUN:-}" ]; then
        # the current server (maybe a restarted one) stops its workloads on SIGTERM
        local run
        run=$(tail -n 1 "$E2E_ROOT/runs")
        e2e_server_terminate "$run" >/dev/null || rc=1
    fi
    kill_workloads
    # every server this file started (the restarted one too) must have run clean
    while read -r run; do
        e2e_no_sanitizer_output "$run/stderr" || rc=1
    done <"$E2E_ROOT/runs"
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
    # a test may have restarted the server on another API port
    [ -s "$E2E_ROOT/server.url" ] && PAVE_SERVER=$(cat "$E2E_ROOT/server.url") &&
        MAIN_PORT=${PAVE_SERVER##*:} && SRV_PID=$(cat "$E2E_ROOT/server.pid")
    return 0
}

teardown() {
    e2e_check_sanitizer_logs
}

# ---- helpers ------------------------------------------------------------------------------

# Safety net: kill whatever replicas and haproxy the data dir still has.
kill_workloads() {
    pkill -KILL -f "pave shim $E2E_DATA/" 2>/dev/null || true
    local m="$E2E_DATA/ingress/master.pid"
    [ -s "$m" ] && kill -KILL "$(cat "$m")" 2>/dev/null
    return 0
}

# git_push MESSAGE [SERVICE]
git_push() {
    e2e_git_push "${2:-$SVC}" "$1"
}

# One request through the load balancer as the service's dev host; prints the body.
lb_get() {
    curl -fsS -m 5 -H "Host: dev.$SVC.localhost" "http://127.0.0.1:$IPORT${1:-/}"
}

status_json() {
    "$PAVE_BIN" status "$SVC" --env dev -o json
}

# Waits (at most N*0.2 s) until the jq filter over `pave status -o json` is true.
wait_status() {
    local filter=$1 n=${2:-300} _
    for _ in $(seq 1 "$n"); do
        status_json 2>/dev/null | jq -e "$filter" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "# status never matched: $filter" >&2
    status_json >&2
    return 1
}

# Pids of SERVICE's (default: web's) processes running under this data dir's shims.
replica_pids() {
    local svc=${1:-$SVC} shim
    for shim in $(pgrep -f "pave shim $E2E_DATA/deploy/replicas/$svc\." || true); do
        descendants "$shim"
    done | while read -r p; do
        [ "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" = "./bin/$svc " ] && echo "$p"
    done
    return 0
}

descendants() {
    local c
    for c in $(pgrep -P "$1" || true); do
        echo "$c"
        descendants "$c"
    done
}

# haproxy master processes of this data dir (workers are their children)
haproxy_masters() {
    local p n=0 parent
    for p in $(pgrep -f "haproxy -W -S $E2E_DATA/" || true); do
        parent=$(ps -o ppid= -p "$p" | tr -d ' ')
        pgrep -f "haproxy -W -S $E2E_DATA/" | grep -qx "$parent" || n=$((n + 1))
    done
    echo "$n"
}

shim_count() {
    pgrep -fc "pave shim $E2E_DATA/" || true
}

# Sums wrk's error lines of the outputs in DIR; prints "requests errors".
wrk_totals() {
    awk '/requests in/ { req += $1 }
         /Non-2xx or 3xx responses:/ { err += $NF }
         /Socket errors:/ { gsub(",", ""); err += $4 + $6 + $8 + $10 }
         END { print req + 0, err + 0 }' "$1"/wrk.*
}

# ---- tests ----------------------------------------------------------------------------------

@test "deploy: the golden path serves the service through the load balancer" {
    run -0 pave deploy "$SVC" --env dev
    [[ "$output" == *"deployment #1 of $SVC to dev succeeded"* ]]
    run -0 lb_get /
    [[ "$output" == *"\"message\":\"hello from $SVC\""* ]]
    run -0 status_json
    [ "$(jq '.environments[0].replicas | length' <<<"$output")" = 1 ]
    [ "$(jq -r '.environments[0].replicas[0].ready' <<<"$output")" = true ]
    [[ "$(jq -r '.environments[0].replicas[0].isolation' <<<"$output")" == bwrap* ]]
    [ "$(jq -r '.environments[0].desired.state' <<<"$output")" = succeeded ]
    [ "$(jq -r '.environments[0].url' <<<"$output")" = "http://dev.$SVC.localhost:$IPORT/" ]
    # the service-discovery address answers too
    internal=$(jq -r '.environments[0].internal_url' <<<"$output")
    run -0 curl -fsS -m 5 "$internal/healthz"
    # history and audit
    run -0 pave deployments list "$SVC" -o json
    [ "$(jq -r '.[0].kind + " " + .[0].state + " " + .[0].actor' <<<"$output")" = "deploy succeeded admin" ]
    [ "$(jq -r '.[0].image' <<<"$output")" = "$SVC:main" ]
    run -0 pave audit list -o json
    [[ "$output" == *'"deploy.deploy"'* ]]
    run -0 pave status "$SVC"
    [[ "$output" == *"REPLICA"*"$SVC.dev."* ]]
    # the replica's own log line reached the log store through the pipeline, enriched
    local line="" _
    for _ in $(seq 1 100); do
        line=$(pave logs "$SVC" --env dev -o json 2>/dev/null | jq -c 'select(.body == "listening")' | head -n 1)
        [ -n "$line" ] && break
        sleep 0.2
    done
    [ -n "$line" ]
    [ "$(jq -r '.resource.team' <<<"$line")" = payments ]
    [ "$(jq -r '.resource["deployment.environment"]' <<<"$line")" = dev ]
    [[ "$(jq -r '.resource["service.instance.id"]' <<<"$line")" == "$SVC.dev."* ]]
    [ -n "$(jq -r '.resource["service.version"] // empty' <<<"$line")" ]
    [ "$(jq -r '.severity' <<<"$line")" = INFO ]
}

@test "deploy: requests need a token, another team's token is refused, bad input is explained" {
    local r
    for r in "POST /api/v1/services/$SVC/deployments" "POST /api/v1/services/$SVC/rollback" \
        "POST /api/v1/services/$SVC/scale" "GET /api/v1/services/$SVC/status" \
        "GET /api/v1/services/$SVC/deployments" "GET /api/v1/deployments" \
        "GET /api/v1/deployments/1"; do
        api none ${r% *} "${r#* }" -d '{"env":"dev"}'
        expect_status 401
    done
    api bob POST "/api/v1/services/$SVC/deployments" -d '{"env":"dev"}'
    expect_status 403
    [[ "$API_BODY" == *"only members of team 'payments'"* ]]
    api bob POST "/api/v1/services/$SVC/scale" -d '{"env":"dev","replicas":5}'
    expect_status 403
    run -1 pave deploy "$SVC" --env nowhere
    [[ "$output" == *"unknown environment 'nowhere'"* ]]
    run -1 pave deploy "$SVC" --env dev --image no-such-tag
    [[ "$output" == *"no image 'no-such-tag'"* ]]
    run -2 pave deploy "$SVC"
    [[ "$output" == *"needs --env"* ]]
    run -2 pave scale "$SVC" --env dev many
    run -1 pave status ledger --env dev
    [[ "$output" == *"not deployed"* ]]
    run -0 pave deploy --help
    [[ "$output" == *"--health-deadline"* ]]
    # nothing of that changed what runs
    [ "$(status_json | jq '.environments[0].replicas | length')" = 1 ]
}

@test "deploy: secrets arrive as files on a tmpfs, dependencies as <NAME>_URL, neither in ps or on disk" {
    local secret="s3cr3t-$RANDOM$RANDOM"
    printf '%s' "$secret" | pave secret set "$SVC" DB_PASSWORD >/dev/null
    sed -i 's/^  replicas: 1$/  replicas: 1\n  dependencies: [{ service: ledger }]/' "$SVC/pave.yaml"
    sed -i 's/^    env: { LOG_LEVEL: info,/    secrets: [DB_PASSWORD]\n    env: { LOG_LEVEL: info,/' "$SVC/pave.yaml"
    run -0 pave catalog apply -f "$SVC/pave.yaml"
    run -0 pave deploy "$SVC" --env dev
    run -0 lb_get /
    pid=$(replica_pids | head -n 1)
    [ -n "$pid" ]
    # the file, read inside the replica's mount namespace
    run -0 nsenter -t "$pid" -m cat /run/secrets/DB_PASSWORD
    [ "$output" = "$secret" ]
    run -0 nsenter -t "$pid" -m stat -f -c %T /run/secrets
    [ "$output" = tmpfs ]
    # the manifest's memory limit (64Mi) is the replica's cgroup limit (v1 or v2)
    local cg limit
    if cg=$(sed -n 's/^[0-9]*:memory:\(.*\)$/\1/p' "/proc/$pid/cgroup") && [ -n "$cg" ]; then
        limit=$(cat "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes")
    else
        cg=$(sed -n 's/^0::\(.*\)$/\1/p' "/proc/$pid/cgroup")
        limit=$(cat "/sys/fs/cgroup$cg/memory.max")
    fi
    [ "$limit" = 67108864 ]
    # the environment has the dependency's URL and no secret
    env_of=$(tr '\0' '\n' <"/proc/$pid/environ")
    [[ "$env_of" == *"LEDGER_URL=http://127.0.0.1:"* ]]
    [[ "$env_of" == *"SECRETS_DIR=/run/secrets"* ]]
    [[ "$env_of" != *"$secret"* ]]
    # no process's command line and no file under the data dir holds it
    printf '%s\n' "$secret" >"$BATS_TEST_TMPDIR/pattern"
    run bash -c "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n' | grep -cF -f '$BATS_TEST_TMPDIR/pattern'"
    [ "$output" = 0 ]
    run grep -rl -- "$secret" "$E2E_DATA"
    [ "$status" = 1 ]
    run grep -l -- "$secret" "$E2E_MAIN_RUN/stderr" "$E2E_MAIN_RUN/stdout"
    [ "$status" = 1 ]
}

@test "deploy: a strict service answers its declared callers only" {
    run -0 pave init backend --template http-c --team payments
    sed -i 's/^  replicas: 1$/  replicas: 1\n  strict: true/' backend/pave.yaml
    run -0 pave catalog apply -f backend/pave.yaml
    git_push first backend
    run -0 pave deploy backend --env dev
    # web declares backend: it gets an address of its own that reaches it
    sed -i 's/dependencies: \[{ service: ledger }\]/dependencies: [{ service: ledger }, { service: backend }]/' "$SVC/pave.yaml"
    run -0 pave catalog apply -f "$SVC/pave.yaml"
    run -0 pave deploy "$SVC" --env dev
    pid=$(replica_pids | head -n 1)
    url=$(tr '\0' '\n' <"/proc/$pid/environ" | sed -n 's/^BACKEND_URL=//p')
    [ -n "$url" ]
    run -0 curl -fsS -m 5 "$url/"
    [[ "$output" == *'"message":"hello from backend"'* ]]
    # anyone else, through backend's shared discovery address, is refused
    internal=$("$PAVE_BIN" status backend --env dev -o json | jq -r '.environments[0].internal_url')
    run -0 curl -sS -m 5 -o /dev/null -w '%{http_code}' "$internal/"
    [ "$output" = 403 ]
    run -0 pave scale backend --env dev 0
}

@test "reliability: rolling v1 -> v2 under wrk through HAProxy: zero non-2xx, zero socket errors" {
    run -0 pave scale "$SVC" --env dev 2
    wait_status '[.environments[0].replicas[] | select(.ready)] | length == 2'
    sed -i "s/hello from/hi from/" "$SVC/src/main.c" "$SVC/tests/smoke.sh"
    git_push v2
    mkdir -p "$BATS_TEST_TMPDIR/wrk"
    pave deploy "$SVC" --env dev --image main >"$BATS_TEST_TMPDIR/deploy.out" 2>&1 &
    deployer=$!
    # wrk in 2-second rounds until the rollout has ended, then one more round
    local i=0 done=0
    while [ $i -lt 60 ]; do
        i=$((i + 1))
        wrk -t1 -c4 -d2s -H "Host: dev.$SVC.localhost" "http://127.0.0.1:$IPORT/" \
            >"$BATS_TEST_TMPDIR/wrk/wrk.$i" 2>&1
        [ $done = 1 ] && break
        kill -0 "$deployer" 2>/dev/null || done=1
    done
    wait "$deployer"
    cat "$BATS_TEST_TMPDIR/deploy.out"
    grep -q "succeeded" "$BATS_TEST_TMPDIR/deploy.out"
    read -r requests errors < <(wrk_totals "$BATS_TEST_TMPDIR/wrk")
    echo "wrk: $requests requests, $errors errors over $i rounds"
    [ "$requests" -gt 0 ]
    [ "$errors" = 0 ]
    run -0 lb_get /
    [[ "$output" == *"hi from $SVC"* ]]
    [ "$(status_json | jq '[.environments[0].replicas[] | select(.ready)] | length')" = 2 ]
}

@test "reliability: kill -9 of a replica: it is restarted and traffic continues" {
    wait_status '[.environments[0].replicas[] | select(.ready)] | length == 2'
    before=$(status_json | jq '[.environments[0].replicas[].restarts] | add')
    pid=$(replica_pids | head -n 1)
    [ -n "$pid" ]
    kill -KILL "$pid"
    # the other replica serves while the killed one is restarted (and HAProxy retries the
    # requests that met the dead one)
    local ok=0 n
    for n in $(seq 1 50); do
        lb_get /healthz >/dev/null && ok=$((ok + 1))
    done
    [ "$ok" = 50 ]
    wait_status "([.environments[0].replicas[].restarts] | add) > $before and ([.environments[0].replicas[] | select(.ready)] | length == 2)"
    run -0 lb_get /
}

@test "reliability: a version whose health check fails is rolled back; the old one never stops serving" {
    stable=$(status_json | jq -r '.environments[0].desired.id')
    # the new version listens on another address than the one HAProxy checks
    sed -i 's/^    env: { LOG_LEVEL: info,/    env: { HOST: 127.0.0.2, LOG_LEVEL: info,/' "$SVC/pave.yaml"
    run -0 pave catalog apply -f "$SVC/pave.yaml"
    (
        fails=0
        while [ ! -e "$BATS_TEST_TMPDIR/stop" ]; do
            lb_get /healthz >/dev/null 2>&1 || fails=$((fails + 1))
            sleep 0.05
        done
        echo "$fails" >"$BATS_TEST_TMPDIR/fails"
    ) 3>&- &
    prober=$!
    run -1 pave deploy "$SVC" --env dev --health-deadline 4s
    touch "$BATS_TEST_TMPDIR/stop"
    wait "$prober"
    [[ "$output" == *"rolled-back"*"did not pass its health check within 4s"*"rolled back to deployment #$stable"* ]]
    [ "$(cat "$BATS_TEST_TMPDIR/fails")" = 0 ]
    run -0 pave deployments list "$SVC" -o json
    [ "$(jq -r '.[0].state' <<<"$output")" = rolled-back ]
    wait_status "(.environments[0].desired.id == $stable) and ([.environments[0].replicas[] | select(.ready)] | length == 2) and (.environments[0].replicas | length == 2)"
    run -0 lb_get /
    [[ "$output" == *"hi from $SVC"* ]]
    # put the manifest back as it was
    sed -i 's/    env: { HOST: 127.0.0.2, /    env: { /' "$SVC/pave.yaml"
    run -0 pave catalog apply -f "$SVC/pave.yaml"
}

@test "reliability: kill -9 of the server mid-rollout: after restart one consistent state, no duplicates" {
    sed -i 's/^    env: { LOG_LEVEL: info,/    env: { GREETING: v3, LOG_LEVEL: info,/' "$SVC/pave.yaml"
    run -0 pave catalog apply -f "$SVC/pave.yaml"
    haproxy_before=$(cat "$E2E_DATA/ingress/master.pid")
    run -0 pave deploy "$SVC" --env dev --no-wait -o json
    id=$(jq -r .id <<<"$output")
    rev=$(jq -r .revision <<<"$output")
    # mid-rollout: a replica of the new revision exists, old ones still run
    wait_status "[.environments[0].replicas[] | select(.revision == \"$rev\")] | length >= 1"
    kill -KILL "$SRV_PID"
    # the workloads keep serving without the server
    run -0 lb_get /healthz
    [ "$(shim_count)" -ge 2 ]
    # a new server on the same data dir and ports adopts them
    e2e_server_launch restarted "$E2E_DATA" --ingress "127.0.0.1:$IPORT" \
        --service-ports "$SPORT" --stop-workloads
    export PAVE_SERVER="http://127.0.0.1:$SRV_PORT" MAIN_PORT="$SRV_PORT"
    echo "$PAVE_SERVER" >"$E2E_ROOT/server.url"
    echo "$SRV_PID" >"$E2E_ROOT/server.pid"
    local state _
    for _ in $(seq 1 300); do
        state=$(pave deployments show "$id" -o json | jq -r .state)
        [ "$state" = succeeded ] && break
        sleep 0.2
    done
    if [ "$state" != succeeded ]; then
        pave deployments show "$id"
        status_json
        grep -v '"INFO"' "$SRV_ERR" | tail -n 20
        return 1
    fi
    [ "$(cat "$E2E_DATA/ingress/master.pid")" = "$haproxy_before" ]
    [ "$(haproxy_masters)" = 1 ]
    wait_status "(.environments[0].replicas | length == 2) and ([.environments[0].replicas[] | select(.ready and .revision == \"$rev\")] | length == 2)"
    [ "$(shim_count)" = 2 ]
    [ "$(ls "$E2E_DATA/deploy/replicas" | wc -l)" = 2 ]
    [ "$(replica_pids | wc -l)" = 2 ]
    run -0 lb_get /
}

@test "deploy: rollback goes back to the previous revision, scale to 0 stops every replica" {
    current=$(status_json | jq -r '.environments[0].desired.revision')
    run -0 pave rollback "$SVC" --env dev
    [[ "$output" == *"succeeded"* ]]
    now=$(status_json | jq -r '.environments[0].desired.revision')
    [ "$now" != "$current" ]
    [ "$(status_json | jq -r '.environments[0].desired.kind')" = rollback ]
    run -0 lb_get /
    run -0 pave scale "$SVC" --env dev 0
    wait_status '.environments[0].replicas | length == 0'
    [ "$(shim_count)" = 0 ]
    run -0 pave deployments list -o json
    [ "$(jq -r '[.[].kind] | unique | join(",")' <<<"$output")" = "deploy,rollback,scale" ]
}

@test "guard rails: an enforced rule blocks deploy, catalog apply and packaging; an approved exception lets a deploy through until it expires" {
    export ALICE_TOKEN
    ALICE_TOKEN="$(e2e_token_for alice)"
    cat >"$BATS_TEST_TMPDIR/policy.yaml" <<YAML
apiVersion: pave/v1
kind: Policy
metadata: {name: e2e-gates}
rules:
  - id: dev-needs-three
    kind: field
    description: services in dev run at least three replicas
    severity: high
    mode: enforce
    rationale: e2e
    remediation: set spec.replicas to 3 or more
    scope: {envs: [dev], gates: [deploy]}
    all: [{path: spec.replicas, op: ">=", value: 3}]
  - id: owner-tag
    kind: required-tags
    description: every service names its owner
    severity: medium
    mode: enforce
    rationale: e2e
    remediation: add metadata.tags.owner
    scope: {gates: [catalog, pipeline]}
    tags: {owner: {required: true}}
YAML
    run -0 pave policy apply -f "$BATS_TEST_TMPDIR/policy.yaml"
    # deploy: blocked with the rule, its remediation and the decision
    run -1 pave deploy "$SVC" --env dev
    [[ "$output" == *"blocked by policy"*"dev-needs-three"*"set spec.replicas to 3 or more"* ]]
    decision=$(grep -o 'decision #[0-9]*' <<<"$output" | head -n 1 | tr -dc 0-9)
    run -0 pave policy decisions show "$decision" -o json
    [[ "$output" == *"dev-needs-three"* ]]
    # catalog apply of a change without the owner tag: refused, nothing stored
    sed -i 's/^  tier: 3$/  tier: 2/' "$SVC/pave.yaml"
    run -1 pave catalog apply -f "$SVC/pave.yaml"
    [[ "$output" == *"owner-tag"* ]]
    [ "$(pave catalog show "$SVC" -o json | jq -r '.tier // .service.tier')" = 3 ]
    sed -i 's/^  tier: 2$/  tier: 3/' "$SVC/pave.yaml"
    # an exception: alice asks, alice cannot approve it herself, an admin approves for 6 s
    run -0 env PAVE_TOKEN="$ALICE_TOKEN" "$PAVE_BIN" policy exceptions request "$SVC" dev-needs-three \
        --justification "load test next week" --expires 6s -o json
    xid=$(jq -r '.id' <<<"$output")
    run -1 env PAVE_TOKEN="$ALICE_TOKEN" "$PAVE_BIN" policy exceptions approve "$xid"
    run -0 pave policy exceptions approve "$xid" --comment ok
    run -0 pave deploy "$SVC" --env dev
    [[ "$output" == *"succeeded"* ]]
    # expired: the same deploy is blocked again
    local _
    for _ in $(seq 1 100); do
        [ "$(pave policy exceptions list --state active -o json | jq 'length')" = 0 ] && break
        sleep 0.2
    done
    run -1 pave deploy "$SVC" --env dev --replicas 1
    [[ "$output" == *"dev-needs-three"* ]]
    run -0 pave audit list -o json
    [[ "$output" == *'"policy.block"'* ]]
    [[ "$output" == *'"exception.approve"'* ]]
    run -0 pave policy delete e2e-gates
    run -0 pave deploy "$SVC" --env dev --replicas 1
}
