#!/usr/bin/env bats
# Service certificates end to end (docs/deploy.md "Certificates", docs/ingress.md "TLS"): a
# service scaffolded from the http-c template is pushed, built and deployed behind the real
# HAProxy, which also terminates TLS (--ingress-tls) with the certificate the platform CA issued
# for the deployment. Certificates live 30 s here (--cert-lifetime), so a renewal (at two thirds,
# through HAProxy's Runtime API) happens while a loop of HTTPS requests runs and must cost none
# of them; a replica gets its certificate, key and the CA as files for mutual TLS; scaling to 0
# revokes the certificate (the CRL lists it). Everything is on loopback and every wait bounded.

bats_require_minimum_version 1.5.0

SVC=web

setup_file() {
    load helpers
    command -v openssl >/dev/null || {
        echo "# openssl is needed" >&2
        return 1
    }
    e2e_sandbox || return 1
    export E2E_ASAN_BASE="${E2E_ASAN_BASE:+$E2E_ASAN_BASE:}log_path=$E2E_SANLOG/srv"
    export E2E_UBSAN_BASE="${E2E_UBSAN_BASE:+$E2E_UBSAN_BASE:}log_path=$E2E_SANLOG/srv"
    export IPORT TPORT SPORT
    IPORT=$(e2e_free_port) || return 1
    TPORT=$(e2e_free_port) || return 1
    [ "$TPORT" != "$IPORT" ] || TPORT=$(e2e_free_port) || return 1
    SPORT=$((33000 - (RANDOM % 400) * 10))
    e2e_server_launch main "$E2E_ROOT/data" --demo --ingress "127.0.0.1:$IPORT" \
        --ingress-tls "127.0.0.1:$TPORT" --cert-lifetime 30s \
        --service-ports "$SPORT" --stop-workloads || return 1
    export E2E_MAIN_RUN="$SRV_RUN" E2E_DATA="$SRV_DIR" MAIN_PORT="$SRV_PORT"
    export PAVE_SERVER="http://127.0.0.1:$SRV_PORT"
    export PAVE_TOKEN
    PAVE_TOKEN="$(cat "$E2E_DATA/admin.token")" || return 1
    (cd "$E2E_CWD" && "$PAVE_BIN" init "$SVC" --template http-c --team payments) >/dev/null ||
        return 1
    e2e_git_push "$SVC" first || return 1
    curl -fsS -m 5 "$PAVE_SERVER/pki/ca.pem" >"$E2E_ROOT/root.pem" || return 1
}

teardown_file() {
    load helpers
    local rc=0
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

HOST="dev.$SVC.localhost"

# GET https://HOST:TPORT/PATH, verified against the platform's root.
tls_get() {
    curl -fsS -m 5 --cacert "$E2E_ROOT/root.pem" --resolve "$HOST:$TPORT:127.0.0.1" \
        "https://$HOST:$TPORT${1:-/}"
}

# The certificates HAProxy serves for HOST (leaf first), PEM.
served_chain() {
    openssl s_client -connect "127.0.0.1:$TPORT" -servername "$HOST" -showcerts </dev/null \
        2>/dev/null | sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p'
}

# Serial (hex, upper case) of the served leaf.
served_serial() {
    served_chain | openssl x509 -noout -serial 2>/dev/null | sed 's/^serial=//' |
        tr '[:lower:]' '[:upper:]'
}

status_json() {
    "$PAVE_BIN" status "$SVC" --env dev -o json
}

# Pids of the service's processes under this data dir's shims (as deploy.bats does).
replica_pids() {
    local shim
    for shim in $(pgrep -f "pave shim $E2E_DATA/deploy/replicas/$SVC\." || true); do
        descendants "$shim"
    done | while read -r p; do
        [ "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" = "./bin/$SVC " ] && echo "$p"
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

# Waits (at most N*0.2 s) until CMD prints something non-empty and different from NOT.
wait_value() {
    local not=$1 n=$2 v _
    shift 2
    for _ in $(seq 1 "$n"); do
        v=$("$@" 2>/dev/null) || v=""
        if [ -n "$v" ] && [ "$v" != "$not" ]; then
            echo "$v"
            return 0
        fi
        sleep 0.2
    done
    return 1
}

crl_serials() {
    curl -fsS -m 5 "$PAVE_SERVER/pki/crl.pem" | openssl crl -noout -text 2>/dev/null |
        awk '/Serial Number:/ { print toupper($3) }'
}

# ---- tests ----------------------------------------------------------------------------------

@test "tls: a deployed service is served over HTTPS with a certificate of the platform CA" {
    run -0 pave deploy "$SVC" --env dev
    run -0 tls_get /
    [[ "$output" == *"hello from $SVC"* ]]
    # the served chain verifies against the root, for the service's host
    served_chain >"$BATS_TEST_TMPDIR/chain.pem"
    openssl x509 -in "$BATS_TEST_TMPDIR/chain.pem" >"$BATS_TEST_TMPDIR/leaf.pem"
    run -0 openssl verify -CAfile "$E2E_ROOT/root.pem" -untrusted "$BATS_TEST_TMPDIR/chain.pem" \
        -verify_hostname "$HOST" "$BATS_TEST_TMPDIR/leaf.pem"
    run -0 openssl x509 -in "$BATS_TEST_TMPDIR/leaf.pem" -noout -ext subjectAltName
    [[ "$output" == *"DNS:$HOST"* ]]
    [[ "$output" == *"DNS:$SVC.dev.pave.internal"* ]]
    # the file HAProxy loads: cert, chain and key, owner-only
    [ "$(stat -c %a "$E2E_DATA/deploy/certs/$SVC-dev.pem")" = 600 ]
    grep -q "PRIVATE KEY" "$E2E_DATA/deploy/certs/$SVC-dev.pem"
    # an unknown name gets the ingress's own certificate, not the service's
    run -0 sh -c "openssl s_client -connect 127.0.0.1:$TPORT -servername other.localhost \
        </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName"
    [[ "$output" != *"$HOST"* ]]
    # plain HTTP keeps working
    run -0 curl -fsS -m 5 -H "Host: $HOST" "http://127.0.0.1:$IPORT/"
    run -0 status_json
    [ "$(jq -r '.environments[0].tls_url' <<<"$output")" = "https://$HOST:$TPORT/" ]
}

@test "tls: a replica gets its certificate, key and the CA as files, never in its spec" {
    local pid d
    pid=$(replica_pids | head -n 1)
    [ -n "$pid" ]
    d="$BATS_TEST_TMPDIR"
    for f in tls.crt tls.key ca.crt; do
        nsenter -t "$pid" -m cat "/run/secrets/tls/$f" >"$d/$f"
        [ -s "$d/$f" ]
    done
    # the certificate may have expired by now (30 s): its chain is what is checked here
    run -0 openssl verify -no_check_time -CAfile "$d/ca.crt" "$d/tls.crt"
    run -0 openssl pkey -in "$d/tls.key" -noout
    # key and certificate belong together
    [ "$(openssl pkey -in "$d/tls.key" -pubout)" = "$(openssl x509 -in "$d/tls.crt" -noout -pubkey)" ]
    # usable for mutual TLS: client and server authentication
    run -0 openssl x509 -in "$d/tls.crt" -noout -ext extendedKeyUsage
    [[ "$output" == *"TLS Web Client Authentication"* ]]
    [[ "$output" == *"TLS Web Server Authentication"* ]]
    run -0 nsenter -t "$pid" -m stat -f -c %T /run/secrets/tls
    [ "$output" = tmpfs ]
    run -0 sh -c "tr '\\0' '\\n' </proc/$pid/environ"
    [[ "$output" == *"PAVE_TLS_CERT=/run/secrets/tls/tls.crt"* ]]
    [[ "$output" == *"PAVE_TLS_KEY=/run/secrets/tls/tls.key"* ]]
    [[ "$output" == *"PAVE_TLS_CA=/run/secrets/tls/ca.crt"* ]]
    # the key is in no replica file on disk
    run ! grep -rl "PRIVATE KEY" "$E2E_DATA/deploy/replicas"
}

@test "tls: the certificate is renewed before it expires, without a single failed request" {
    local before after master n=0 fails=0
    before=$(served_serial)
    [ -n "$before" ]
    master=$(cat "$E2E_DATA/ingress/master.pid")
    # requests in a loop until the served serial changes (30 s lifetime: due after 20 s)
    (
        while [ ! -e "$BATS_TEST_TMPDIR/stop" ]; do
            if tls_get / >/dev/null 2>&1; then echo ok; else echo fail; fi
            sleep 0.1
        done >"$BATS_TEST_TMPDIR/loop"
    ) 3>&- &
    local loop=$!
    after=$(wait_value "$before" 300 served_serial) || after=""
    sleep 1 # a few more requests with the new certificate
    touch "$BATS_TEST_TMPDIR/stop"
    wait "$loop"
    [ -n "$after" ]
    [ "$after" != "$before" ]
    n=$(grep -c ok "$BATS_TEST_TMPDIR/loop" || true)
    fails=$(grep -c fail "$BATS_TEST_TMPDIR/loop" || true)
    echo "# $n requests, $fails failed" >&3
    [ "$n" -gt 10 ]
    [ "$fails" = 0 ]
    # renewed in place: the same haproxy master
    [ "$(cat "$E2E_DATA/ingress/master.pid")" = "$master" ]
    run -0 tls_get /
}

@test "tls: scaling to 0 revokes the certificate (it is in the CRL)" {
    local serial
    serial=$(served_serial)
    [ -n "$serial" ]
    run -0 pave scale "$SVC" --env dev 0
    local _ found=""
    for _ in $(seq 1 150); do
        if crl_serials | grep -qx "$serial"; then
            found=1
            break
        fi
        sleep 0.2
    done
    [ -n "$found" ]
    # HAProxy no longer serves it; the file is gone
    run -0 wait_value "$serial" 150 served_serial
    [ ! -e "$E2E_DATA/deploy/certs/$SVC-dev.pem" ]
    # nothing of the target stays valid (superseded ones were revoked too, or have expired)
    run -0 sh -c "curl -fsS -m 5 -H 'Authorization: Bearer $PAVE_TOKEN' \
        '$PAVE_SERVER/api/v1/ca/certificates?owner=service:$SVC/dev&state=valid' | jq '.items | length'"
    [ "$output" = 0 ]
}
