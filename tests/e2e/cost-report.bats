#!/usr/bin/env bats
# Cost analysis through the real binary (docs/cost.md): untagged spend on the real samples
# against an independent python sum, commitments on the AWS CUR sample, split rules, a budget
# alert that fires once, anomalies on a generated export with one spike, and the API and portal
# of a demo server (which imports the samples into its empty store at start).

bats_require_minimum_version 1.5.0

setup_file() {
    load helpers
    export BILLING_DIR="${BILLING_DATA:-$REPO/tests/data/billing}"
    export PAVE_DEMO_BILLING="$BILLING_DIR"
    e2e_server_start
}

teardown_file() {
    load helpers
    e2e_server_stop
}

setup() {
    load helpers
    cd "$E2E_CWD"
    DATA="$BILLING_DIR"
    [ -f "$DATA/focus1.0_sample_1000.csv" ] || skip "no billing samples at $DATA"
    DD="$BATS_TEST_TMPDIR/pave"
}

teardown() {
    e2e_check_sanitizer_logs
}

# Billed cost of the rows of a FOCUS file that carry no team tag (the keys Paved reads as team:
# team, owner, owning-team, squad; "user:" prefixes dropped, '_' and ' ' as '-').
py_untagged() {
    python3 - "$1" <<'EOF'
import csv, json, sys
from decimal import Decimal as D
roles = {"team", "owner", "owning-team", "squad"}
def role(k):
    k = k.strip().lower()
    for p in ("user:", "user_"):
        if k.startswith(p):
            k = k[len(p):]
    return k.replace("_", "-").replace(" ", "-")
total = D(0)
for r in csv.DictReader(open(sys.argv[1])):
    tags = r.get("Tags") or ""
    try:
        t = json.loads(tags) if tags.strip().startswith("{") else {}
    except ValueError:
        t = {}
    if not any(role(k) in roles and str(v) != "" for k, v in t.items()):
        total += D(r["BilledCost"]) if r["BilledCost"] not in ("", "NULL") else 0
print("%.2f" % total)
EOF
}

@test "cost untagged: the FOCUS sample's untagged total matches an independent sum" {
    run -0 pave cost import --data-dir "$DD" "$DATA/focus1.0_sample_1000.csv"
    local got want by_svc
    got=$(pave cost untagged --data-dir "$DD" -o json | jq -r '.total_billed | tonumber')
    want=$(py_untagged "$DATA/focus1.0_sample_1000.csv")
    [ "$(python3 -c "print('%.2f' % $got)")" = "$want" ]
    by_svc=$(pave cost untagged --data-dir "$DD" --by service -o json | jq -r '.total_billed')
    [ "$(python3 -c "print('%.2f' % $by_svc)")" = "$want" ]
    run -0 pave cost untagged --data-dir "$DD" --by service -o csv
    [ "${lines[0]}" = "key,rows,billed,effective" ]
    run -0 pave cost untagged --data-dir "$DD"
    [[ "$output" == *"TOTAL untagged billed"* ]]
    run -0 pave cost trend --data-dir "$DD" --monthly -o json
    [ "$(jq -r '.items[0].date' <<<"$output")" = 2024-09 ]
}

@test "cost commitments: the AWS CUR sample has none and its on-demand eligible spend is summed" {
    run -0 pave cost import --data-dir "$DD" "$DATA/aws_cur_legacy_sample_anonymous.csv"
    run -0 pave cost commitments --data-dir "$DD" -o json
    [ "$(jq '.types | length' <<<"$output")" = 0 ]
    [ "$(jq -r '.covered_ondemand_equiv' <<<"$output")" = 0.000000 ]
    local got want
    got=$(jq -r '.ondemand | tonumber' <<<"$output")
    want=$(python3 - "$DATA/aws_cur_legacy_sample_anonymous.csv" <<'EOF'
import csv, sys
from decimal import Decimal as D
t = D(0)
for r in csv.DictReader(open(sys.argv[1])):
    fam = (r["product/productFamily"] + " " + r["product/ProductName"]).lower()
    if r["lineItem/LineItemType"] == "Usage" and r["pricing/term"] == "OnDemand" and \
            ("compute" in fam or "database" in fam):
        od = D(r["pricing/publicOnDemandCost"] or 0)
        t += od if od > 0 else D(r["lineItem/UnblendedCost"])
print("%.4f" % t)
EOF
)
    [ "$(python3 -c "print('%.4f' % $got)")" = "$want" ]
    run -0 pave cost commitments --data-dir "$DD"
    [[ "$output" == *"no commitments"* ]]
    # the FOCUS sample's savings plan lines are counted as covered usage
    run -0 pave cost import --data-dir "$DD" "$DATA/focus1.0_sample_1000.csv"
    run -0 pave cost commitments --data-dir "$DD" --period 2024-09 -o json
    [ "$(jq -r '.types[0].type' <<<"$output")" = savings-plan ]
    [ "$(jq -r '.types[0].commitments' <<<"$output")" = 2 ]
    run -0 pave cost recommend --data-dir "$DD" --days 30 --discount 25
    [[ "$output" == *"assumptions:"* ]]
    [[ "$output" == *"discount: 25% off"* ]]
}

# A generated FOCUS export: payments 10/day, search 5/day and shared 6/day on days 1-10.
gen_teams() {
    python3 - "$1" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    f.write("BillingPeriodStart,ChargePeriodStart,BilledCost,BillingAccountId,ServiceName,Tags\n")
    for d in range(1, 11):
        for team, cost in (("payments", 10), ("search", 5), ("shared", 6)):
            f.write('2024-10-01,2024-10-%02d,%d,ACC,EC2,"{""team"": ""%s""}"\n' % (d, cost, team))
EOF
}

@test "cost split: rules spread shared spend and the parts add up to the total" {
    gen_teams "$BATS_TEST_TMPDIR/t.csv"
    run -0 pave cost import --data-dir "$DD" "$BATS_TEST_TMPDIR/t.csv"
    printf 'name: shared\nmatch: {team: shared}\nmethod: fixed\nweights: {payments: 2, search: 1}\n' \
        >"$BATS_TEST_TMPDIR/rule.yaml"
    run -0 pave cost split apply --data-dir "$DD" "$BATS_TEST_TMPDIR/rule.yaml"
    run -0 pave cost split list --data-dir "$DD" -o json
    [ "$(jq -r '.items[0].method' <<<"$output")" = fixed ]
    run -0 pave cost report --data-dir "$DD" --by team --split -o json
    [ "$(jq -r '.items[] | select(.team=="payments") | .allocated_billed' <<<"$output")" = 40.000000 ]
    [ "$(jq -r '.items[] | select(.team=="search") | .billed' <<<"$output")" = 70.000000 ]
    [ "$(jq -r '[.items[].billed_n] | add' <<<"$output")" = 210000000000 ]
    run -0 pave cost report --data-dir "$DD" --by team --split -o csv
    [[ "${lines[0]}" == team,direct_billed,allocated_billed,billed,* ]]
    run -1 pave cost split delete --data-dir "$DD" nope
    [[ "$output" == *"pave cost split list"* ]]
    run -0 pave cost split delete --data-dir "$DD" shared
    printf 'name: bad\nmatch: {team: x}\nmethod: sideways\nteams: [a]\n' >"$BATS_TEST_TMPDIR/bad.yaml"
    run -1 pave cost split apply --data-dir "$DD" "$BATS_TEST_TMPDIR/bad.yaml"
    [[ "$output" == *"bad.yaml: split rule:3:9: method must be"* ]]
}

@test "cost budget: a team over budget raises one alert per period and check exits 1" {
    gen_teams "$BATS_TEST_TMPDIR/t.csv"
    run -0 pave cost import --data-dir "$DD" "$BATS_TEST_TMPDIR/t.csv"
    run -0 pave cost budget set --data-dir "$DD" payments 80 --alert-pct 90
    run -0 pave cost budget set --data-dir "$DD" search 500
    run -1 --separate-stderr pave cost budget check --data-dir "$DD" -o json
    [ "$(jq -r '.new_alerts' <<<"$output")" = 1 ]
    [[ "$stderr" == *"alert: team 'payments' is over its 80.00 budget"* ]]
    [[ "$stderr" == *"1 team(s) over budget"* ]]
    [ "$(jq -r '.items[] | select(.team=="payments") | .state' <<<"$output")" = over ]
    [ "$(jq -r '.items[] | select(.team=="payments") | .forecast' <<<"$output")" = 310.000000 ]
    [ "$(jq -r '.items[] | select(.team=="search") | .state' <<<"$output")" = ok ]
    run -1 --separate-stderr pave cost budget check --data-dir "$DD" -o json
    [ "$(jq -r '.new_alerts' <<<"$output")" = 0 ]
    run -0 pave cost budget list --data-dir "$DD"
    [[ "$output" == *"team 'payments' is over its 80.00 budget"* ]]
    run -2 pave cost budget set --data-dir "$DD" payments lots
    run -2 pave cost budget frobnicate --data-dir "$DD"
}

@test "cost anomalies: one spike is found and the explanation names what moved" {
    python3 - "$BATS_TEST_TMPDIR/a.csv" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    f.write("BillingPeriodStart,ChargePeriodStart,BilledCost,BillingAccountId,SubAccountId,"
            "ServiceName,RegionId,ResourceId,x_UsageType\n")
    for d in range(1, 15):
        f.write("2024-10-01,2024-10-%02d,10,A,acct-1,EC2,eu-west-1,i-steady,BoxUsage:m5\n" % d)
        f.write("2024-10-01,2024-10-%02d,5,A,acct-1,S3,eu-west-1,bucket-1,Storage\n" % d)
    f.write("2024-10-01,2024-10-12,80,A,acct-2,EC2,us-east-1,i-spike,BoxUsage:p4d\n")
EOF
    run -0 pave cost import --data-dir "$DD" "$BATS_TEST_TMPDIR/a.csv"
    run -0 pave cost anomalies --data-dir "$DD" -o json
    [ "$(jq '.items | length' <<<"$output")" = 1 ]
    [ "$(jq -r '.items[0].service' <<<"$output")" = EC2 ]
    [ "$(jq -r '.items[0].date' <<<"$output")" = 2024-10-12 ]
    [ "$(jq -r '.items[0].delta' <<<"$output")" = 80.000000 ]
    [ "$(jq -r '.items[0].top | map(.key) | index("i-spike") != null' <<<"$output")" = true ]
    run -0 pave cost anomalies --data-dir "$DD"
    [[ "$output" == *"resource 'i-spike' +80.00"* ]]
    run -0 pave cost anomalies --data-dir "$DD" --threshold 999 -o csv
    [ "${#lines[@]}" = 1 ]
    [ "${lines[0]}" = "date,service,spend,baseline,score,explanation" ]
    run -2 pave cost anomalies --data-dir "$DD" --days 1
}

@test "cost: every report answers on an empty store" {
    local c
    for c in "report --by team --split" untagged trend commitments recommend anomalies \
        "budget list" "budget check" "split list"; do
        # shellcheck disable=SC2086
        run -0 pave cost $c --data-dir "$DD"
    done
    [[ "$output" == *"no split rules"* ]]
    run -0 pave cost recommend --data-dir "$DD"
    [[ "$output" == *"pave cost import FILE"* ]]
}

@test "cost API: reports, budgets (team members only, audited) and errors" {
    api admin GET "/api/v1/cost/report?split=true&period=2024-09"
    expect_status 200
    [ "$(jq -r '[.items[].team] | index("payments") != null' <<<"$API_BODY")" = true ]
    [ "$(jq -r '.items[-1].team' <<<"$API_BODY")" = unallocated ]
    api admin GET "/api/v1/cost/untagged?by=service"
    expect_status 200
    local want
    want=$(python3 -c "print('%.2f' % ($(py_untagged "$DATA/focus1.0_sample_1000.csv") + 1.682309))")
    [ "$(python3 -c "print('%.2f' % $(jq -r .total_billed <<<"$API_BODY"))")" = "$want" ]
    api admin GET "/api/v1/cost/trend?interval=monthly&by=team"
    expect_status 200
    api admin GET /api/v1/cost/commitments
    expect_status 200
    api admin GET "/api/v1/cost/recommendation?days=30&discount=30"
    expect_status 200
    [ "$(jq '.assumptions | length' <<<"$API_BODY")" -ge 4 ]
    api admin GET /api/v1/cost/anomalies
    expect_status 200
    api none GET /api/v1/cost/report
    expect_status 401
    api admin GET "/api/v1/cost/report?period=2024"
    expect_status 400
    api bob PUT /api/v1/cost/budgets/payments -d '{"amount": 100}'
    expect_status 403
    api alice PUT /api/v1/cost/budgets/payments -d '{"amount": "3.50", "alert_pct": 75}'
    expect_status 200
    api alice PUT /api/v1/cost/budgets/payments -d '{"amount": -1}'
    expect_status 400
    api admin GET "/api/v1/cost/budgets?period=2024-09"
    expect_status 200
    [ "$(jq -r '.items[] | select(.team=="payments") | .state' <<<"$API_BODY")" = over ]
    api admin GET "/api/v1/audit?kind=budget&limit=100"
    expect_status 200
    [[ "$API_BODY" == *cost.budget.set* ]]
}

@test "cost portal: /cost shows team spend as SVG, budgets with state, and /cost.csv exports" {
    local jar="$BATS_TEST_TMPDIR/jar"
    curl -fsS -o /dev/null -c "$jar" --data-urlencode "token=$ADMIN_TOKEN" "$PAVE_SERVER/login"
    api admin PUT /api/v1/cost/budgets/identity -d '{"amount": 1000}'
    expect_status 200
    run -0 curl -fsS -b "$jar" "$PAVE_SERVER/cost?period=2024-09"
    [[ "$output" == *"<svg"* ]]
    [[ "$output" == *'id="team-chart"'* ]]
    [[ "$output" == *"<title id=\"trend-chart-title\">"* ]]
    [[ "$output" == *">payments<"* ]]
    [[ "$output" == *">identity<"* ]]
    [[ "$output" == *">unallocated<"* ]]
    [[ "$output" == *'id="untagged-accounts"'* ]]
    [[ "$output" == *"badge-ok"* ]]
    [[ "$output" == *'id="assumptions"'* ]]
    run -0 curl -fsS -b "$jar" "$PAVE_SERVER/cost.csv?period=2024-09"
    [[ "${lines[0]}" == team,direct_billed,allocated_billed,* ]]
    [[ "$output" == *"payments,"* ]]
    run -0 curl -sS -o /dev/null -w '%{http_code}' -b "$jar" "$PAVE_SERVER/cost?period=x%3Cscript"
    [ "$output" = 400 ]
    run -0 curl -sS -o /dev/null -w '%{http_code}' "$PAVE_SERVER/cost"
    [ "$output" = 303 ]
}

@test "cost portal: without billing data /cost says how to import" {
    local data="$E2E_ROOT/emptydata" jar="$BATS_TEST_TMPDIR/jar2" token page rc=0 rc2
    mkdir -p "$BATS_TEST_TMPDIR/nosamples"
    PAVE_DEMO_BILLING="$BATS_TEST_TMPDIR/nosamples" e2e_server_launch empty "$data" --demo
    local run2="$SRV_RUN" url="http://127.0.0.1:$SRV_PORT"
    token=$(cat "$data/admin.token")
    curl -fsS -o /dev/null -c "$jar" --data-urlencode "token=$token" "$url/login"
    page=$(curl -fsS -b "$jar" "$url/cost") || rc=1
    rc2=$(e2e_server_terminate "$run2") || rc=1
    [ "$rc" = 0 ] && [ "$rc2" = 0 ]
    e2e_no_sanitizer_output "$run2/stderr"
    [[ "$page" == *'id="no-data"'* ]]
    [[ "$page" == *"pave cost import FILE"* ]]
}

@test "cost budget: the server checks budgets by itself and records the alert" {
    local data="$E2E_ROOT/budgetdata" csv="$BATS_TEST_TMPDIR/b.csv" rc=0 rc2 i alert=""
    mkdir -p "$data"
    printf 'BillingPeriodStart,ChargePeriodStart,BilledCost,BillingAccountId,Tags\n' >"$csv"
    printf '2024-10-01,2024-10-0%d,3,A,"team: payments"\n' 1 2 3 >>"$csv"
    run -0 pave cost import --data-dir "$data" "$csv"
    run -0 pave cost budget set --data-dir "$data" payments 5
    PAVE_DEMO_BILLING="$BATS_TEST_TMPDIR/none" e2e_server_launch budget "$data"
    local run2="$SRV_RUN"
    # the first round of the background checks runs at start: poll for the stored alert
    for i in $(seq 1 100); do
        alert=$(sqlite3 "$data/pave.db" \
            "SELECT message FROM cost_alerts WHERE kind = 'budget' AND key = 'payments'") || true
        [ -n "$alert" ] && break
        sleep 0.1
    done
    rc2=$(e2e_server_terminate "$run2") || rc=1
    [ "$rc" = 0 ] && [ "$rc2" = 0 ]
    e2e_no_sanitizer_output "$run2/stderr"
    [[ "$alert" == *"team 'payments' is over its 5.00 budget"* ]]
}

@test "demo: the organization is loaded, pave org can explains, tags check finds the sandbox's prod resources" {
    run -0 pave org tree --data-dir "$E2E_DATA" -o json
    [ "$(jq -r '[.. | objects | select(.kind? == "account") | .name] | sort | join(",")' <<<"$output")" = \
        "legacy,prod,sandbox" ]
    run -1 pave org can sandbox ec2:RunInstances --context aws:RequestedRegion=ap-south-1 \
        --data-dir "$E2E_DATA"
    [ "${lines[0]}" = deny ]
    [[ "$output" == *"'OnlyEuropeanRegions'"*"'SandboxRegions'"*"ou 'Sandbox'"* ]]
    run -0 pave org can sandbox ec2:RunInstances --context aws:RequestedRegion=eu-west-1 \
        --data-dir "$E2E_DATA"
    [ "${lines[0]}" = allow ]
    run -1 pave org tags check --data-dir "$E2E_DATA" -o json
    [ "$(jq '[.items[] | select(.account == "18938484842")] | length > 0' <<<"$output")" = true ]
    [ "$(jq '[.items[] | select(.account != "18938484842")] | length' <<<"$output")" = 0 ]
}
