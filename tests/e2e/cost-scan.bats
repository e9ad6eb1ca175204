#!/usr/bin/env bats
# `pave cost scan` through the real binary: group sums straight from billing files match an
# independent python sum and `pave cost import` + `report`, every thread count prints the same
# thing (PAVE_SCAN_MIN_RANGE=1 splits even the small samples into ranges), gzip reads the same,
# malformed rows keep their line numbers across ranges. No server, no store.

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
    FOCUS="$DATA/focus1.0_sample_1000.csv"
    CUR="$DATA/aws_cur_legacy_sample_anonymous.csv"
}

teardown() {
    e2e_check_sanitizer_logs
}

# Independent sum of a CSV column with python's csv module, to 6 decimals.
pysum() {
    python3 -c 'import csv,sys; from decimal import Decimal as D
print("%.6f" % sum(D(r[sys.argv[2]]) for r in csv.DictReader(open(sys.argv[1], encoding="utf-8-sig")) if r[sys.argv[2]] not in ("", "NULL")))' "$1" "$2"
}

@test "cost scan: totals match an independent sum of each sample" {
    run -0 pave cost scan "$FOCUS" --by team -o json
    [ "$(jq -r .rows <<<"$output")" = 1000 ]
    [ "$(jq -r .malformed <<<"$output")" = 0 ]
    [ "$(jq -r .total_billed_cost <<<"$output")" = "$(pysum "$FOCUS" BilledCost)" ]
    run -0 pave cost scan "$CUR" --by service,env -o json
    [ "$(jq -r .rows <<<"$output")" = 1281 ]
    [ "$(jq -r .total_billed_cost <<<"$output")" = "$(pysum "$CUR" lineItem/UnblendedCost)" ]
    # the per-group sums add up to the total
    [ "$(jq -r '[.items[].billed_cost | tonumber] | add * 1000000 | round' <<<"$output")" = \
        "$(jq -r '.total_billed_cost | tonumber * 1000000 | round' <<<"$output")" ]
}

@test "cost scan: --threads 1 and 4 print the same groups, and gzip reads the same" {
    local by out1 out4
    for by in team service,env team,service,env,cost-center; do
        out1=$(PAVE_SCAN_MIN_RANGE=1 pave cost scan "$FOCUS" "$CUR" --by "$by" --threads 1 -o csv)
        out4=$(PAVE_SCAN_MIN_RANGE=1 pave cost scan "$FOCUS" "$CUR" --by "$by" --threads 4 -o csv)
        [ -n "$out1" ]
        [ "$out1" = "$out4" ]
    done
    gzip -c "$FOCUS" >"$BATS_TEST_TMPDIR/f.csv.gz"
    [ "$(pave cost scan "$BATS_TEST_TMPDIR/f.csv.gz" --by env -o csv)" = \
        "$(PAVE_SCAN_MIN_RANGE=1 pave cost scan "$FOCUS" --by env --threads 3 -o csv)" ]
}

@test "cost scan: the same sums as cost import + cost report" {
    local dd="$BATS_TEST_TMPDIR/pave"
    run -0 pave cost import --data-dir "$dd" "$FOCUS"
    run -0 pave cost report --data-dir "$dd" --by env -o csv
    local want
    want=$(tail -n +2 <<<"$output" | cut -d, -f1,3,4 | sort)
    run -0 pave cost scan "$FOCUS" --by env -o csv
    [ "$(tail -n +2 <<<"$output" | cut -d, -f1,2,3 | sort)" = "$want" ]
}

@test "cost scan: malformed rows are left out and named by line across ranges" {
    local f="$BATS_TEST_TMPDIR/b.csv"
    python3 - "$f" <<'PY'
import sys
with open(sys.argv[1], "w", newline="") as o:
    o.write("BillingPeriodStart,ChargePeriodStart,BilledCost,BillingAccountId,Tags,Note\n")
    line = 2
    for i in range(300):
        if i == 250:
            o.write('2024-10-01,2024-10-02,oops,A,,x\n')
            bad = line
        else:
            o.write('2024-10-01,2024-10-02,1.5,A,"{""team"":""t%d""}","multi\nline"\n' % (i % 3))
        line += 1 if i == 250 else 2
    print(bad, file=sys.stderr)
PY
    local want=$((2 + 250 * 2))
    for t in 1 3; do
        run -0 --separate-stderr env PAVE_SCAN_MIN_RANGE=1 "$PAVE_BIN" cost scan "$f" --threads "$t" -o json
        [ "$(jq -r .rows <<<"$output")" = 300 ]
        [ "$(jq -r .malformed <<<"$output")" = 1 ]
        [ "$(jq -r .total_billed_cost <<<"$output")" = "448.500000" ]
        [[ "$stderr" == *"b.csv:$want: BilledCost 'oops' is not a number"* ]]
    done
}

@test "cost scan: usage errors exit 2, missing files 1, --help 0" {
    run -2 pave cost scan
    run -2 pave cost scan "$FOCUS" --by colour
    [[ "$output" == *"use team, service, env or cost-center"* ]]
    run -2 pave cost scan "$FOCUS" --threads 0
    run -1 pave cost scan /nonexistent.csv
    [[ "$output" == *"cannot open"* ]]
    run -0 pave cost scan --help
    [[ "$output" == *usage:* ]]
}
