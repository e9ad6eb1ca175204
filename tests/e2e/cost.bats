#!/usr/bin/env bats
# `pave cost import` and `pave cost report` through the real binary on the real sample exports
# (tests/data/billing, a copy of the shared test data): totals match an independent sum of each file, re-importing replaces,
# malformed rows are reported by line and keep their period out. No server: the store is local.

bats_require_minimum_version 1.5.0

setup_file() {
    load helpers
    e2e_sandbox
}

setup() {
    load helpers
    cd "$E2E_CWD"
    DATA="${BILLING_DATA:-$REPO/tests/data/billing}"
    [ -f "$DATA/focus1.0_sample_1000.csv" ] || skip "no billing samples at $DATA"
    DD="$BATS_TEST_TMPDIR/pave"
}

teardown() {
    e2e_check_sanitizer_logs
}

# Independent sum of a CSV column with python's csv module, to 2 decimals.
pysum() {
    python3 -c 'import csv,sys; from decimal import Decimal as D
print("%.2f" % sum(D(r[sys.argv[2]]) for r in csv.DictReader(open(sys.argv[1])) if r[sys.argv[2]] not in ("", "NULL")))' "$1" "$2"
}

@test "cost import: FOCUS and CUR samples import and totals match the files" {
    run -0 pave cost import --data-dir "$DD" "$DATA/focus1.0_sample_1000.csv" \
        "$DATA/aws_cur_legacy_sample_anonymous.csv"
    [[ "$output" == *"focus, 1000 rows"* ]]
    [[ "$output" == *"aws-cur, 1281 rows"* ]]
    local got
    got=$(pave cost report --data-dir "$DD" --by team --period 2024-09 -o json 2>/dev/null |
        jq -r '.total_billed_cost | tonumber')
    local oct want
    oct=$(pave cost report --data-dir "$DD" --by team --period 2024-10 -o json 2>/dev/null |
        jq -r '.total_billed_cost | tonumber')
    want=$(pysum "$DATA/focus1.0_sample_1000.csv" BilledCost)
    [ "$(python3 -c "print('%.2f' % ($got + $oct))")" = "$want" ]
    got=$(pave cost report --data-dir "$DD" --by service --period 2023-11 -o json 2>/dev/null |
        jq -r '.total_billed_cost | tonumber')
    want=$(pysum "$DATA/aws_cur_legacy_sample_anonymous.csv" lineItem/UnblendedCost)
    [ "$(python3 -c "print('%.2f' % $got)")" = "$want" ]
}

@test "cost import: re-importing a month replaces it (no double counting)" {
    run -0 pave cost import --data-dir "$DD" "$DATA/aws_cur_legacy_sample_anonymous.csv"
    gzip -c "$DATA/aws_cur_legacy_sample_anonymous.csv" >"$BATS_TEST_TMPDIR/cur.csv.gz"
    run -0 pave cost import --data-dir "$DD" "$BATS_TEST_TMPDIR/cur.csv.gz"
    [[ "$output" == *"1281 rows"* ]]
    run -0 pave cost report --data-dir "$DD" --by env -o csv
    [ "${lines[0]}" = "env,in_catalog,rows,billed_cost,effective_cost,currency" ]
    [[ "${lines[1]}" == unallocated,false,1281,1.682309,* ]]
}

@test "cost import: malformed rows are reported by line and the period is not imported" {
    printf 'BillingPeriodStart,ChargePeriodStart,BilledCost,BillingAccountId,Tags\n' \
        >"$BATS_TEST_TMPDIR/b.csv"
    printf '2024-10-01,2024-10-02,5,A,"team: payments"\n2024-10-01,2024-10-02,five,A,\n' \
        >>"$BATS_TEST_TMPDIR/b.csv"
    run -1 pave cost import --data-dir "$DD" "$BATS_TEST_TMPDIR/b.csv"
    [[ "$output" == *"b.csv:3: BilledCost 'five' is not a number"* ]]
    [[ "$output" == *"NOT imported"* ]]
    run -0 pave cost report --data-dir "$DD" --by team -o csv
    [ "${#lines[@]}" = 1 ]
    run -0 pave cost import --data-dir "$DD" --allow-malformed "$BATS_TEST_TMPDIR/b.csv"
    run -0 pave cost report --data-dir "$DD" --by team -o csv
    [[ "${lines[1]}" == payments,false,1,5.000000,* ]]
}

@test "cost: usage errors exit 2" {
    run -2 pave cost
    run -2 pave cost report --data-dir "$DD" --by colour
    run -2 pave cost import --data-dir "$DD"
    run -1 pave cost import --data-dir "$DD" /nonexistent.csv
    [[ "$output" == *"cannot open"* ]]
}
