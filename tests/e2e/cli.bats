#!/usr/bin/env bats
# The pave command line: help, usage errors, configuration (env, login, config file),
# completion, and the organization commands against a real server.

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

# A loopback URL where nothing listens (port 1 needs root to bind; nobody does).
DOWN_URL="http://127.0.0.1:1"

COMMANDS="up server init templates login whoami catalog team user env token audit build runs secret artifacts render deploy status rollback scale deployments logs agent policy security ca cost org completion version"
VERBS="catalog:apply catalog:validate catalog:list catalog:show catalog:delete catalog:schema
templates:list templates:show runs:list runs:show runs:log runs:cancel runs:retry
secret:set secret:list secret:delete artifacts:list artifacts:show artifacts:verify artifacts:gc
team:list team:show team:create team:delete team:add-member team:remove-member
user:list user:create env:list env:create token:create token:list token:revoke
audit:list completion:bash policy:apply policy:list policy:show policy:delete policy:check
policy:exceptions policy:report policy:scan policy:decisions
security:rules security:alerts security:fim
ca:init ca:list ca:show ca:issue ca:revoke ca:crl ca:export-root-key
cost:import cost:report cost:scan
org:import org:tree org:policies org:can org:tags"

@test "--help exits 0 with usage for every command, without contacting a server" {
    local c failed=0
    for c in $COMMANDS; do
        run env PAVE_SERVER="$DOWN_URL" "$PAVE_BIN" "$c" --help
        if [ "$status" != 0 ] || [[ "$output" != *usage:* ]]; then
            echo "pave $c --help -> $status: $output"
            failed=1
        fi
    done
    [ "$failed" = 0 ]
}

@test "--help exits 0 with usage for every verb" {
    local cv failed=0
    for cv in $VERBS; do
        run env PAVE_SERVER="$DOWN_URL" "$PAVE_BIN" "${cv%%:*}" "${cv#*:}" --help
        if [ "$status" != 0 ] || [[ "$output" != *usage:* ]]; then
            echo "pave ${cv%%:*} ${cv#*:} --help -> $status: $output"
            failed=1
        fi
    done
    [ "$failed" = 0 ]
}

@test "the help and completion tables here match the binary's command list" {
    run -0 pave --help
    local listed
    listed=$(sed -n '/^commands:/,/^$/p' <<<"$output" | awk 'NF && !/^commands:/ {print $1}' | xargs)
    [ "$listed" = "$COMMANDS" ]
}

@test "pave --help, pave help CMD and pave -h print usage and exit 0" {
    run -0 pave --help
    [[ "$output" == *"usage: pave <command>"* ]]
    [[ "$output" == *"catalog"* ]]
    run -0 pave -h
    run -0 pave help catalog
    [[ "$output" == *"usage: pave catalog"* ]]
}

@test "pave without arguments prints usage and exits 2" {
    run -2 pave
    [[ "$output" == *"usage: pave"* ]]
}

@test "an unknown command exits 2 with a did-you-mean suggestion" {
    run -2 pave catalgo list
    [[ "$output" == *"unknown command 'catalgo'; did you mean 'catalog'?"* ]]
    run -2 pave wohami
    [[ "$output" == *"did you mean 'whoami'?"* ]]
    run -2 pave zzzzzzzz
    [[ "$output" == *"unknown command 'zzzzzzzz'"* ]]
}

@test "an unknown verb exits 2" {
    run -2 pave catalog frobnicate
    [[ "$output" == *"unknown verb 'catalog frobnicate'"* ]]
    run -2 pave team frobnicate
    run -2 pave token frobnicate
    run -2 pave audit frobnicate
}

@test "an unknown flag exits 2 and names the flag" {
    run -2 pave catalog list --bogus
    [[ "$output" == *"unknown flag '--bogus'"* ]]
    run -2 pave team list -z
    [[ "$output" == *"unknown flag '-z'"* ]]
    run -2 pave server --no-such-flag
    run -2 pave catalog apply
    [[ "$output" == *"apply needs -f"* ]]
    run -2 pave catalog list --limit
    [[ "$output" == *"needs a value"* ]]
}

@test "an unknown output format exits 2" {
    run -2 pave catalog list -o xml
    [[ "$output" == *"unknown output format 'xml'"* ]]
}

@test "version prints the version" {
    run -0 pave version
    [[ "$output" =~ ^pave\ [0-9]+\.[0-9]+\.[0-9]+ ]]
    run -0 pave --version
    [[ "$output" =~ ^pave\ [0-9]+\.[0-9]+\.[0-9]+ ]]
}

@test "server down: exit 1 with a hint to start it" {
    run -1 env PAVE_SERVER="$DOWN_URL" "$PAVE_BIN" catalog list
    [[ "$output" == *"cannot reach $DOWN_URL"* ]]
    [[ "$output" == *"is the server running?"* ]]
    run -1 env PAVE_SERVER="$DOWN_URL" "$PAVE_BIN" whoami
}

@test "a refused token: exit 1 with a hint to log in" {
    run -1 env PAVE_TOKEN=pave_0000000000000000000000000000000000000000 "$PAVE_BIN" whoami
    [[ "$output" == *"invalid token"* ]]
    [[ "$output" == *"pave login"* ]]
}

@test "PAVE_SERVER and PAVE_TOKEN override the config file" {
    local xdg="$BATS_TEST_TMPDIR/xdg"
    mkdir -p "$xdg/pave"
    printf 'server = %s\ntoken = %s\n' "$DOWN_URL" "pave_0000000000000000000000000000000000000000" \
        >"$xdg/pave/config"
    chmod 600 "$xdg/pave/config"
    # The config alone points nowhere.
    run -1 env -u PAVE_SERVER -u PAVE_TOKEN XDG_CONFIG_HOME="$xdg" "$PAVE_BIN" whoami
    # The environment wins.
    run -0 env XDG_CONFIG_HOME="$xdg" PAVE_SERVER="$PAVE_SERVER" PAVE_TOKEN="$ALICE_TOKEN" \
        "$PAVE_BIN" whoami -o json
    [ "$(jq -r .user <<<"$output")" = alice ]
    [ "$(jq -r .server <<<"$output")" = "$PAVE_SERVER" ]
    # Each one separately.
    run -0 env XDG_CONFIG_HOME="$xdg" PAVE_SERVER="$PAVE_SERVER" PAVE_TOKEN="$BOB_TOKEN" \
        "$PAVE_BIN" whoami -o json
    [ "$(jq -r .user <<<"$output")" = bob ]
}

@test "pave login writes the config with mode 0600 and later commands use it" {
    local xdg="$BATS_TEST_TMPDIR/xdg" cfg
    cfg="$xdg/pave/config"
    run -0 env -u PAVE_SERVER -u PAVE_TOKEN XDG_CONFIG_HOME="$xdg" \
        "$PAVE_BIN" login --server "$PAVE_SERVER" --token "$ALICE_TOKEN"
    [[ "$output" == *"logged in to $PAVE_SERVER as 'alice'"* ]]
    [ -f "$cfg" ]
    [ "$(stat -c %a "$cfg")" = 600 ]
    grep -qx "server = $PAVE_SERVER" "$cfg"
    grep -qx "token = $ALICE_TOKEN" "$cfg"
    run -0 env -u PAVE_SERVER -u PAVE_TOKEN XDG_CONFIG_HOME="$xdg" "$PAVE_BIN" whoami -o json
    [ "$(jq -r .user <<<"$output")" = alice ]
    run -0 env -u PAVE_SERVER -u PAVE_TOKEN XDG_CONFIG_HOME="$xdg" "$PAVE_BIN" catalog list -o json
    jq -e 'length == 3' <<<"$output"
}

@test "pave login without XDG_CONFIG_HOME writes ~/.config/pave/config" {
    local home="$BATS_TEST_TMPDIR/home"
    mkdir -p "$home"
    run -0 env -u XDG_CONFIG_HOME -u PAVE_SERVER -u PAVE_TOKEN HOME="$home" \
        "$PAVE_BIN" login --server "$PAVE_SERVER" --token "$BOB_TOKEN"
    [ "$(stat -c %a "$home/.config/pave/config")" = 600 ]
    [ "$(stat -c %a "$home/.config/pave")" = 700 ]
    run -0 env -u XDG_CONFIG_HOME -u PAVE_SERVER -u PAVE_TOKEN HOME="$home" "$PAVE_BIN" whoami -o json
    [ "$(jq -r .user <<<"$output")" = bob ]
}

@test "pave login reads the token from stdin" {
    local xdg="$BATS_TEST_TMPDIR/xdg"
    run -0 bash -c 'printf "%s\n" "$1" | env -u PAVE_TOKEN XDG_CONFIG_HOME="$2" "$3" login --server "$4"' \
        _ "$BOB_TOKEN" "$xdg" "$PAVE_BIN" "$PAVE_SERVER"
    [[ "$output" == *"as 'bob'"* ]]
    grep -qx "token = $BOB_TOKEN" "$xdg/pave/config"
}

@test "pave login with a refused token exits 1 and writes nothing" {
    local xdg="$BATS_TEST_TMPDIR/xdg"
    run -1 env -u PAVE_TOKEN XDG_CONFIG_HOME="$xdg" "$PAVE_BIN" login --server "$PAVE_SERVER" \
        --token pave_0000000000000000000000000000000000000000
    [ ! -e "$xdg/pave/config" ]
}

@test "pave completion bash is valid bash and completes commands and verbs" {
    run -0 pave completion bash
    local script=$output c
    bash -n <<<"$script"
    for c in $COMMANDS; do
        [[ "$script" == *"$c"* ]]
    done
    run -0 bash -c 'source /dev/stdin <<<"$1"
        COMP_WORDS=(pave cat); COMP_CWORD=1; _pave; echo "${COMPREPLY[*]}"
        COMP_WORDS=(pave team a); COMP_CWORD=2; _pave; echo "${COMPREPLY[*]}"
        COMP_WORDS=(pave catalog list -o); COMP_CWORD=4; _pave; echo "${COMPREPLY[*]}"' _ "$script"
    [ "${lines[0]}" = catalog ]
    [ "${lines[1]}" = add-member ]
    [ "${lines[2]}" = "table json yaml" ]
    run -2 pave completion zsh
}

@test "token create, list and revoke round trip" {
    local tok id
    run -0 --separate-stderr pave token create --name e2e-roundtrip --user alice --ttl 1h
    tok=$output
    [[ "$tok" =~ ^pave_[0-9a-f]{40}$ ]]
    [[ "$stderr" == *"for user 'alice' created; it is shown only now"* ]]
    id=$(sed -nE 's/.*token (tok_[0-9a-f]{12}) .*/\1/p' <<<"$stderr")
    [ -n "$id" ]
    run -0 pave token list -o json
    [ "$(jq -r --arg id "$id" '.[] | select(.id == $id) | .name' <<<"$output")" = e2e-roundtrip ]
    [ "$(jq -r --arg id "$id" '.[] | select(.id == $id) | .expires_at' <<<"$output")" != null ]
    # The value is never listed.
    [[ "$output" != *"$tok"* ]]
    run -0 pave token list
    [[ "$output" == *"$id"* ]]
    run -0 env PAVE_TOKEN="$tok" "$PAVE_BIN" whoami -o json
    [ "$(jq -r .user <<<"$output")" = alice ]
    run -0 pave token revoke "$id"
    [ "$output" = "token/$id revoked" ]
    run -1 env PAVE_TOKEN="$tok" "$PAVE_BIN" whoami
    [[ "$output" == *"revoked"* ]]
    [[ "$output" == *"the token was refused"* ]]
    run -0 pave token list -o json
    [ "$(jq -r --arg id "$id" '.[] | select(.id == $id) | .revoked_at' <<<"$output")" != null ]
    run -1 pave token revoke "$id"
}

@test "token create -o json prints the token and its id" {
    run -0 pave token create --name e2e-json -o json
    [[ "$(jq -r .token <<<"$output")" =~ ^pave_ ]]
    [ "$(jq -r .user <<<"$output")" = admin ]
}

@test "whoami shows the user's teams and admin flag" {
    run -0 env PAVE_TOKEN="$ALICE_TOKEN" "$PAVE_BIN" whoami
    [[ "$output" == *"user: alice"* ]]
    [[ "$output" == *"admin: false"* ]]
    [[ "$output" == *"- payments"* ]]
    run -0 env PAVE_TOKEN="$ALICE_TOKEN" "$PAVE_BIN" whoami -o json
    [ "$(jq -c .teams <<<"$output")" = '["payments"]' ]
    run -0 pave whoami -o yaml
    [[ "$output" == *"user: admin"* ]]
    [[ "$output" == *"admin: true"* ]]
}

@test "audit list -o json parses with jq and filters by kind" {
    run -0 pave audit list -o json
    jq -e 'type == "array" and length > 0' <<<"$output"
    jq -e 'all(.[]; has("id") and has("ts") and has("actor") and has("action") and has("object"))' <<<"$output"
    jq -e '[.[].id] == ([.[].id] | sort | reverse)' <<<"$output"
    run -0 pave audit list --kind service -o json
    jq -e 'length >= 3 and all(.[]; .action | startswith("service."))' <<<"$output"
    run -0 pave audit list --limit 2 -o json
    [ "$(jq length <<<"$output")" = 2 ]
    run -0 pave audit list
    [[ "${lines[0]}" =~ ^ID\ +TIME\ +ACTOR\ +ACTION ]]
}

@test "team create, show, list, add-member, remove-member and delete" {
    run -0 pave team create e2e-team --display-name "E2E Team" --description "made by cli.bats"
    [ "$output" = "team/e2e-team created" ]
    run -0 pave team create e2e-team --display-name "E2E Team" --description "made by cli.bats"
    [ "$output" = "team/e2e-team unchanged" ]
    run -0 pave team show e2e-team -o json
    [ "$(jq -r .display_name <<<"$output")" = "E2E Team" ]
    [ "$(jq -r .members <<<"$output")" = 0 ]
    run -0 pave team list
    grep -Eq '^e2e-team +E2E Team +0 +0 +made by cli.bats' <<<"$output"
    run -0 pave team add-member e2e-team bob
    [ "$output" = "membership/e2e-team/bob created" ]
    run -0 env PAVE_TOKEN="$BOB_TOKEN" "$PAVE_BIN" whoami -o json
    [ "$(jq -c '.teams | sort' <<<"$output")" = '["e2e-team","identity"]' ]
    run -0 pave team remove-member e2e-team bob
    run -0 pave team show e2e-team -o json
    [ "$(jq -r .members <<<"$output")" = 0 ]
    run -0 pave team delete e2e-team
    run -1 pave team show e2e-team
    [[ "$output" == *"not found"* ]]
}

@test "team delete is refused while the team owns services" {
    run -1 pave team delete payments
    run -0 pave team show payments -o json
    [ "$(jq -r .services <<<"$output")" = 2 ]
}

@test "a non-admin cannot create a team from the CLI: exit 1 with the reason" {
    run -1 env PAVE_TOKEN="$ALICE_TOKEN" "$PAVE_BIN" team create alice-team
    [[ "$output" == *"pave: "* ]]
}

@test "user create and list" {
    run -0 pave user create carol --display-name "Carol"
    [ "$output" = "user/carol created" ]
    run -0 pave user create root2 --admin
    run -0 pave user list -o json
    [ "$(jq -r '.[] | select(.name == "carol") | .admin' <<<"$output")" = false ]
    [ "$(jq -r '.[] | select(.name == "root2") | .admin' <<<"$output")" = true ]
    run -0 pave user list
    grep -Eq '^carol +no +- +Carol' <<<"$output"
    run -1 pave user create "Not A Label"
}

@test "env create and list keep promotion order" {
    run -0 pave env create qa --description "manual QA"
    [ "$output" = "environment/qa created" ]
    run -0 pave env list -o json
    [ "$(jq -r 'map(.name) | join(",")' <<<"$output")" = "dev,staging,prod,qa" ]
    run -0 pave env list -o yaml
    [[ "$output" == *"- name: qa"* ]]
    run -0 pave env list
    grep -Eq '^qa +manual QA' <<<"$output"
}
