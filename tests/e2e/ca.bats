#!/usr/bin/env bats
# The internal CA through the real CLI, HTTP and the openssl tools: a demo server creates its CA
# on first start; certificates it issues verify with `openssl verify`, revocations show in the
# public CRL (no token needed), and an mTLS handshake between openssl s_server and s_client works
# with its certificates and fails with a client certificate from another CA. Loopback only; every
# wait is bounded.

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
    [ -z "${SSL_PID:-}" ] || kill "$SSL_PID" 2>/dev/null || true
    e2e_check_sanitizer_logs
}

# The second PEM block of FILE (the intermediate in chain.pem).
second_cert() {
    awk '/BEGIN CERTIFICATE/{n++} n==2' "$1"
}

@test "the demo server has a CA: ca.pem, chain.pem and the CRL are public" {
    [ -f "$E2E_DATA/pki/root.pem" ]
    [ "$(stat -c %a "$E2E_DATA/pki/intermediate.key")" = 600 ]
    grep -q 'BEGIN ENCRYPTED PRIVATE KEY' "$E2E_DATA/pki/intermediate.key"
    ! grep -q 'BEGIN PRIVATE KEY' "$E2E_DATA/pki/intermediate.key"
    run -0 curl -fsS "$PAVE_SERVER/pki/ca.pem"
    [[ "$output" == *"BEGIN CERTIFICATE"* ]]
    run -0 curl -fsS -o crl.pem "$PAVE_SERVER/pki/crl.pem"
    run -0 openssl crl -in crl.pem -noout -text
    [[ "$output" == *"Paved Demo Intermediate CA"* ]]
    run -0 curl -fsS -o crl.der "$PAVE_SERVER/pki/crl.der"
    run -0 openssl crl -inform DER -in crl.der -noout
    # the inventory is not public
    run curl -s -o /dev/null -w '%{http_code}' "$PAVE_SERVER/api/v1/ca/certificates"
    [ "$output" = 401 ]
}

@test "pave ca issue writes a certificate openssl verify accepts" {
    mkdir -p web
    run -0 --separate-stderr pave ca issue --dns web.example.test --dns www.example.test \
        --ip 127.0.0.1 --lifetime 1h --out-dir web
    serial=$output
    [ "$(stat -c %a web/key.pem)" = 600 ]
    second_cert web/chain.pem >web/intermediate.pem
    run -0 openssl verify -CAfile web/ca.pem -untrusted web/intermediate.pem web/cert.pem
    [[ "$output" == *"web/cert.pem: OK"* ]]
    run -0 openssl x509 -in web/cert.pem -noout -ext subjectAltName,extendedKeyUsage,basicConstraints
    [[ "$output" == *"DNS:web.example.test"* ]]
    [[ "$output" == *"IP Address:127.0.0.1"* ]]
    [[ "$output" == *"TLS Web Server Authentication"* ]]
    [[ "$output" == *"CA:FALSE"* ]]
    run -0 openssl x509 -in web/cert.pem -noout -serial
    [ "$output" = "serial=$serial" ]
    run -0 pave ca list -o json
    jq -e --arg s "$serial" '.[] | select(.serial == $s and .state == "valid")' <<<"$output"
    run -0 pave ca list --expiring 2h -o json
    jq -e --arg s "$serial" 'map(.serial) | index($s) != null' <<<"$output"
    run -0 pave ca show "$serial"
    [[ "$output" == *"BEGIN CERTIFICATE"* ]]
}

@test "issuing needs an admin and sane input" {
    run -1 env PAVE_TOKEN="$ALICE_TOKEN" "$PAVE_BIN" ca issue --dns x.example.test --out-dir .
    [[ "$output" == *"only admins"* ]]
    run -2 pave ca issue --out-dir .
    run -1 pave ca issue --dns 'bad name' --out-dir .
    run -1 pave ca issue --dns x.example.test --profile nonsense --out-dir .
}

@test "a revoked serial is listed in the CRL fetched without a token" {
    mkdir -p rev
    run -0 --separate-stderr pave ca issue --dns revoked.example.test --out-dir rev
    serial=$output
    run -0 pave ca revoke "$serial" --reason keyCompromise
    run -1 pave ca revoke "$serial"
    [[ "$output" == *"already revoked"* ]]
    run -0 env -u PAVE_TOKEN curl -fsS -o crl.pem "$PAVE_SERVER/pki/crl.pem"
    run -0 openssl crl -in crl.pem -noout -text
    [[ "$output" == *"Serial Number: $serial"* ]]
    [[ "$output" == *"Key Compromise"* ]]
    # the CRL verifies against the intermediate and makes verification fail
    second_cert rev/chain.pem >rev/intermediate.pem
    run -0 openssl crl -in crl.pem -noout -CAfile rev/intermediate.pem
    cat rev/ca.pem rev/intermediate.pem >rev/bundle.pem
    run -2 openssl verify -crl_check -CRLfile crl.pem -CAfile rev/bundle.pem rev/cert.pem
    [[ "$output" == *"revoked"* ]]
    run -0 pave ca crl -o der
    run -0 pave ca list --state revoked -o json
    jq -e --arg s "$serial" 'map(.serial) | index($s) != null' <<<"$output"
}

# Starts openssl s_server with srv/ requiring a client certificate from ca.pem; sets SSL_PORT.
start_s_server() {
    SSL_PORT=$(e2e_free_port)
    timeout 30 openssl s_server -tls1_2 -accept "127.0.0.1:$SSL_PORT" -naccept 1 \
        -cert srv/cert.pem -key srv/key.pem -cert_chain srv/intermediate.pem \
        -CAfile srv/bundle.pem -Verify 2 -verify_return_error -www \
        >s_server.out 2>&1 </dev/null &
    SSL_PID=$!
    # s_server prints ACCEPT once it listens (probing the port would use up -naccept)
    local _
    for _ in $(seq 1 100); do
        grep -q ACCEPT s_server.out 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

@test "mTLS between certificates of the CA works, a foreign client certificate fails" {
    mkdir -p srv cli other
    run -0 pave ca issue --dns localhost --ip 127.0.0.1 --profile server+client --out-dir srv
    run -0 pave ca issue --dns client.example.test --profile client --out-dir cli
    second_cert srv/chain.pem >srv/intermediate.pem
    second_cert cli/chain.pem >cli/intermediate.pem
    cat srv/ca.pem srv/intermediate.pem >srv/bundle.pem

    start_s_server
    run -0 timeout 20 openssl s_client -tls1_2 -connect "127.0.0.1:$SSL_PORT" \
        -cert cli/cert.pem -key cli/key.pem -cert_chain cli/intermediate.pem \
        -CAfile srv/ca.pem -verify_return_error -verify_hostname localhost -ign_eof \
        <<<$'GET / HTTP/1.0\r\n\r'
    [[ "$output" == *"Verify return code: 0 (ok)"* ]]
    # the server saw and accepted the client certificate (its status page names it)
    [[ "$output" == *"HTTP/1.0 200 ok"* ]]
    wait "$SSL_PID" || true
    SSL_PID=

    # a client certificate from another CA is refused
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
        -subj /CN=other-ca -keyout other/ca.key -out other/ca.pem 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj /CN=intruder -keyout other/key.pem -out other/req.pem 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >other/ext.cnf
    openssl x509 -req -in other/req.pem -CA other/ca.pem -CAkey other/ca.key -days 1 \
        -extfile other/ext.cnf -out other/cert.pem 2>/dev/null
    start_s_server
    run timeout 20 openssl s_client -tls1_2 -connect "127.0.0.1:$SSL_PORT" \
        -cert other/cert.pem -key other/key.pem -CAfile srv/ca.pem -verify_return_error \
        -ign_eof <<<$'GET / HTTP/1.0\r\n\r'
    [ "$status" != 0 ]
    [[ "$output" != *"HTTP/1.0 200 ok"* ]]
    wait "$SSL_PID" || true
    grep -q 'unable to get local issuer certificate\|certificate verify failed' s_server.out
    SSL_PID=
}

@test "pave ca init refuses a second CA and export-root-key removes the root key" {
    run -1 pave ca init --data-dir "$E2E_DATA"
    [[ "$output" == *"already exists"* ]]
    run -0 pave ca export-root-key --data-dir "$E2E_DATA" --out root-export.pem --remove
    [[ "$output" == *"Passphrase (shown once): "* ]]
    pass=$(sed -n 's/^Passphrase (shown once): //p' <<<"$output")
    [ "$(stat -c %a root-export.pem)" = 600 ]
    [ ! -e "$E2E_DATA/pki/root.key" ]
    run -0 openssl pkey -in root-export.pem -passin "pass:$pass" -noout
    # issuance continues with the intermediate
    mkdir -p after
    run -0 pave ca issue --dns after.example.test --out-dir after
    second_cert after/chain.pem >after/intermediate.pem
    run -0 openssl verify -CAfile after/ca.pem -untrusted after/intermediate.pem after/cert.pem
}
