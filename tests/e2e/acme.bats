#!/usr/bin/env bats
# The ACME server under /acme (RFC 8555) with real certbot: obtain a certificate in standalone
# mode (http-01 on a high loopback port), verify the chain against the platform root, renew it,
# revoke it and find its serial in the CRL. Then bad input through a small scripted client
# (tests/e2e/fixtures/acme_client.py): malformed JWS, bad and replayed nonces, a key that is not
# the account's, a CSR with a name outside the order, an oversized body, a failed validation —
# each answered with the right problem document, and nothing issued.
#
# certbot talks plain HTTP to the directory (http://127.0.0.1:PORT/acme/directory): certbot 2.x
# does not insist on https for --server, so no TLS front is needed.

load helpers

setup_file() {
    command -v certbot >/dev/null || skip "certbot is not installed (apt-get install -y certbot)"
    e2e_sandbox || return 1
    export ACME_HTTP_PORT
    ACME_HTTP_PORT=$(e2e_free_port)
    "$PAVE_BIN" ca init --data-dir "$E2E_ROOT/data" >"$E2E_ROOT/ca-init.out" 2>&1 || {
        cat "$E2E_ROOT/ca-init.out" >&2
        return 1
    }
    e2e_server_launch main "$E2E_ROOT/data" --demo --acme-http-port "$ACME_HTTP_PORT" || return 1
    export E2E_MAIN_RUN="$SRV_RUN" E2E_DATA="$SRV_DIR"
    export PAVE_SERVER="http://127.0.0.1:$SRV_PORT"
    export ACME_DIR="$PAVE_SERVER/acme/directory"
    export CB="$E2E_ROOT/certbot"
    mkdir -p "$CB"
    curl -fsS "$PAVE_SERVER/pki/ca.pem" >"$E2E_ROOT/root.pem"
}

teardown_file() {
    e2e_server_stop
}

teardown() {
    e2e_kill_leftovers
}

certbot_run() {
    certbot "$@" --config-dir "$CB/conf" --work-dir "$CB/work" --logs-dir "$CB/logs" \
        --non-interactive
}

client() {
    python3 "$E2E_DIR/fixtures/acme_client.py" probe "$1" --dir "$ACME_DIR" \
        --http-port "$ACME_HTTP_PORT"
}

issued_count() {
    curl -fsS -H "Authorization: Bearer $(cat "$E2E_DATA/admin.token")" \
        "$PAVE_SERVER/api/v1/ca/certificates?owner=acme:" | jq -r '.total // (.items | length)'
}

@test "the directory and new-nonce need no token and carry Replay-Nonce" {
    run curl -fsS -D "$BATS_TEST_TMPDIR/h" "$ACME_DIR"
    [ "$status" -eq 0 ]
    [ "$(jq -r .newAccount <<<"$output")" = "$PAVE_SERVER/acme/new-account" ]
    grep -qi '^Replay-Nonce: ' "$BATS_TEST_TMPDIR/h"
    run curl -sS -o /dev/null -w '%{http_code}' -I "$PAVE_SERVER/acme/new-nonce"
    [ "$output" = 200 ]
    run curl -sS -o /dev/null -w '%{http_code}' "$PAVE_SERVER/acme/new-nonce"
    [ "$output" = 204 ]
}

@test "certbot obtains a certificate that verifies against the platform root" {
    run certbot_run certonly --standalone --http-01-port "$ACME_HTTP_PORT" \
        --http-01-address 127.0.0.1 --server "$ACME_DIR" -d test1.localhost \
        --register-unsafely-without-email --agree-tos
    echo "$output"
    [ "$status" -eq 0 ]
    live="$CB/conf/live/test1.localhost"
    run openssl verify -CAfile "$E2E_ROOT/root.pem" -untrusted "$live/chain.pem" "$live/cert.pem"
    [ "$status" -eq 0 ]
    openssl x509 -in "$live/cert.pem" -noout -ext subjectAltName | grep -q 'DNS:test1.localhost'
}

@test "certbot renew --force-renewal issues a new certificate" {
    live="$CB/conf/live/test1.localhost"
    before=$(openssl x509 -in "$live/cert.pem" -noout -serial)
    run certbot_run renew --force-renewal --no-random-sleep-on-renew
    echo "$output"
    [ "$status" -eq 0 ]
    after=$(openssl x509 -in "$live/cert.pem" -noout -serial)
    [ "$before" != "$after" ]
    openssl verify -CAfile "$E2E_ROOT/root.pem" -untrusted "$live/chain.pem" "$live/cert.pem"
}

@test "certbot revoke revokes and the serial shows in the CRL" {
    live="$CB/conf/live/test1.localhost"
    serial=$(openssl x509 -in "$live/cert.pem" -noout -serial | cut -d= -f2)
    run certbot_run revoke --cert-path "$live/cert.pem" --server "$ACME_DIR" \
        --no-delete-after-revoke
    echo "$output"
    [ "$status" -eq 0 ]
    curl -fsS "$PAVE_SERVER/pki/crl.pem" | openssl crl -noout -text | grep -qi "Serial Number: *$serial"
    # a second revocation is refused: alreadyRevoked
    run certbot_run revoke --cert-path "$live/cert.pem" --server "$ACME_DIR" \
        --no-delete-after-revoke
    [ "$status" -ne 0 ]
    grep -q alreadyRevoked "$CB/logs/letsencrypt.log"
}

@test "an RSA (RS256) account gets a certificate too" {
    run client rsa
    echo "$output"
    [ "$(jq -r .issued <<<"$output")" = true ]
}

# CASE STATUS TYPE
expect_problem() {
    run client "$1"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(jq -r .status <<<"$output")" = "$2" ]
    [ "$(jq -r .type <<<"$output")" = "$3" ]
    [ "$(jq -r .content_type <<<"$output")" = "application/problem+json" ]
    [ "$(jq -r .nonce <<<"$output")" = true ]
    [ "$(jq -r .issued <<<"$output")" = false ]
}

@test "bad input gets RFC 8555 problem documents and nothing is issued" {
    before=$(issued_count)
    expect_problem malformed 400 malformed
    expect_problem badsig 400 malformed
    expect_problem badalg 400 badSignatureAlgorithm
    expect_problem badnonce 400 badNonce
    expect_problem replay 400 badNonce
    expect_problem no-account 400 accountDoesNotExist
    expect_problem wrongkey 400 malformed
    expect_problem wrongurl 401 unauthorized
    expect_problem policy 400 rejectedIdentifier
    expect_problem not-ready 403 orderNotReady
    expect_problem csr-mismatch 400 badCSR
    expect_problem oversize 413 malformed
    [ "$(issued_count)" = "$before" ]
}

@test "a wrong key authorization fails the challenge, the authorization and the order" {
    run client failed-validation
    echo "$output"
    [ "$(jq -r .challenge <<<"$output")" = invalid ]
    [ "$(jq -r .authz <<<"$output")" = invalid ]
    [ "$(jq -r .order <<<"$output")" = invalid ]
    [ "$(jq -r .type <<<"$output")" = incorrectResponse ]
}

@test "keyChange moves the account to a new key; the old key no longer works" {
    run client keychange
    echo "$output"
    [ "$(jq -r .status <<<"$output")" = 200 ]
    [ "$(jq -r .new_key_order <<<"$output")" = 201 ]
    [ "$(jq -r .old_key_order <<<"$output")" = 400 ]
    [ "$(jq -r .old_type <<<"$output")" = malformed ]
}

@test "ACME needs no platform token, and GET on resources is refused" {
    run curl -sS -o /dev/null -w '%{http_code}' "$PAVE_SERVER/acme/order/abc"
    [ "$output" = 405 ]
    run curl -sS -X POST -H 'Content-Type: application/json' -d '{}' "$PAVE_SERVER/acme/new-order"
    [ "$(jq -r .type <<<"$output")" = "urn:ietf:params:acme:error:malformed" ]
}
