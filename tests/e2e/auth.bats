#!/usr/bin/env bats
# Authentication and authorization over the HTTP API, and where secrets must never show up.

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
    e2e_check_sanitizer_logs
}

FIX="$BATS_TEST_DIRNAME/fixtures"

# Every mutating route, with concrete path parameters and a well-formed body, so the only
# reason for a refusal is the credential.
# Format: METHOD PATH BODY ('-' = none; '@file' = a fixture)
mutating_routes() {
    cat <<'EOF'
POST /api/v1/services @payments-new.yaml
PUT /api/v1/services/payments-api @payments-api.yaml
DELETE /api/v1/services/payments-api -
POST /api/v1/teams {"name":"intruders"}
DELETE /api/v1/teams/identity -
POST /api/v1/teams/payments/members {"user":"bob"}
DELETE /api/v1/teams/payments/members/alice -
POST /api/v1/users {"name":"mallory"}
POST /api/v1/environments {"name":"qa"}
POST /api/v1/tokens {"name":"x","user":"admin"}
DELETE /api/v1/tokens/tok_000000000000 -
EOF
}

read_routes() {
    cat <<'EOF'
GET /api/v1/whoami
GET /api/v1/services
GET /api/v1/services/payments-api
GET /api/v1/teams
GET /api/v1/teams/payments
GET /api/v1/users
GET /api/v1/environments
GET /api/v1/tokens
GET /api/v1/audit
EOF
}

# call ROLE METHOD PATH BODY
call_route() {
    local role=$1 method=$2 path=$3 body=$4
    case "$body" in
    -) api "$role" "$method" "$path" ;;
    @*) api "$role" "$method" "$path" -H 'Content-Type: application/yaml' \
        --data-binary "@$FIX/${body#@}" ;;
    *) api "$role" "$method" "$path" -H 'Content-Type: application/json' --data-binary "$body" ;;
    esac
}

# The organization is exactly the demo one: 3 services, 2 teams, 3 users, 3 environments.
assert_demo_intact() {
    api admin GET /api/v1/services
    expect_status 200
    [ "$(jq -r '[.items[].name] | sort | join(",")' <<<"$API_BODY")" = "auth-service,ledger,payments-api" ]
    [ "$(jq -r '.items[] | select(.name=="payments-api") | .revision' <<<"$API_BODY")" = 1 ]
    api admin GET /api/v1/teams
    [ "$(jq -r '[.items[].name] | sort | join(",")' <<<"$API_BODY")" = "identity,payments" ]
    api admin GET /api/v1/users
    [ "$(jq -r '[.items[].name] | sort | join(",")' <<<"$API_BODY")" = "admin,alice,bob" ]
    [ "$(jq -r '.items[] | select(.name=="alice") | .teams | join(",")' <<<"$API_BODY")" = payments ]
    [ "$(jq -r '.items[] | select(.name=="bob") | .teams | join(",")' <<<"$API_BODY")" = identity ]
    api admin GET /api/v1/environments
    [ "$(jq -r '[.items[].name] | join(",")' <<<"$API_BODY")" = "dev,staging,prod" ]
}

@test "the auth tables here cover every route in src/api/routes.c" {
    [ -f "$REPO/src/api/routes.c" ] || skip "source tree not available"
    local src ours
    src=$(grep -oE '^\s*\{"[A-Z]+", "/api/v1[^"]*"' "$REPO/src/api/routes.c" |
        sed -E 's/^\s*\{"([A-Z]+)", "([^"]+)"/\1 \2/' | sort)
    ours=$({
        mutating_routes
        read_routes
    } | awk '{ p = $2; gsub(/\/services\/[a-z-]+/, "/services/{name}", p);
               gsub(/\/teams\/[a-z-]+/, "/teams/{name}", p);
               gsub(/\/members\/[a-z-]+/, "/members/{user}", p);
               gsub(/\/tokens\/tok_[0-9a-f]+/, "/tokens/{id}", p); print $1, p }' | sort)
    diff <(echo "$src") <(echo "$ours")
}

@test "every mutating route answers 401 without a token" {
    local method path body failed=0
    while read -r method path body; do
        call_route none "$method" "$path" "$body"
        if [ "$API_STATUS" != 401 ] ||
            [ "$(jq -r .error.code <<<"$API_BODY")" != unauthenticated ]; then
            echo "$method $path -> $API_STATUS $API_BODY"
            failed=1
        fi
    done < <(mutating_routes)
    [ "$failed" = 0 ]
    assert_demo_intact
}

@test "every mutating route answers 401 with a garbage token" {
    local method path body failed=0
    while read -r method path body; do
        for role in garbage "TOKEN=not-a-token" "TOKEN=pave_$(printf 'x%.0s' {1..40})"; do
            call_route "$role" "$method" "$path" "$body"
            if [ "$API_STATUS" != 401 ]; then
                echo "$role $method $path -> $API_STATUS $API_BODY"
                failed=1
            fi
        done
    done < <(mutating_routes)
    [ "$failed" = 0 ]
    assert_demo_intact
}

@test "every read route answers 401 without a token and sends WWW-Authenticate" {
    local method path failed=0
    while read -r method path; do
        api none "$method" "$path"
        [ "$API_STATUS" = 401 ] || {
            echo "$method $path -> $API_STATUS"
            failed=1
        }
    done < <(read_routes)
    [ "$failed" = 0 ]
    run curl -sS -m 10 -D - -o /dev/null "$PAVE_SERVER/api/v1/services"
    [[ "$output" == *"WWW-Authenticate: Bearer"* ]]
}

@test "bob (identity) may not create a service for team payments: 403" {
    api bob POST /api/v1/services -H 'Content-Type: application/yaml' \
        --data-binary "@$FIX/payments-new.yaml"
    expect_status 403
    [ "$(jq -r .error.code <<<"$API_BODY")" = forbidden ]
    api admin GET /api/v1/services/refunds
    expect_status 404
}

@test "bob may not update payments-api (POST or PUT): 403" {
    api bob POST /api/v1/services -H 'Content-Type: application/yaml' \
        --data-binary "@$FIX/payments-api.yaml"
    expect_status 403
    api bob PUT /api/v1/services/payments-api -H 'Content-Type: application/yaml' \
        --data-binary "@$FIX/payments-api.yaml"
    expect_status 403
    # Moving the service to his own team is not a way around it.
    sed 's/team: payments/team: identity/' "$FIX/payments-api.yaml" >"$BATS_TEST_TMPDIR/steal.yaml"
    api bob PUT /api/v1/services/payments-api -H 'Content-Type: application/yaml' \
        --data-binary "@$BATS_TEST_TMPDIR/steal.yaml"
    expect_status 403
    assert_demo_intact
}

@test "bob may not delete payments-api: 403" {
    api bob DELETE /api/v1/services/payments-api
    expect_status 403
    api alice GET /api/v1/services/payments-api
    expect_status 200
}

@test "non-admins may not create teams, users, environments or memberships: 403" {
    local role
    for role in alice bob; do
        api "$role" POST /api/v1/teams -d '{"name":"shadow"}'
        expect_status 403
        api "$role" POST /api/v1/users -d '{"name":"mallory","admin":true}'
        expect_status 403
        api "$role" POST /api/v1/environments -d '{"name":"qa"}'
        expect_status 403
        api "$role" POST /api/v1/teams/payments/members -d '{"user":"bob"}'
        expect_status 403
        api "$role" DELETE /api/v1/teams/payments/members/alice
        expect_status 403
        api "$role" DELETE /api/v1/teams/identity
        expect_status 403
    done
    assert_demo_intact
}

@test "a non-admin may create tokens only for themselves" {
    api alice POST /api/v1/tokens -d '{"name":"sneaky","user":"admin"}'
    expect_status 403
    api alice POST /api/v1/tokens -d '{"name":"sneaky","user":"bob"}'
    expect_status 403
    api alice POST /api/v1/tokens -d '{"name":"mine"}'
    expect_status 201
    [ "$(jq -r .user <<<"$API_BODY")" = alice ]
}

@test "alice's token reads every read route: 200" {
    local method path failed=0
    while read -r method path; do
        api alice "$method" "$path"
        [ "$API_STATUS" = 200 ] || {
            echo "$method $path -> $API_STATUS $API_BODY"
            failed=1
        }
    done < <(read_routes)
    [ "$failed" = 0 ]
    api alice GET /api/v1/whoami
    [ "$(jq -c '{user, admin, teams}' <<<"$API_BODY")" = '{"user":"alice","admin":false,"teams":["payments"]}' ]
}

@test "alice may change services of her own team" {
    api alice POST /api/v1/services -H 'Content-Type: application/yaml' \
        --data-binary "@$FIX/payments-new.yaml"
    expect_status 201
    api alice DELETE /api/v1/services/refunds
    expect_status 200
}

@test "a non-admin sees only their own tokens" {
    api bob GET /api/v1/tokens
    expect_status 200
    [ "$(jq -r '[.items[].user] | unique | join(",")' <<<"$API_BODY")" = bob ]
}

@test "a revoked token answers 401" {
    local tok id
    api admin POST /api/v1/tokens -d '{"name":"short-lived","user":"alice"}'
    expect_status 201
    tok=$(jq -r .token <<<"$API_BODY")
    id=$(jq -r .id <<<"$API_BODY")
    api "TOKEN=$tok" GET /api/v1/whoami
    expect_status 200
    api admin DELETE "/api/v1/tokens/$id"
    expect_status 200
    api "TOKEN=$tok" GET /api/v1/whoami
    expect_status 401
    [[ "$(jq -r .error.message <<<"$API_BODY")" == *revoked* ]]
    api "TOKEN=$tok" POST /api/v1/services -H 'Content-Type: application/yaml' \
        --data-binary "@$FIX/payments-new.yaml"
    expect_status 401
}

@test "a user may revoke only their own tokens" {
    local id
    api admin POST /api/v1/tokens -d '{"name":"victim","user":"alice"}'
    id=$(jq -r .id <<<"$API_BODY")
    api bob DELETE "/api/v1/tokens/$id"
    expect_status 404
    api alice DELETE "/api/v1/tokens/$id"
    expect_status 200
}

@test "the admin token never appears in the server's stderr log" {
    # Make sure requests with it have been logged or failed loudly first.
    api admin GET /api/v1/whoami
    api admin GET /api/v1/nope
    [ -s "$SRV_ERR" ]
    run grep -c -F "$ADMIN_TOKEN" "$SRV_ERR"
    [ "$output" = 0 ]
    run grep -c -F "${ADMIN_TOKEN#pave_}" "$SRV_ERR"
    [ "$output" = 0 ]
    for t in "$ALICE_TOKEN" "$BOB_TOKEN"; do
        run grep -c -F "$t" "$SRV_ERR"
        [ "$output" = 0 ]
    done
}

@test "admin.token is written with mode 0600 in a 0700 data dir" {
    [ "$(stat -c %a "$E2E_DATA/admin.token")" = 600 ]
    [ "$(stat -c %a "$E2E_DATA")" = 700 ]
    [ "$(tr -d '\n' <"$E2E_DATA/admin.token")" = "$ADMIN_TOKEN" ]
}

# bats test_tags=needs-sqlite3
@test "the database stores no plaintext token" {
    command -v sqlite3 >/dev/null || skip "sqlite3 not installed"
    local t
    for t in "$ADMIN_TOKEN" "$ALICE_TOKEN" "$BOB_TOKEN"; do
        run -0 sqlite3 -readonly "$E2E_DATA/pave.db" .dump
        [ -n "$output" ]
        run bash -c 'sqlite3 -readonly "$1" .dump | grep -c -F "$2"' _ "$E2E_DATA/pave.db" "$t"
        [ "$output" = 0 ]
    done
}
