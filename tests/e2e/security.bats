#!/usr/bin/env bats
# Security alerts through the real server: `pave server --telemetry-config` tails two files into
# which the tests append real lines (tests/data/logs) and attack lines in the same formats (the
# cases of tests/unit/security/test_sigma.c), with the sample rules (--sigma-rules
# tests/data/sigma) and the built-in ones. A python3 stand-in records the webhook's POSTs.
# Checked: which rules fire on which lines, dedup (the same lines again bump the count, no new
# alert), each new alert reaches the webhook once and the alerts file, ack/close through the CLI
# are audited, a member of another team gets 403, the portal pages show the alert, a refused
# token raises the built-in detection. Bounded waits only.

bats_require_minimum_version 1.5.0

R_SSHD=e76b413a-83d0-4b94-8e4c-85db4a5b8bdc
R_PRIV_USER=0ac15ec3-d24f-4246-aa2a-3077bb1cf90e
R_CHATTR=a5b977d6-8a81-4475-91b9-49dbfcd941f7
B_SSH_ROOT=16be5dfa-49eb-48b5-a57d-67f4e407c02b
B_ROOT_SESSION=22b5a944-703d-40df-9446-5e3827eb592b
B_TOKEN=3da55e3b-e41b-4179-9376-c67f5d3b4805
B_POLICY_DELETED=55557e11-f375-45c3-923f-1019f7966376

setup_file() {
    load helpers
    e2e_sandbox || return 1
    export W="$E2E_ROOT/w"
    mkdir -p "$W"
    : >"$W/hosts.log"
    : >"$W/audit.log"
    cat >"$W/hook.py" <<'PY'
import http.server, sys
out = sys.argv[2]
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(out, "ab") as f:
            f.write(body + b"\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
PY
    export HOOK_PORT HOOK_PID
    HOOK_PORT=$(e2e_free_port) || return 1
    python3 "$W/hook.py" "$HOOK_PORT" "$W/hook.jsonl" 3>&- </dev/null >/dev/null 2>&1 &
    HOOK_PID=$!
    echo "$HOOK_PID" >"$W/hook.pid"
    local _
    for _ in $(seq 1 50); do
        e2e_port_busy "$HOOK_PORT" && break
        sleep 0.1
    done
    cat >"$W/telemetry.yaml" <<YAML
sources:
  - {type: platform}
  - {type: audit, poll_ms: 100}
  - {type: file, name: hosts, path: $W/hosts.log, parser: syslog, read_from: beginning, team: payments}
  - {type: file, name: audit, path: $W/audit.log, read_from: beginning, service: auditd}
transforms:
  - {type: sigma, builtin: true, rules: $REPO/tests/data/sigma}
sinks:
  - {type: store}
  - {type: security, when: {attribute: security.rule_ids}}
YAML
    e2e_server_launch main "$E2E_ROOT/data" --demo --telemetry-config "$W/telemetry.yaml" \
        --sigma-rules "$REPO/tests/data/sigma" \
        --alert-webhook "http://127.0.0.1:$HOOK_PORT/hook" || return 1
    export E2E_MAIN_RUN="$SRV_RUN" E2E_DATA="$SRV_DIR"
    export PAVE_SERVER="http://127.0.0.1:$SRV_PORT"
    export ADMIN_TOKEN PAVE_TOKEN ALICE_TOKEN BOB_TOKEN
    ADMIN_TOKEN="$(cat "$E2E_DATA/admin.token")" || return 1
    PAVE_TOKEN="$ADMIN_TOKEN"
    ALICE_TOKEN="$(e2e_token_for alice)" || return 1
    BOB_TOKEN="$(e2e_token_for bob)" || return 1
}

teardown_file() {
    load helpers
    [ -s "$W/hook.pid" ] && kill "$(cat "$W/hook.pid")" 2>/dev/null
    e2e_server_stop
}

setup() {
    load helpers
}

# The attack lines: syslog (RFC 3164) and raw auditd, as in test_sigma.c's cases.
append_attacks() {
    cat >>"$W/hosts.log" <<'LOG'
Jun 14 15:16:01 combo sshd[19939]: Corrupted MAC on input.
Dec 21 17:13:54 testserver useradd[1337]: new user: name=john, UID=0, GID=0, home=/home/john, shell=/bin/bash
Jun 14 15:16:02 combo sshd[19940]: Accepted publickey for root from 10.0.0.9 port 22 ssh2
LOG
    echo 'type=EXECVE msg=audit(1.000:10): argc=3 a0="chattr" a1="-i" a2="/etc/passwd"' \
        >>"$W/audit.log"
}

# Waits (at most 15 s) until the alerts of RULE have a total count of N.
wait_count() {
    local rule=$1 n=$2 got _
    for _ in $(seq 1 150); do
        api admin GET "/api/v1/security/alerts?limit=200"
        got=$(jq --arg r "$rule" '[.items[] | select(.rule_id == $r) | .count] | add // 0' \
            <<<"$API_BODY")
        [ "$got" = "$n" ] && return 0
        sleep 0.1
    done
    echo "# rule $rule: count $got, want $n; alerts: $API_BODY" >&2
    return 1
}

alert_id() {
    api admin GET "/api/v1/security/alerts?limit=200"
    jq -r --arg r "$1" '[.items[] | select(.rule_id == $r)][0].id' <<<"$API_BODY"
}

@test "security: rules are listed, built-in and from --sigma-rules; --check" {
    run -0 pave security rules -o json
    [ "$(jq '.items | length' <<<"$output")" = 18 ]
    [ "$(jq '.rejected | length' <<<"$output")" = 0 ]
    [ "$(jq -r --arg r "$B_SSH_ROOT" '.items[] | select(.id == $r) | .source' <<<"$output")" = builtin:2 ]
    run -0 pave security rules --check "$REPO/tests/data/sigma"
    [[ "$output" == *"10 loaded, 0 not loaded"* ]]
    printf 'title: broken\nlogsource: {product: linux}\ndetection: {s: {a: b}, condition: s and}\n' \
        >"$BATS_TEST_TMPDIR/bad.yml"
    printf 'title: win\nlogsource: {product: windows}\ndetection: {s: {a: b}, condition: s}\n' \
        >"$BATS_TEST_TMPDIR/win.yml"
    run -1 pave security rules --check "$BATS_TEST_TMPDIR"
    [[ "$output" == *"bad.yml"* ]]
    [[ "$output" == *"logsource product 'windows'"* ]]
    [[ "$output" == *"malformed"* ]]
    rm "$BATS_TEST_TMPDIR/bad.yml"
    run -0 pave security rules --check "$BATS_TEST_TMPDIR/win.yml"
    run -1 pave security rules --check "$BATS_TEST_TMPDIR/nope"
    [[ "$output" == *"no rules at"* ]]
}

@test "security: real lines and attack lines raise the expected alerts" {
    # the real samples: only line 898 ("session opened for user root") is a finding
    cat "$REPO/tests/data/logs/loghub_Linux_2k.log" >>"$W/hosts.log"
    [ -z "$(tail -c 1 "$W/hosts.log")" ] || echo >>"$W/hosts.log"
    cat "$REPO/tests/data/logs/go-libaudit_audit-rhel7.log" >>"$W/audit.log"
    [ -z "$(tail -c 1 "$W/audit.log")" ] || echo >>"$W/audit.log" # no final newline
    wait_count "$B_ROOT_SESSION" 1
    append_attacks
    wait_count "$R_SSHD" 1
    wait_count "$R_PRIV_USER" 1
    wait_count "$R_CHATTR" 1
    wait_count "$B_SSH_ROOT" 1
    api admin GET "/api/v1/security/alerts?limit=200"
    expect_status 200
    [ "$(jq '.items | length' <<<"$API_BODY")" = 5 ]
    [ "$(jq -r --arg r "$R_PRIV_USER" '.items[] | select(.rule_id == $r) | "\(.severity) \(.service) \(.team) \(.state)"' <<<"$API_BODY")" = "high useradd payments open" ]
    [ "$(jq -r --arg r "$R_CHATTR" '.items[] | select(.rule_id == $r) | "\(.severity) \(.service) \(.team)"' <<<"$API_BODY")" = "medium auditd null" ]
    [ "$(jq -r --arg r "$B_ROOT_SESSION" '.items[] | select(.rule_id == $r) | .summary' <<<"$API_BODY")" = "Root session opened on the console: session opened for user root by LOGIN(uid=0)" ]
    # the event is the record as the pipeline wrote it
    api admin GET "/api/v1/security/alerts/$(alert_id "$B_SSH_ROOT")"
    expect_status 200
    [[ "$(jq -r '.events[0].body' <<<"$API_BODY")" == "Accepted publickey for root from 10.0.0.9"* ]]
    # filters
    run -0 pave security alerts --severity high --service sshd -o json
    [ "$(jq '.items | length' <<<"$output")" = 1 ]
    run -0 pave security alerts list
    [[ "$output" == *"SSH login as root accepted"* ]]
}

@test "security: the same lines again bump the count, no new alert; webhook and file once each" {
    append_attacks
    wait_count "$R_SSHD" 2
    wait_count "$R_PRIV_USER" 2
    wait_count "$R_CHATTR" 2
    wait_count "$B_SSH_ROOT" 2
    api admin GET "/api/v1/security/alerts?limit=200"
    [ "$(jq '.items | length' <<<"$API_BODY")" = 5 ]
    # routing is asynchronous: wait (bounded) for the five notifications
    local _
    for _ in $(seq 1 100); do
        [ "$(wc -l <"$W/hook.jsonl" 2>/dev/null || echo 0)" -ge 5 ] && break
        sleep 0.1
    done
    [ "$(wc -l <"$W/hook.jsonl")" = 5 ]
    [ "$(jq -s 'map(.id) | unique | length' "$W/hook.jsonl")" = 5 ]
    [ "$(jq -r --arg r "$R_PRIV_USER" 'select(.rule_id == $r) | "\(.rule) \(.severity) \(.team) \(.link)"' "$W/hook.jsonl")" = "Privileged User Has Been Created high payments /security/alerts/$(alert_id "$R_PRIV_USER")" ]
    local file="$E2E_DATA/security/alerts.jsonl"
    [ "$(wc -l <"$file")" = 5 ]
    [ "$(jq -s 'map(.id) | sort' "$file")" = "$(jq -s 'map(.id) | sort' "$W/hook.jsonl")" ]
}

@test "security: ack and close through the CLI are audited; another team gets 403" {
    local id
    id=$(alert_id "$R_PRIV_USER")
    [ -n "$id" ] && [ "$id" != null ]
    # bob (identity) sees it? no: it belongs to payments
    api bob GET "/api/v1/security/alerts/$id"
    expect_status 404
    # the auditd alert has no team: bob sees it but may not close it
    local aid
    aid=$(alert_id "$R_CHATTR")
    api bob GET "/api/v1/security/alerts/$aid"
    expect_status 200
    api bob POST "/api/v1/security/alerts/$aid/close" -H 'Content-Type: application/json' \
        -d '{"comment":"not mine"}'
    expect_status 403
    # alice (payments) may
    run -0 env PAVE_TOKEN="$ALICE_TOKEN" "$PAVE_BIN" security alerts ack "$id" -m "looking at it"
    [[ "$output" == *"alert $id acknowledged"* ]]
    run -2 pave security alerts close "$id"
    [[ "$output" == *"-m COMMENT"* ]]
    run -0 pave security alerts close "$id" -m "john was the new DBA; UID fixed"
    run -1 pave security alerts close "$id" -m "again"
    [[ "$output" == *"is closed"* ]]
    run -0 pave security alerts show "$id" -o json
    [ "$(jq -r '"\(.state) \(.updated_by) \(.comment)"' <<<"$output")" = "closed admin john was the new DBA; UID fixed" ]
    run -0 pave audit list --kind security_alert -o json
    [ "$(jq -r --arg o "$id" '[.[] | select(.object == $o) | .action] | join(" ")' <<<"$output")" = "security.alert.close security.alert.ack" ]
    [ "$(jq -r --arg o "$id" '.[] | select(.object == $o and .action == "security.alert.ack") | "\(.actor) \(.detail)"' <<<"$output")" = "alice looking at it" ]
    # closed: a new occurrence is a new alert
    echo 'Dec 21 17:20:00 testserver useradd[1338]: new user: name=eve, UID=0, GID=0, home=/home/eve, shell=/bin/bash' >>"$W/hosts.log"
    wait_count "$R_PRIV_USER" 3
    api admin GET "/api/v1/security/alerts?state=open&limit=200"
    [ "$(jq --arg r "$R_PRIV_USER" '[.items[] | select(.rule_id == $r)] | length' <<<"$API_BODY")" = 1 ]
    [ "$(jq -r --arg r "$R_PRIV_USER" '.items[] | select(.rule_id == $r) | .id' <<<"$API_BODY")" != "$id" ]
}

@test "security: the portal shows the alerts, one alert and its trail, and closes it" {
    local jar="$BATS_TEST_TMPDIR/jar" page="$BATS_TEST_TMPDIR/page" id
    id=$(alert_id "$B_SSH_ROOT")
    curl -fsS -o /dev/null -c "$jar" --data-urlencode "token=$ADMIN_TOKEN" "$PAVE_SERVER/login"
    run -0 curl -sS -o "$page" -w '%{http_code}' -b "$jar" "$PAVE_SERVER/security"
    [ "$output" = 200 ]
    grep -q "SSH login as root accepted" "$page"
    grep -q 'id="severity-counts"' "$page"
    run -0 curl -sS -o "$page" -w '%{http_code}' -b "$jar" "$PAVE_SERVER/security?severity=low"
    ! grep -q "SSH login as root accepted" "$page"
    grep -q "Root session opened on the console" "$page"
    run -0 curl -sS -o "$page" -w '%{http_code}' -b "$jar" "$PAVE_SERVER/security/alerts/$id"
    [ "$output" = 200 ]
    grep -q "Accepted publickey for root" "$page"
    grep -q 'id="close-form"' "$page"
    local csrf
    csrf=$(grep -o 'name="csrf" value="[0-9a-f]*"' "$page" | head -1 | sed 's/.*value="//; s/"//')
    [ -n "$csrf" ]
    run -0 curl -sS -o /dev/null -w '%{http_code}' -b "$jar" --data-urlencode "csrf=$csrf" \
        --data-urlencode "comment=" "$PAVE_SERVER/security/alerts/$id/close"
    [ "$output" = 400 ]
    run -0 curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' -b "$jar" \
        --data-urlencode "csrf=$csrf" --data-urlencode "comment=<b>break-glass</b> test" \
        "$PAVE_SERVER/security/alerts/$id/close"
    [[ "$output" == "303 "*"/security/alerts/$id" ]]
    run -0 curl -sS -o "$page" -b "$jar" "$PAVE_SERVER/security/alerts/$id"
    grep -q "security.alert.close" "$page"
    grep -q "&lt;b&gt;break-glass&lt;/b&gt; test" "$page"
    ! grep -q 'id="close-form"' "$page"
    run -0 curl -sS -o "$page" -w '%{http_code}' -b "$jar" "$PAVE_SERVER/security/rules"
    [ "$output" = 200 ]
    grep -q "Root shell through sudo" "$page"
    run -0 curl -sS -o /dev/null -w '%{http_code}' -b "$jar" "$PAVE_SERVER/security/alerts/99999"
    [ "$output" = 404 ]
}

@test "security: a refused token raises the built-in detection" {
    api garbage GET /api/v1/services
    expect_status 401
    wait_count "$B_TOKEN" 1
    api admin GET "/api/v1/security/alerts/$(alert_id "$B_TOKEN")"
    [ "$(jq -r '"\(.severity) \(.service)"' <<<"$API_BODY")" = "medium pave" ]
}

@test "security: usage errors exit 2, unknown ids 404" {
    run -2 pave security alerts ack
    run -2 pave security alerts show abc
    run -2 pave security nope
    [[ "$output" == *"pave security --help"* ]]
    run -1 pave security alerts show 99999
    [[ "$output" == *"no alert 99999"* ]]
    api none GET /api/v1/security/alerts
    expect_status 401
    api admin GET "/api/v1/security/alerts?state=weird"
    expect_status 400
    api admin GET /api/v1/security/fim
    # no --fim-path: either no FIM (503) or an empty baseline
    [ "$API_STATUS" = 503 ] || [ "$API_STATUS" = 200 ]
}

@test "security: deleting a guard-rail policy (the audit log) raises the built-in detection" {
    api admin GET "/api/v1/security/alerts?limit=200"
    [ "$(jq --arg r "$B_POLICY_DELETED" '[.items[] | select(.rule_id == $r)] | length' <<<"$API_BODY")" = 0 ]
    local name
    name=$(pave policy list -o json | jq -r '.items[0].name')
    [ -n "$name" ] && [ "$name" != null ]
    run -0 pave policy delete "$name"
    wait_count "$B_POLICY_DELETED" 1
    api admin GET "/api/v1/security/alerts?limit=200"
    [ "$(jq -r --arg r "$B_POLICY_DELETED" '.items[] | select(.rule_id == $r) | "\(.rule_title) \(.severity) \(.service)"' <<<"$API_BODY")" = "Guard-rail policy deleted high pave" ]
    api admin GET "/api/v1/security/alerts/$(alert_id "$B_POLICY_DELETED")"
    [ "$(jq -r '.events[0].attributes["audit.action"]' <<<"$API_BODY")" = policy.delete ]
    [ "$(jq -r '.events[0].attributes["audit.object"]' <<<"$API_BODY")" = "$name" ]
}
