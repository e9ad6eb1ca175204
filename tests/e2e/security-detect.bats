#!/usr/bin/env bats
# Security event sources and built-in detections through the real server (`pave server
# --telemetry-config`): the detect transform turns the sshd failure bursts of the real sample
# tests/data/logs/loghub_Linux_2k.log into builtin.failed-logins alerts; the file source's
# `format: auditd` joins the records of an auditd event so Sigma rules that need two record
# types fire on it; a token used from a second loopback address raises exactly one
# builtin.token-new-source alert. Alerts are read with GET /api/v1/security/alerts. The agent
# has no alert book (its detect transform refuses to start), so the detections are tested in
# the server. Bounded waits only.

bats_require_minimum_version 1.5.0

setup_file() {
    load helpers
    e2e_sandbox
    local w="$E2E_ROOT/in"
    mkdir -p "$w"
    # a SYSCALL and an EXECVE record of one event (chattr -i run from /tmp), then its EOE
    cat >"$w/audit.log" <<'LOG'
type=SYSCALL msg=audit(1700000000.100:900): arch=c000003e syscall=59 success=yes exit=0 a0=55d0 a1=55d1 a2=55d2 a3=0 items=2 ppid=10 pid=11 auid=1000 uid=0 comm="chattr" exe="/tmp/x/chattr" key=(null)
type=EXECVE msg=audit(1700000000.100:900): argc=3 a0="chattr" a1="-i" a2="/etc/passwd"
type=CWD msg=audit(1700000000.100:900): cwd=2F746D702F6120622063
type=EOE msg=audit(1700000000.100:900):
LOG
    cat >"$w/telemetry.yaml" <<YAML
sources:
  - {type: platform}
  - {type: file, name: auth, path: $REPO/tests/data/logs/loghub_Linux_2k.log, parser: syslog}
  - {type: file, name: audit-sample, path: $REPO/tests/data/logs/go-libaudit_audit-rhel7.log, format: auditd, service: auditd}
  - {type: file, name: audit, path: $w/audit.log, format: auditd, service: auditd}
transforms:
  - {type: sigma, rules: $REPO/tests/data/sigma}
  - {type: detect}
sinks:
  - {type: store}
  - {type: security, when: {attribute: security.rule_ids}}
YAML
    e2e_server_launch main "$E2E_ROOT/data" --demo --telemetry-config "$w/telemetry.yaml" ||
        return 1
    export E2E_MAIN_RUN="$SRV_RUN" E2E_DATA="$SRV_DIR"
    export PAVE_SERVER="http://127.0.0.1:$SRV_PORT"
    export ADMIN_TOKEN PAVE_TOKEN
    ADMIN_TOKEN="$(cat "$E2E_DATA/admin.token")" || return 1
    PAVE_TOKEN="$ADMIN_TOKEN"
}

teardown_file() {
    load helpers
    e2e_kill_leftovers
    e2e_server_stop
}

setup() {
    load helpers
}

teardown() {
    e2e_check_sanitizer_logs
}

# Prints the alerts of RULE (admin view), one JSON object per line.
alerts_of() {
    api admin GET "/api/v1/security/alerts?limit=500"
    expect_status 200 || return 1
    jq -c --arg r "$1" '.items[] | select(.rule_id == $r)' <<<"$API_BODY"
}

# Waits (at most 30 s) until RULE has COUNT alerts.
wait_alerts() {
    local rule=$1 count=$2 _ n=0
    for _ in $(seq 1 150); do
        n=$(alerts_of "$rule" | wc -l)
        [ "$n" -ge "$count" ] && return 0
        sleep 0.2
    done
    echo "# $rule: $n alerts, wanted $count" >&2
    return 1
}

@test "detect: the sshd failure bursts of the real sample raise one alert per source" {
    # 39 sources reach 5 failures within 60 s (tests/unit/security/test_detect.c says how
    # that was computed); two of them twice, which the alert book counts on the same alert
    wait_alerts builtin.failed-logins 39
    alerts_of builtin.failed-logins >"$BATS_TEST_TMPDIR/failed"
    [ "$(wc -l <"$BATS_TEST_TMPDIR/failed")" -eq 39 ]
    [ "$(jq -r .severity "$BATS_TEST_TMPDIR/failed" | sort -u)" = high ]
    grep -q 'failed logins from 150.183.249.110 within 60s' "$BATS_TEST_TMPDIR/failed"
    grep -q 'failed logins from troi.bluesky-technologies.com within 60s' \
        "$BATS_TEST_TMPDIR/failed"
    # 210.76.59.29 failed 7 times, never 5 within a minute
    run ! grep -q '210.76.59.29' "$BATS_TEST_TMPDIR/failed"
    local id
    id=$(jq -r 'select(.summary | test("from 150.183.249.110 ")) | .id' "$BATS_TEST_TMPDIR/failed")
    api admin GET "/api/v1/security/alerts/$id"
    expect_status 200
    # the event holds the failing lines up to the one that made the burst
    jq -e '.events[0].lines | length == 5' <<<"$API_BODY"
    jq -e '.events[0].lines[0].body | test("authentication failure; .*rhost=150.183.249.110")' \
        <<<"$API_BODY"
}

@test "detect: an auditd event joined from two records fires rules of both record types" {
    wait_alerts a5b977d6-8a81-4475-91b9-49dbfcd941f7 1 # chattr -i: type EXECVE, a0, a1
    wait_alerts a39d7fa7-3fbd-4dc2-97e1-d87f546b1bbc 1 # exe in /tmp: type SYSCALL, exe
    # the joined record is in the log store, with the CWD decoded
    local _ found=""
    for _ in $(seq 1 100); do
        if grep -rqs '"audit.types":"SYSCALL,EXECVE,CWD"' "$E2E_DATA/telemetry/store"; then
            found=1
            break
        fi
        sleep 0.1
    done
    [ -n "$found" ]
    grep -rqs '"cwd":"/tmp/a b c"' "$E2E_DATA/telemetry/store"
    # the real sample's event 479 (CWD, EXECVE, PATH of auditctl) is one record too
    grep -rqs '"audit.types":"CWD,EXECVE,PATH"' "$E2E_DATA/telemetry/store"
}

@test "detect: a token used from a second address raises exactly one alert" {
    local tok
    tok=$(e2e_token_for alice)
    curl -fsS -m 10 --interface 127.0.0.1 -o /dev/null -H "Authorization: Bearer $tok" \
        "$PAVE_SERVER/api/v1/services"
    curl -fsS -m 10 --interface 127.0.0.1 -o /dev/null -H "Authorization: Bearer $tok" \
        "$PAVE_SERVER/api/v1/services"
    [ "$(alerts_of builtin.token-new-source | wc -l)" -eq 0 ]
    curl -fsS -m 10 --interface 127.0.0.2 -o /dev/null -H "Authorization: Bearer $tok" \
        "$PAVE_SERVER/api/v1/services"
    curl -fsS -m 10 --interface 127.0.0.2 -o /dev/null -H "Authorization: Bearer $tok" \
        "$PAVE_SERVER/api/v1/services"
    wait_alerts builtin.token-new-source 1
    alerts_of builtin.token-new-source >"$BATS_TEST_TMPDIR/tok"
    [ "$(wc -l <"$BATS_TEST_TMPDIR/tok")" -eq 1 ]
    jq -e '.severity == "medium" and .count == 1' "$BATS_TEST_TMPDIR/tok"
    jq -e '.summary | test("of user alice used from a new source 127.0.0.2")' \
        "$BATS_TEST_TMPDIR/tok"
    run ! grep -q "$tok" "$BATS_TEST_TMPDIR/tok"
    run ! grep -q "$tok" "$SRV_ERR"
}

@test "detect: refused tokens are logged with the client address, never the token" {
    local bad=pave_1111111111111111111111111111111111111111
    curl -sS -m 10 --interface 127.0.0.2 -o /dev/null -H "Authorization: Bearer $bad" \
        "$PAVE_SERVER/api/v1/services"
    local _
    for _ in $(seq 1 50); do
        grep -q '"body":"token refused"' "$SRV_ERR" && break
        sleep 0.1
    done
    grep '"body":"token refused"' "$SRV_ERR" | grep -q '"client.address":"127.0.0.2"'
    run ! grep -q "$bad" "$SRV_ERR"
}

@test "detect: the agent refuses the detect transform (no alert book) and says where it runs" {
    cat >"$BATS_TEST_TMPDIR/agent.yaml" <<YAML
sources:
  - {type: file, path: $REPO/tests/data/logs/loghub_Linux_2k.log, parser: syslog}
transforms:
  - {type: detect, threshold: 5, window: 60s}
sinks:
  - {type: stdout}
YAML
    run "$PAVE_BIN" agent --config "$BATS_TEST_TMPDIR/agent.yaml" \
        --data-dir "$BATS_TEST_TMPDIR/data" --check
    [ "$status" -ne 0 ]
    [[ "$output" == *"needs the security alert book"* ]]
    [[ "$output" == *"pave server --telemetry-config"* ]]
    cat >"$BATS_TEST_TMPDIR/bad.yaml" <<YAML
sources:
  - {type: file, path: /tmp/x.log, format: csv}
sinks:
  - {type: stdout}
YAML
    run "$PAVE_BIN" agent --config "$BATS_TEST_TMPDIR/bad.yaml" \
        --data-dir "$BATS_TEST_TMPDIR/data" --check
    [ "$status" -ne 0 ]
    [[ "$output" == *"format must be lines or auditd, not 'csv'"* ]]
}
