#!/usr/bin/env bats
# `pave org` through the real binary: AWS Organizations CLI outputs (tests/e2e/fixtures/org)
# imported into a local store, `org can` allow / explicit deny / implicit deny with the deciding
# statement and level, `org tree` and `org policies`, refusals of malformed documents, and tag
# policies checked against the billing samples imported with `pave cost import`. No server.

bats_require_minimum_version 1.5.0

setup_file() {
    load helpers
    e2e_sandbox
}

setup() {
    load helpers
    cd "$E2E_CWD"
    FX="$REPO/tests/e2e/fixtures/org"
    DD="$BATS_TEST_TMPDIR/pave"
}

teardown() {
    e2e_check_sanitizer_logs
}

# Imports the whole AWS-shaped organization of the fixtures into $DD.
import_aws() {
    run -0 pave org import -d "$DD" "$FX/list-roots.json" "$FX/ous-root.json" \
        "$FX/ous-workloads.json" "$FX/accounts-workloads.json" "$FX/accounts-security.json" \
        "$FX"/policy-*.json "$FX"/targets-*.json
    run -0 pave org import -d "$DD" --parent ou-a1b2-sbox3333 "$FX/accounts-sandbox.json"
}

@test "org import: AWS CLI outputs build the tree with attached policies" {
    import_aws
    run -0 pave org tree -d "$DD"
    [[ "${lines[0]}" == "root Root (r-a1b2)  [FullAWSAccess, DenyLeaveOrganization, OrgTags (tag)]" ]]
    [[ "$output" == *"    ou Sandbox (ou-a1b2-sbox3333)  [SandboxStorageOnly]"* ]]
    [[ "$output" == *"      account sandbox (18938484842)  [FullAWSAccess]"* ]]
    run -0 pave org tree -d "$DD" -o json
    [ "$(jq -r '.roots[0].children | map(.name) | join(",")' <<<"$output")" = "Security,Workloads" ]
    [ "$(jq -r '.orphans | length' <<<"$output")" = 0 ]
    run -0 pave org policies -d "$DD" -o json
    [ "$(jq -r '.items | length' <<<"$output")" = 7 ]
    [ "$(jq -r '.items[] | select(.name=="RegionLock") | .targets[0].name' <<<"$output")" = Workloads ]
    run -0 pave org policies show RegionLock -d "$DD" -o json
    [ "$(jq -r '.document.Statement[0].Sid' <<<"$output")" = DenyOutsideApprovedRegions ]
}

@test "org import: re-importing is idempotent" {
    import_aws
    run -0 pave org tree -d "$DD" -o json
    local before="$output"
    import_aws
    run -0 pave org tree -d "$DD" -o json
    [ "$output" = "$before" ]
    run -0 pave org import -d "$DD" "$FX/targets-full.json"
    run -0 pave org policies -d "$DD" -o json
    [ "$(jq -r '.items[] | select(.name=="FullAWSAccess") | .targets | length' <<<"$output")" = 7 ]
}

@test "org can: allow names the statement at every level; exit 0" {
    import_aws
    run -0 pave org can -d "$DD" prod ec2:RunInstances --context aws:RequestedRegion=eu-west-1
    [ "${lines[0]}" = allow ]
    [[ "${lines[1]}" == *"FullAWSAccess"*"account 'prod' (11353890204)"* ]]
    run -0 pave org can -d "$DD" 11353890204 ec2:RunInstances -c aws:RequestedRegion=us-west-2 -o json
    [ "$(jq -r '.decision' <<<"$output")" = allow ]
    [ "$(jq -r '.levels | map(.allowed_by.policy) | join(",")' <<<"$output")" = \
        "FullAWSAccess,FullAWSAccess,FullAWSAccess" ]
}

@test "org can: explicit deny wins and is named with where it is attached; exit 1" {
    import_aws
    run -1 pave org can -d "$DD" prod ec2:RunInstances --context aws:RequestedRegion=ap-south-1
    [ "${lines[0]}" = deny ]
    [[ "${lines[1]}" == "explicitly denied by statement 'DenyOutsideApprovedRegions' (#0) of policy 'RegionLock' (p-regionlock1) attached to ou 'Workloads' (ou-a1b2-wkld1111)" ]]
    run -1 pave org can -d "$DD" legacy organizations:LeaveOrganization -o json
    [ "$(jq -r '.statement.sid' <<<"$output")" = DenyLeaveOrg ]
    [ "$(jq -r '.statement.level.kind + " " + .statement.level.id' <<<"$output")" = "root r-a1b2" ]
    # NotAction: iam is outside the region lock
    run -0 pave org can -d "$DD" prod iam:CreateRole -c aws:RequestedRegion=ap-south-1
    # a resource condition: audit buckets are protected except for the OrgAdmin role
    run -1 pave org can -d "$DD" data s3:DeleteBucket arn:aws:s3:::audit-logs \
        -c aws:RequestedRegion=eu-west-1 -c aws:PrincipalArn=arn:aws:iam::85742851457:role/Dev
    [[ "${lines[1]}" == *"'ProtectAuditBuckets' (#1)"* ]]
    run -0 pave org can -d "$DD" data s3:DeleteBucket arn:aws:s3:::audit-logs \
        -c aws:RequestedRegion=eu-west-1 -c aws:PrincipalArn=arn:aws:iam::85742851457:role/OrgAdmin
}

@test "org can: a level without a matching Allow is an implicit deny naming that level" {
    import_aws
    run -1 pave org can -d "$DD" sandbox ec2:RunInstances -c aws:RequestedRegion=eu-west-1 -o json
    [ "$(jq -r '.decision' <<<"$output")" = deny ]
    [ "$(jq -r '.statement' <<<"$output")" = null ]
    [ "$(jq -r '.missing_level.name + " " + .missing_level.id' <<<"$output")" = "Sandbox ou-a1b2-sbox3333" ]
    run -0 pave org can -d "$DD" sandbox s3:PutObject -c aws:RequestedRegion=eu-west-1
    [[ "$output" == *"Sandbox (ou-a1b2-sbox3333): Allow statement 'SandboxStorageOnly'"* ]]
}

@test "org can: usage errors exit 2, unknown accounts say what to do" {
    import_aws
    run -2 pave org can -d "$DD" prod
    [[ "$output" == *"needs ACCOUNT and ACTION"* ]]
    run -2 pave org can -d "$DD" prod s3:GetObject --context novalue
    run -1 pave org can -d "$DD" nobody s3:GetObject
    [[ "$output" == *"no account 'nobody'"*"pave org tree"* ]]
    run -2 pave org frobnicate
}

@test "org import: malformed policies are refused with the path, nothing is stored" {
    run -1 pave org import -d "$DD" "$FX/list-roots.json" "$FX/bad-operator.json"
    [[ "$output" == *"bad-operator.json:4:"*"Statement[0].Condition.StringEqualz: unknown condition operator 'StringEqualz' (did you mean 'StringEquals'?)"* ]]
    [ "$(pave org tree -d "$DD" -o json 2>/dev/null | jq -r '.roots | length')" = 0 ]
    jq 'del(.PolicyId)' "$FX/targets-full.json" >"$BATS_TEST_TMPDIR/targets.json"
    run -1 pave org import -d "$DD" "$BATS_TEST_TMPDIR/targets.json" --policy ""
    [[ "$output" == *"PolicyId"*"--policy ID"* ]]
    run -1 pave org import -d "$DD" "$FX/accounts-sandbox.json"
    [[ "$output" == *"has no parent"*"--parent"* ]]
}

@test "org import: Paved's own YAML shape replaces the organization" {
    import_aws
    run -0 pave org import -d "$DD" "$FX/org.yaml"
    [[ "$output" == *"(replaced the organization)"* ]]
    run -0 pave org tree -d "$DD" -o json
    [ "$(jq -r '.roots[0].id' <<<"$output")" = r-demo ]
    run -0 pave org can -d "$DD" sandbox ec2:RunInstances
    run -1 pave org can -d "$DD" legacy s3:ListBuckets -c aws:PrincipalArn=arn:aws:iam::123412340534:root
    [[ "$output" == *"'DenyRootUser'"*"NoRootUser"* ]]
}

@test "org tags check: billing resources against inherited tag policies" {
    DATA="${BILLING_DATA:-$REPO/tests/data/billing}"
    [ -f "$DATA/focus1.0_sample_1000.csv" ] || skip "no billing samples at $DATA"
    import_aws
    run -0 pave cost import -d "$DD" "$DATA/focus1.0_sample_1000.csv" \
        "$DATA/aws_cur_legacy_sample_anonymous.csv"
    run -1 pave org tags check -d "$DD" -o json
    local s
    s=$(jq -c '.summary' <<<"$output")
    [ "$(jq -r '.resources' <<<"$s")" = 842 ]
    [ "$(jq -r '.compliant + .non_compliant + .not_enforced' <<<"$s")" = 842 ]
    [ "$(jq -r '.non_compliant' <<<"$s")" = "$(jq -r '.items | length' <<<"$output")" ]
    # the prod account: PeoriaData and Tempe* business units comply, others do not
    run -1 pave org tags check -d "$DD" --account prod -o json
    [ "$(jq -r '[.items[].account] | unique | join(",")' <<<"$output")" = 11353890204 ]
    [ "$(jq -r '[.items[].reasons[]] | map(select(test("business_unit.*allowed: PeoriaData, Tempe\\*"))) | length > 0' <<<"$output")" = true ]
    [ "$(jq -r '[.items[] | select(.reasons[] | test("is .(PeoriaData|TempeAI).,"))] | length' <<<"$output")" = 0 ]
    # the data account overrides business_unit at the account level
    run -1 pave org tags check -d "$DD" --account data -o csv
    [ "${lines[0]}" = "resource,account,type,enforced,reasons" ]
    [[ "$output" == *"allowed: PasigIT, DaytonAI"* ]]
    # legacy (Security OU) has no resource ids in the billing data: nothing to check
    run -0 pave org tags check -d "$DD" --account legacy
    [[ "$output" == *"0 resources"* ]]
}

@test "org tags check: a resources file, key capitalization and enforced_for" {
    import_aws
    run -1 pave org tags check -d "$DD" --resources "$FX/resources.json"
    [[ "$output" == *"tag key 'costcenter' must be spelled 'CostCenter'"* ]]
    [[ "$output" == *"tag 'environment' is 'qa', allowed: dev, staging, prod"* ]]
    [[ "$output" == *"4 resources: 1 compliant, 2 non-compliant (0 of an enforced type), 1 not enforced"* ]]
}
