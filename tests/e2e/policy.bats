#!/usr/bin/env bats
# Policy on a real server: applying policies (admin only, never half-applied), checks of
# manifests and Terraform plans (on the server and locally with --policy), the exception flow
# with expiry, scans and reports (JSON and CSV) against the decisions in the audit log.
#
# The demo server starts with the default policies; setup_file deletes them and applies the e2e
# policies under fixtures/policy/ (e2e-owner-tag: enforce, e2e-cost-center: warn), so each test
# can run alone. Exceptions name their own (subject, rule) pairs.

bats_require_minimum_version 1.5.0

FIX="$BATS_TEST_DIRNAME/fixtures/policy"

setup_file() {
    load helpers
    e2e_server_start
    local n
    for n in $(curl -fsS -H "Authorization: Bearer $ADMIN_TOKEN" "$PAVE_SERVER/api/v1/policies" |
        jq -r '.items[].name'); do
        curl -fsS -X DELETE -H "Authorization: Bearer $ADMIN_TOKEN" \
            "$PAVE_SERVER/api/v1/policies/$n" >/dev/null
    done
    local f
    for f in e2e-tags e2e-warn; do
        curl -fsS -X POST -H "Authorization: Bearer $ADMIN_TOKEN" \
            -H 'Content-Type: application/yaml' --data-binary @"$FIX/$f.yaml" \
            "$PAVE_SERVER/api/v1/policies?source=$f.yaml" >/dev/null
    done
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

DOWN_URL="http://127.0.0.1:1"

# The outcome of RULE for SUBJECT in a check's JSON (on stdin).
outcome_of() {
    jq -r --arg s "$1" --arg r "$2" \
        '.subjects[] | select(.name == $s) | .results[] | select(.rule == $r) | .outcome'
}

# The newest scan's outcome of RULE for SERVICE.
scan_outcome() {
    api admin GET "/api/v1/policy/report?group=service&service=$1"
    expect_status 200
    jq -r --arg r "$2" '.groups[].rows[] | select(.rule == $r) | .outcome' <<<"$API_BODY"
}

@test "the demo's default policies were stored and compile" {
    # setup_file deleted them; their versions stay in the history
    api admin GET /api/v1/audit?kind=policy\&limit=1000
    expect_status 200
    jq -e '[.items[] | select(.action == "policy.apply" and .actor == "system")] | length > 0' \
        <<<"$API_BODY"
    jq -e '[.items[] | select(.action == "policy.delete")] | length > 0' <<<"$API_BODY"
}

@test "an admin applies policies; alice may not; applying again changes nothing" {
    # a copy of e2e-warn under another name and rule id
    local extra="$BATS_TEST_TMPDIR/e2e-extra.yaml"
    sed 's/e2e-warn/e2e-extra/; s/e2e-cost-center/e2e-extra-rule/' "$FIX/e2e-warn.yaml" >"$extra"
    api alice POST /api/v1/policies -H 'Content-Type: application/yaml' --data-binary @"$extra"
    expect_status 403
    run -1 env PAVE_TOKEN="$ALICE_TOKEN" "$PAVE_BIN" policy apply -f "$extra"
    [[ "$output" == *"only an admin"* ]]

    run -0 pave policy apply -f "$FIX/e2e-tags.yaml" -f "$extra"
    [[ "$output" == *"policy e2e-tags unchanged (version 1)"* ]]
    [[ "$output" == *"policy e2e-extra created (version 1)"* ]]
    run -0 pave policy apply -f "$extra" -o json
    [ "$(jq -r '.applied[0].change' <<<"$output")" = unchanged ]

    run -0 pave policy list -o json
    [ "$(jq -r '[.items[].name] | sort | join(",")' <<<"$output")" = "e2e-extra,e2e-tags,e2e-warn" ]
    [ "$(jq -r '.rules' <<<"$output")" = 3 ]
    run -0 pave policy show e2e-extra
    [[ "$output" == *"e2e-extra-rule"* ]]
    [[ "$output" == *"required-tags"* ]]

    api admin GET "/api/v1/audit?kind=policy&object=e2e-extra"
    [ "$(jq '[.items[] | select(.action == "policy.apply")] | length' <<<"$API_BODY")" = 1 ]
    run -0 pave policy delete e2e-extra
}

@test "a malformed policy is refused with line:col and the previous set stays active" {
    api admin GET /api/v1/policies
    local before version
    before=$(jq -r .set_digest <<<"$API_BODY")
    version=$(jq -r '.items[] | select(.name == "e2e-tags") | .version' <<<"$API_BODY")
    api admin POST "/api/v1/policies?source=bad.yaml" -H 'Content-Type: application/yaml' \
        --data-binary @"$FIX/bad.yaml"
    expect_status 400
    # the unknown kind is on line 8 (its value)
    jq -e '.error.message | test("bad.yaml:8:[0-9]+")' <<<"$API_BODY"
    jq -e '.error.details[0] | .file == "bad.yaml" and .line == 8' <<<"$API_BODY"

    run -1 pave policy apply -f "$FIX/bad.yaml"
    [[ "$output" == *"bad.yaml:8:"* ]]

    api admin GET /api/v1/policies
    [ "$(jq -r .set_digest <<<"$API_BODY")" = "$before" ]
    [ "$(jq -r '.items[] | select(.name == "e2e-tags") | .version' <<<"$API_BODY")" = "$version" ]
    # ... and the old rule still decides
    run -1 pave policy check -f "$FIX/plan.json" -o json
    [ "$(outcome_of module.cache.aws_elasticache_cluster.main e2e-owner-tag <<<"$output")" = fail ]
}

@test "check of a manifest: the enforce rule blocks with its remediation, warn passes" {
    run -1 pave policy check -f "$FIX/ledger.yaml"
    [[ "$output" == *FAIL*ledger* ]]
    [[ "$output" == *e2e-owner-tag* ]]
    [[ "$output" == *"add the tag owner"* ]]

    # passing rules are printed with --all only
    run -0 pave policy check -f "$FIX/owned.yaml" -o json
    [ "$(outcome_of owned-svc e2e-owner-tag <<<"$output")" = "" ]
    run -0 pave policy check -f "$FIX/owned.yaml" -o json --all
    [ "$(jq -r .blocked <<<"$output")" = false ]
    [ "$(outcome_of owned-svc e2e-owner-tag <<<"$output")" = pass ]
    [ "$(outcome_of owned-svc e2e-cost-center <<<"$output")" = pass ]

    # every check is a recorded decision
    run -0 pave policy decisions list --subject ledger -o json
    [ "$(jq -r '.[0].blocked' <<<"$output")" = true ]
    run -0 pave policy decisions show "$(jq -r '.[0].id' <<<"$output")"
    [[ "$output" == *"gate check"*blocked* ]]
    [[ "$output" == *"Fix: add the tag owner"* ]]
}

@test "check of a Terraform plan: each resource is a subject, modules included" {
    run -1 pave policy check -f "$FIX/plan.json" --kind terraform -o json --all
    [ "$(jq -r .total <<<"$output")" = 2 ]
    [ "$(outcome_of aws_s3_bucket.logs e2e-owner-tag <<<"$output")" = pass ]
    [ "$(outcome_of module.cache.aws_elasticache_cluster.main e2e-owner-tag <<<"$output")" = fail ]
    # auto detects the plan
    run -1 pave policy check -f "$FIX/plan.json" -o json
    [ "$(jq -r .total <<<"$output")" = 2 ]
}

@test "check --policy evaluates locally, without a server" {
    run -1 env PAVE_SERVER="$DOWN_URL" "$PAVE_BIN" policy check --policy "$FIX/e2e-tags.yaml" \
        -f "$FIX/plan.json" -o json
    [ "$(jq -r .blocked <<<"$output")" = true ]
    [ "$(outcome_of module.cache.aws_elasticache_cluster.main e2e-owner-tag <<<"$output")" = fail ]
    run -0 env PAVE_SERVER="$DOWN_URL" "$PAVE_BIN" policy check --policy "$FIX/e2e-tags.yaml" \
        -f "$FIX/owned.yaml"
    [[ "$output" == *PASS*owned-svc* ]]
    run -1 env PAVE_SERVER="$DOWN_URL" "$PAVE_BIN" policy check --policy "$FIX/bad.yaml" \
        -f "$FIX/owned.yaml"
    [[ "$output" == *"bad.yaml:8:"* ]]
}

@test "exceptions: alice requests, cannot approve, an admin approves, the check says excepted" {
    run -0 env PAVE_TOKEN="$ALICE_TOKEN" "$PAVE_BIN" policy exceptions request payments-api \
        e2e-owner-tag --justification "owner tags arrive with the new catalog, PAY-12" \
        --expires 30d -o json
    local id
    id=$(jq -r .id <<<"$output")
    [ "$(jq -r .state <<<"$output")" = requested ]
    [ "$(jq -r .requester <<<"$output")" = alice ]

    # bob is not in payments; unknown rules are refused; expiry is at most a year
    run -1 env PAVE_TOKEN="$BOB_TOKEN" "$PAVE_BIN" policy exceptions request payments-api \
        e2e-owner-tag --justification x --expires 30d
    [[ "$output" == *"team 'payments'"* ]]
    run -1 pave policy exceptions request payments-api no-such-rule --justification x \
        --expires 30d
    run -1 pave policy exceptions request payments-api e2e-owner-tag --justification x \
        --expires 400d
    [[ "$output" == *"1 year"* ]]

    # not approved yet: still failing
    run -1 pave policy check -f "$FIX/payments-api.yaml" -o json
    [ "$(outcome_of payments-api e2e-owner-tag <<<"$output")" = fail ]

    run -1 env PAVE_TOKEN="$ALICE_TOKEN" "$PAVE_BIN" policy exceptions approve "$id"
    api alice POST "/api/v1/policy/exceptions/$id/approve" -d '{}'
    expect_status 403

    # an admin cannot approve their own request either
    run -0 pave policy exceptions request payments-api e2e-cost-center \
        --justification "admin's own" --expires 1d -o json
    local own
    own=$(jq -r .id <<<"$output")
    run -1 pave policy exceptions approve "$own"
    [[ "$output" == *"another admin must decide"* ]]

    # the admin approves alice's request: the check now says excepted and passes
    run -0 pave policy exceptions approve "$id" --comment "until PAY-12 lands"
    [[ "$output" == *approved* ]]
    run -0 pave policy check -f "$FIX/payments-api.yaml" -o json
    [ "$(outcome_of payments-api e2e-owner-tag <<<"$output")" = excepted ]
    [ "$(jq -r .blocked <<<"$output")" = false ]

    run -0 pave policy exceptions list --state active -o json
    jq -e --argjson id "$id" 'any(.[]; .id == $id)' <<<"$output"

    api admin GET "/api/v1/audit?kind=policy&object=payments-api&limit=100"
    local actions
    actions=$(jq -r '[.items[].action] | join(" ")' <<<"$API_BODY")
    [[ "$actions" == *exception.approve* ]]
    [[ "$actions" == *exception.request* ]]
}

@test "an expired exception stops applying in checks and in scans" {
    run -0 env PAVE_TOKEN="$ALICE_TOKEN" "$PAVE_BIN" policy exceptions request ledger \
        e2e-owner-tag --justification "short test" --expires 3s -o json
    local id
    id=$(jq -r .id <<<"$output")
    run -0 pave policy exceptions approve "$id"
    run -0 pave policy check -f "$FIX/ledger.yaml" -o json
    [ "$(outcome_of ledger e2e-owner-tag <<<"$output")" = excepted ]
    run -0 pave policy scan
    [ "$(scan_outcome ledger e2e-owner-tag)" = excepted ]

    sleep 3.5
    run -1 pave policy check -f "$FIX/ledger.yaml" -o json
    [ "$(outcome_of ledger e2e-owner-tag <<<"$output")" = fail ]
    run -0 pave policy scan -o json
    [ "$(scan_outcome ledger e2e-owner-tag)" = fail ]
    run -0 pave policy exceptions list --state expired -o json
    jq -e --argjson id "$id" 'any(.[]; .id == $id and .active == false)' <<<"$output"
}

@test "report JSON and CSV of a scan agree, and blocked decisions match the audit log" {
    run -0 env PAVE_TOKEN="$BOB_TOKEN" "$PAVE_BIN" policy exceptions request auth-service \
        e2e-owner-tag --justification "identity tags next sprint" --expires 7d -o json
    run -0 pave policy exceptions approve "$(jq -r .id <<<"$output")"
    run -1 pave policy check -f "$FIX/ledger.yaml"
    run -0 pave policy scan
    run -0 pave policy scan -o json
    local scan
    scan=$(jq -r .scan <<<"$output")
    run -0 pave policy report --group service -o json
    local report=$output
    [ "$(jq -r .scan.id <<<"$report")" = "$scan" ]
    # the demo services: auth-service excepted, ledger failing
    [ "$(jq -r '.groups[] | select(.key == "auth-service") | .excepted' <<<"$report")" -ge 1 ]
    [ "$(jq -r '.groups[] | select(.key == "ledger") | .fail' <<<"$report")" -ge 1 ]
    [ "$(jq -r '.trend | length' <<<"$report")" -ge 2 ]
    [ "$(jq -r '.trend[-1].scan' <<<"$report")" = "$scan" ]

    # CSV: the same rows, correctly quoted (parsed by a real CSV reader)
    run -0 pave policy report -o csv
    local csv=$output
    [ "$(head -n1 <<<"$csv" | tr -d '\r')" = "scan,time,team,service,rule,severity,mode,outcome,message" ]
    python3 -c '
import csv, io, json, sys
rows = list(csv.DictReader(io.StringIO(sys.argv[1])))
report = json.loads(sys.argv[2])
want = sorted((r["team"], r["service"], r["rule"], r["outcome"], r["message"] or "")
              for g in report["groups"] for r in g["rows"])
got = sorted((r["team"], r["service"], r["rule"], r["outcome"], r["message"]) for r in rows)
assert got == want, (got, want)
assert all(r["scan"] == str(report["scan"]["id"]) for r in rows)
assert len(rows) == report["totals"]["total"]
' "$csv" "$report"

    # team grouping and filters
    run -0 pave policy report --group team --team identity -o json
    [ "$(jq -r '[.groups[].key] | join(",")' <<<"$output")" = identity ]
    api admin GET "/api/v1/policy/report?format=csv&service=ledger"
    expect_status 200
    [ "$(tail -n +2 <<<"$API_BODY" | grep -c ',ledger,')" -ge 1 ]
    [ "$(tail -n +2 <<<"$API_BODY" | grep -vc ',ledger,' || true)" = 0 ]

    # every blocked decision has its policy.block audit event naming the failing enforce rules,
    # and the scan fails the same rules for the same services
    api admin GET "/api/v1/policy/decisions?limit=500"
    local decisions=$API_BODY
    api admin GET "/api/v1/audit?kind=policy&limit=1000"
    local audit=$API_BODY
    python3 -c '
import json, sys
decisions = json.loads(sys.argv[1])["items"]
audit = [e for e in json.loads(sys.argv[2])["items"] if e["action"] == "policy.block"]
report = json.loads(sys.argv[3])
blocked = [d for d in decisions if d["blocked"]]
assert blocked, "no blocked decision"
assert len(audit) == len(blocked), (len(audit), len(blocked))
for d in blocked:
    ev = [e for e in audit if e["detail"].startswith("decision %d," % d["id"])]
    assert len(ev) == 1, d
    assert ev[0]["object"] == d["subject"]
    for f in d["failed"]:
        if f["mode"] == "enforce":
            assert f["rule"] in ev[0]["detail"], (f, ev[0])
# the newest decision about ledger (blocked, no active exception) matches the scan
led = [d for d in decisions if d["subject"] == "ledger"][0]
scan_fails = sorted(r["rule"] for g in report["groups"] if g["key"] == "ledger"
                    for r in g["rows"] if r["outcome"] == "fail")
assert sorted(f["rule"] for f in led["failed"]) == scan_fails, (led, scan_fails)
' "$decisions" "$audit" "$report"
}

@test "delete: admin only, the rule stops applying, the history stays" {
    run -1 env PAVE_TOKEN="$BOB_TOKEN" "$PAVE_BIN" policy delete e2e-warn
    run -0 pave policy delete e2e-warn
    run -1 pave policy show e2e-warn
    run -0 pave policy check -f "$FIX/owned.yaml" -o json
    [ "$(outcome_of owned-svc e2e-cost-center <<<"$output")" = "" ]
    # applying it again makes version 3 (1, the deletion 2, then 3)
    run -0 pave policy apply -f "$FIX/e2e-warn.yaml" -o json
    [ "$(jq -r '.applied[0].version' <<<"$output")" = 3 ]
    run -0 pave policy show e2e-warn -o json
    [ "$(jq -r '.history | length' <<<"$output")" = 3 ]
}

@test "report and exceptions need a token; scans are for admins; bad input is refused" {
    api none GET /api/v1/policy/report
    expect_status 401
    api alice POST /api/v1/policy/scans
    expect_status 403
    api admin GET "/api/v1/policy/report?group=colour"
    expect_status 400
    api admin POST "/api/v1/policy/check?kind=xml" --data-binary @"$FIX/owned.yaml"
    expect_status 400
    api admin POST /api/v1/policy/exceptions -H 'Content-Type: application/json' \
        -d '{"subject":"ledger","rule":"e2e-owner-tag","justification":"x","expires":"yesterday"}'
    expect_status 400
    api admin POST /api/v1/policy/exceptions/999999/approve -d '{}'
    expect_status 404
}
