#!/usr/bin/env bats
# The service catalog through the real CLI: apply (idempotent, audited), list, show, delete,
# validate. One demo server per file; each test names its own services.

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

# Number of audit events recorded for OBJECT.
audit_count() {
    pave audit list --object "$1" --limit 1000 -o json | jq length
}

# Writes a copy of fixture SRC with metadata.name NAME to the test's temp dir; prints its path.
renamed() {
    local src=$1 name=$2 out="$BATS_TEST_TMPDIR/$2-${1##*/}"
    sed -E "s/^(  name: ).*/\1$name/" "$FIX/$src" >"$out"
    echo "$out"
}

@test "apply of a new manifest reports created and records service.create" {
    run -0 pave catalog apply -f "$FIX/checkout.yaml"
    [ "$output" = "service/checkout created" ]
    run -0 pave audit list --object checkout -o json
    [ "$(jq -r '.[0].action' <<<"$output")" = service.create ]
    [ "$(jq -r '.[0].actor' <<<"$output")" = admin ]
    [ "$(jq -r '.[0].detail' <<<"$output")" = "$FIX/checkout.yaml" ]
}

@test "apply of an identical manifest reports unchanged and records no audit event" {
    local f before
    f=$(renamed checkout.yaml idem)
    run -0 pave catalog apply -f "$f"
    [ "$output" = "service/idem created" ]
    before=$(audit_count idem)
    [ "$before" = 1 ]
    run -0 pave catalog apply -f "$f"
    [ "$output" = "service/idem unchanged" ]
    run -0 pave catalog apply -f "$f" -o json
    [ "$(jq -r '.[0].change' <<<"$output")" = unchanged ]
    [ "$(audit_count idem)" = "$before" ]
    run -0 pave catalog show idem -o json
    [ "$(jq -r .revision <<<"$output")" = 1 ]
}

@test "apply of a modified manifest reports updated, revision 2, audit with before/after digests" {
    local v1 v2 d1 d2
    v1=$(renamed checkout.yaml upd)
    v2=$(renamed checkout-v2.yaml upd)
    run -0 pave catalog apply -f "$v1"
    d1=$(pave catalog show upd -o json | jq -r .digest)
    run -0 pave catalog apply -f "$v2"
    [ "$output" = "service/upd updated" ]
    run -0 pave catalog show upd -o json
    [ "$(jq -r .revision <<<"$output")" = 2 ]
    [ "$(jq -r .manifest.spec.replicas <<<"$output")" = 3 ]
    d2=$(jq -r .digest <<<"$output")
    [ "$d1" != "$d2" ]
    [[ "$d1" =~ ^[0-9a-f]{64}$ ]] && [[ "$d2" =~ ^[0-9a-f]{64}$ ]]
    run -0 pave audit list --object upd -o json
    [ "$(jq length <<<"$output")" = 2 ]
    [ "$(jq -r '.[0].action' <<<"$output")" = service.update ]
    [ "$(jq -r '.[0].before' <<<"$output")" = "$d1" ]
    [ "$(jq -r '.[0].after' <<<"$output")" = "$d2" ]
    [ "$(jq -r '.[1].action' <<<"$output")" = service.create ]
    [ "$(jq -r '.[1].before' <<<"$output")" = null ]
    # The table shortens digests to a 12-character prefix.
    run -0 pave audit list --object upd
    [[ "$output" == *"${d1:0:12}"* ]]
    [[ "$output" != *"$d1"* ]]
}

@test "apply -f DIR applies every .yaml, .yml and .json file and ignores the rest" {
    run -0 pave catalog apply -f "$FIX/apply-dir"
    [ "${lines[0]}" = "service/notifications created" ]
    [ "${lines[1]}" = "service/reports created" ]
    [ "${lines[2]}" = "service/search created" ]
    [ "${#lines[@]}" = 3 ]
    run -0 pave catalog apply -f "$FIX/apply-dir"
    [ "$(grep -c unchanged <<<"$output")" = 3 ]
}

# Under the sanitizer build this also pins the leak fixed in 611051b (collect_files).
@test "apply -f of a directory without manifests fails" {
    mkdir -p "$BATS_TEST_TMPDIR/empty"
    run -1 pave catalog apply -f "$BATS_TEST_TMPDIR/empty"
    [[ "$output" == *"no manifests"* ]]
}

@test "list -o json is an array of services" {
    run -0 pave catalog list -o json
    jq -e 'type == "array"' <<<"$output"
    jq -e 'map(.name) | index("payments-api") != null' <<<"$output"
    jq -e '.[] | select(.name == "ledger") | .team == "payments" and .tier == 1 and .revision >= 1' <<<"$output"
    jq -e 'map(.name) == (map(.name) | sort)' <<<"$output"
}

@test "list -o yaml prints one YAML item per service" {
    run -0 pave catalog list -o yaml
    [[ "$output" == *"- name: auth-service"* ]]
    [[ "$output" == *"  team: identity"* ]]
    [[ "$output" == *"- name: payments-api"* ]]
    if python3 -c 'import yaml' 2>/dev/null; then
        python3 -c 'import sys, yaml; d = yaml.safe_load(sys.stdin); assert isinstance(d, list) and any(s["name"] == "ledger" for s in d)' <<<"$output"
    fi
}

@test "list prints a table with a header" {
    run -0 pave catalog list
    [[ "${lines[0]}" =~ ^NAME\ +TEAM\ +TIER\ +REV\ +UPDATED\ +DESCRIPTION$ ]]
    grep -Eq '^ledger +payments +1 ' <<<"$output"
    grep -Eq '^auth-service +identity +2 ' <<<"$output"
}

@test "list --team shows only that team's services" {
    run -0 pave catalog list --team identity -o json
    jq -e 'length >= 1 and all(.[]; .team == "identity")' <<<"$output"
    jq -e 'map(.name) | index("auth-service") != null' <<<"$output"
    run -0 pave catalog list --team no-such-team -o json
    [ "$(jq length <<<"$output")" = 0 ]
}

@test "list -q searches names and descriptions" {
    run -0 pave catalog list -q ledger -o json
    [ "$(jq -r 'map(.name) | join(",")' <<<"$output")" = ledger ]
    run -0 pave catalog list -q "Card payments" -o json
    jq -e 'map(.name) | index("payments-api") != null' <<<"$output"
    # LIKE wildcards are literal.
    run -0 pave catalog list -q "%" -o json
    [ "$(jq length <<<"$output")" = 0 ]
    run -0 pave catalog list -q "_" -o json
    [ "$(jq length <<<"$output")" = 0 ]
}

@test "list --limit 1 --offset 1 shows the second service and a hint for more" {
    local all
    all=$(pave catalog list --all -o json | jq -r 'map(.name)')
    run -0 pave catalog list --limit 1 --offset 1 -o json
    [ "$(jq length <<<"$output")" = 1 ]
    [ "$(jq -r '.[0].name' <<<"$output")" = "$(jq -r '.[1]' <<<"$all")" ]
    run -0 --separate-stderr pave catalog list --limit 1 --offset 1
    [ "${#lines[@]}" = 2 ]
    [[ "$stderr" == *"(showing 1 of "*"use --all or --offset 2 for more)"* ]]
}

@test "list --all pages through every service" {
    local total
    total=$(curl -fsS -m 10 -H "Authorization: Bearer $ADMIN_TOKEN" \
        "$PAVE_SERVER/api/v1/services?limit=1" | jq .total)
    [ "$total" -ge 3 ]
    run -0 pave catalog list --all --limit 2 -o json
    [ "$(jq length <<<"$output")" = "$total" ]
    [ "$(jq '[.[].name] | unique | length' <<<"$output")" = "$total" ]
}

@test "show prints the service with its manifest" {
    run -0 pave catalog show payments-api -o json
    [ "$(jq -r .name <<<"$output")" = payments-api ]
    [ "$(jq -r .manifest.metadata.team <<<"$output")" = payments ]
    [ "$(jq -r .manifest.spec.run.ports[0].port <<<"$output")" = 8080 ]
    run -0 pave catalog show payments-api
    [[ "$output" == *"name: payments-api"* ]]
}

@test "show of an unknown service exits 1 with not found" {
    run -1 pave catalog show no-such-service
    [[ "$output" == *"not found"* ]]
}

@test "delete removes the service; show then exits 1" {
    local f
    f=$(renamed checkout.yaml doomed)
    run -0 pave catalog apply -f "$f"
    run -0 pave catalog delete doomed
    [ "$output" = "service/doomed deleted" ]
    run -1 pave catalog show doomed
    [[ "$output" == *"not found"* ]]
    run -0 pave audit list --object doomed -o json
    [ "$(jq -r '.[0].action' <<<"$output")" = service.delete ]
    run -1 pave catalog delete doomed
}

@test "validate -f prints every problem as file:line:col with a did-you-mean hint and exits 1" {
    run -1 pave catalog validate -f "$FIX/bad-typos.yaml"
    local f="$FIX/bad-typos.yaml"
    [[ "$output" == *"$f:7:3: unknown key 'descripton' (did you mean 'description'?)"* ]]
    [[ "$output" == *"$f:9:3: unknown key 'replica' (did you mean 'replicas'?)"* ]]
    [[ "$output" == *"$f:12:"*"unknown key 'protocl' (did you mean 'protocol'?)"* ]]
    local n
    n=$(grep -cE "^$f:[0-9]+:[0-9]+: .*did you mean '[a-zA-Z]+'\?" <<<"$output")
    [ "$n" -ge 3 ]
    [[ "$output" == *"$f: 3 problems"* ]]
}

@test "validate -f of good manifests prints ok and needs no server" {
    run -0 env PAVE_SERVER=http://127.0.0.1:1 "$PAVE_BIN" catalog validate -f "$FIX/apply-dir/search.yml"
    [[ "$output" == *"search.yml: ok (service 'search', team 'identity')"* ]]
}

@test "apply of a manifest with an unknown team exits 1 with a did-you-mean hint" {
    run -1 pave catalog apply -f "$FIX/unknown-team.yaml"
    [[ "$output" == *"unknown-team.yaml:5:9: unknown team 'paymets'"* ]]
    [[ "$output" == *"did you mean 'payments'"* ]]
    [[ "$output" == *"not applied"* ]]
    run -1 pave catalog show orphan
}

@test "apply of an invalid manifest over the API answers 422 with details" {
    api admin POST "/api/v1/services?source=bad.yaml" -H 'Content-Type: application/yaml' \
        --data-binary "@$FIX/bad-typos.yaml"
    expect_status 422
    [ "$(jq '.error.details | length' <<<"$API_BODY")" = 3 ]
    jq -e '.error.details | all(.[]; .file == "bad.yaml" and .line > 0 and .column > 0 and (.hint | test("did you mean")))' <<<"$API_BODY"
}

@test "PUT with a manifest naming another service answers 400" {
    api admin PUT /api/v1/services/ledger -H 'Content-Type: application/yaml' \
        --data-binary "@$FIX/payments-api.yaml"
    expect_status 400
    [[ "$API_BODY" == *"manifest names service 'payments-api' but the URL names 'ledger'"* ]]
}

@test "docs/manifest.md carries the reference table generated from the validator's schema" {
    run -0 "$PAVE_BIN" catalog schema
    [ -n "$output" ]
    schema="$output"
    python3 -c '
import sys
doc = open(sys.argv[1]).read()
table = sys.stdin.read()
sys.exit(0 if table.strip() in doc else "docs/manifest.md is out of date: paste the output of pave catalog schema")
' "$BATS_TEST_DIRNAME/../../docs/manifest.md" <<<"$schema"
}
