#!/usr/bin/env bats
# Golden-path templates: `pave templates list|show` and `pave init` against a live server. Every
# template is scaffolded, registered, validated, and its own build and tests are run as they come
# out of the box (directly, not through the pipeline runner). Then the refusals: unknown
# template, bad name, existing directory, unknown variable, unknown placeholder, unreachable
# server. One demo server per file; each test names its own services and directories.

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

TEMPLATES="http-c http-python worker-shell"
DOWN_URL="http://127.0.0.1:1"

# Scaffolds NAME from TEMPLATE for team payments and checks what every template must give.
init_and_check() {
    local name=$1 tpl=$2
    run -0 pave init "$name" --template "$tpl" --team payments
    [[ "$output" == *"created $name/ from template '$tpl'"* ]]
    [[ "$output" == *"service/$name created"* ]]
    # registered in the catalog, owned by the team
    run -0 pave catalog show "$name" -o json
    [ "$(jq -r '.team // .service.team' <<<"$output")" = payments ]
    # the scaffold's manifest validates and names the service and the team
    run -0 pave catalog validate -f "$E2E_CWD/$name/pave.yaml"
    [[ "$output" == *"ok (service '$name', team 'payments')"* ]]
    local f
    for f in pave.yaml README.md docs/index.md .pave/pipeline.yml .gitignore Makefile; do
        [ -s "$E2E_CWD/$name/$f" ] || {
            echo "missing $f"
            return 1
        }
    done
    # the pipeline file: build and test steps, an artifact
    grep -q '^kind: Pipeline$' "$E2E_CWD/$name/.pave/pipeline.yml"
    grep -q 'name: build' "$E2E_CWD/$name/.pave/pipeline.yml"
    grep -q 'name: test' "$E2E_CWD/$name/.pave/pipeline.yml"
    grep -q '^artifact: { paths: \[' "$E2E_CWD/$name/.pave/pipeline.yml"
    # every placeholder was replaced
    run grep -rn '{{' "$E2E_CWD/$name"
    [ "$status" = 1 ]
}

@test "templates list -o json lists the three templates" {
    run -0 pave templates list -o json
    [ "$(jq -r '[.[].name] | sort | join(" ")' <<<"$output")" = "http-c http-python worker-shell" ]
    [ "$(jq -r '.[] | select(.name == "http-c") | .language' <<<"$output")" = c ]
    run -0 pave templates list
    [[ "${lines[0]}" == NAME* ]]
    [ "${#lines[@]}" = 4 ]
    run -0 pave templates list -o yaml
    [[ "$output" == *"name: worker-shell"* ]]
}

@test "templates show lists a template's variables, description and files" {
    run -0 pave templates show http-c -o json
    [ "$(jq -r '.name' <<<"$output")" = http-c ]
    [ "$(jq -r '.variables[] | select(.name == "port") | .default' <<<"$output")" = 8080 ]
    [ "$(jq -r '.files | index("pave.yaml") != null' <<<"$output")" = true ]
    [[ "$(jq -r .description <<<"$output")" == *libmicrohttpd* ]]
    run -0 pave templates show worker-shell
    [[ "$output" == *"interval"* ]]
    [[ "$output" == *".pave/pipeline.yml"* ]]
    run -1 pave templates show no-such-template
    [[ "$output" == *"unknown template 'no-such-template'"* ]]
    run -2 pave templates frobnicate
}

@test "http-c: init registers the service; the scaffold builds and passes its tests" {
    init_and_check svc-x-c http-c
    [ -x "$E2E_CWD/svc-x-c/tests/smoke.sh" ]
    run -0 timeout 300 make -C "$E2E_CWD/svc-x-c"
    [ -x "$E2E_CWD/svc-x-c/bin/svc-x-c" ]
    run -0 timeout 300 make -C "$E2E_CWD/svc-x-c" test
    [[ "$output" == *"all checks passed"* ]]
}

@test "http-python: init registers the service; the scaffold passes python3 -m unittest" {
    init_and_check svc-x-py http-python
    run -0 timeout 300 make -C "$E2E_CWD/svc-x-py"
    run -0 bash -c "cd '$E2E_CWD/svc-x-py' && timeout 300 python3 -m unittest 2>&1"
    [[ "$output" == *OK* ]]
    run -0 timeout 300 make -C "$E2E_CWD/svc-x-py" test
}

@test "worker-shell: init registers the service; the scaffold passes its sh test" {
    init_and_check svc-x-sh worker-shell
    [ -x "$E2E_CWD/svc-x-sh/worker.sh" ]
    [ -x "$E2E_CWD/svc-x-sh/tests/test_worker.sh" ]
    run -0 bash -c "cd '$E2E_CWD/svc-x-sh' && timeout 300 sh tests/test_worker.sh ./worker.sh"
    [[ "$output" == *"all checks passed"* ]]
    run -0 timeout 300 make -C "$E2E_CWD/svc-x-sh"
    run -0 timeout 300 make -C "$E2E_CWD/svc-x-sh" test
}

@test "init --dir writes elsewhere; -o json describes the result" {
    run -0 pave init svc-dir --template worker-shell --team payments --dir out/nested/svc-dir \
        -o json
    [ "$(jq -r .registered <<<"$output")" = true ]
    [ "$(jq -r .dir <<<"$output")" = out/nested/svc-dir ]
    [ "$(jq -r '.files | length' <<<"$output")" -ge 6 ]
    [ -f "$E2E_CWD/out/nested/svc-dir/pave.yaml" ]
    [ ! -e "$E2E_CWD/svc-dir" ]
    # no staging directory is left behind
    run -0 find "$E2E_CWD/out/nested" -maxdepth 1 -name '.*pave-init*'
    [ -z "$output" ]
}

@test "unknown template: exit 1 with the list of templates, nothing written" {
    run -1 pave init svc-unk --template http-cobol --team payments
    [[ "$output" == *"unknown template 'http-cobol'"* ]]
    local t
    for t in $TEMPLATES; do
        [[ "$output" == *"$t"* ]]
    done
    [ ! -e "$E2E_CWD/svc-unk" ]
    run -1 pave init svc-unk --template http-cc --team payments
    [[ "$output" == *"did you mean 'http-c'?"* ]]
}

@test "bad NAME: exit 1, nothing written" {
    local n
    for n in Bad_Name -lead trail- "has space" ../escape "$(printf 'a%.0s' {1..64})"; do
        run -1 pave init --template http-c --team payments --no-register -- "$n"
        [[ "$output" == *"bad service name"* ]]
    done
    run -0 ls -A "$E2E_CWD"
    [[ "$output" != *Bad_Name* ]]
    [ ! -e "$E2E_ROOT/escape" ]
}

@test "existing non-empty directory: exit 1 and nothing overwritten" {
    mkdir -p "$E2E_CWD/svc-exists"
    echo "precious" >"$E2E_CWD/svc-exists/pave.yaml"
    run -1 pave init svc-exists --template http-c --team payments
    [[ "$output" == *"'svc-exists' already exists and is not empty"* ]]
    [ "$(cat "$E2E_CWD/svc-exists/pave.yaml")" = precious ]
    [ "$(ls -A "$E2E_CWD/svc-exists")" = pave.yaml ]
    run -1 pave catalog show svc-exists
    # a plain file in the way is refused too
    echo x >"$E2E_CWD/svc-file"
    run -1 pave init svc-file --template http-c --team payments --no-register
    [ "$(cat "$E2E_CWD/svc-file")" = x ]
    # an existing empty directory is fine
    mkdir "$E2E_CWD/svc-empty"
    run -0 pave init svc-empty --template http-c --team payments --no-register
    [ -f "$E2E_CWD/svc-empty/pave.yaml" ]
}

@test "--var for a declared variable is rendered" {
    run -0 pave init svc-vars --template http-c --team payments --no-register \
        --var port=9090 --var "description=Card payments, the C way"
    grep -q 'port: 9090' "$E2E_CWD/svc-vars/pave.yaml"
    grep -q 'PORT: "9090"' "$E2E_CWD/svc-vars/pave.yaml"
    grep -q '^  description: "Card payments, the C way"$' "$E2E_CWD/svc-vars/pave.yaml"
    grep -q '^Card payments, the C way$' "$E2E_CWD/svc-vars/README.md"
    grep -q '#define DEFAULT_PORT "9090"' "$E2E_CWD/svc-vars/src/main.c"
    run -0 pave catalog validate -f "$E2E_CWD/svc-vars/pave.yaml"
    # --no-register registers nothing and says how to do it later
    run -1 pave catalog show svc-vars
    run -0 pave init svc-vars2 --template worker-shell --team payments --no-register \
        --var=interval=3
    grep -q 'INTERVAL: "3"' "$E2E_CWD/svc-vars2/pave.yaml"
    [[ "$output" == *"pave catalog apply -f svc-vars2/pave.yaml"* ]]
}

@test "unknown --var or a bad value: exit 2, nothing written" {
    run -2 pave init svc-badvar --template http-c --team payments --var colour=blue
    [[ "$output" == *"unknown variable 'colour' for template 'http-c'"* ]]
    [[ "$output" == *"port"* ]]
    run -2 pave init svc-badvar --template http-c --team payments --var port
    run -2 pave init svc-badvar --template http-c --team payments --var port=http
    [[ "$output" == *"does not match"* ]]
    run -2 pave init svc-badvar --template http-c --team payments --var 'description=a"b'
    run -2 pave init svc-badvar --template http-c --team payments --var
    [ ! -e "$E2E_CWD/svc-badvar" ]
    run -1 pave catalog show svc-badvar
}

@test "usage errors: no NAME, no --template, unknown flag; --help exits 0" {
    run -2 pave init --template http-c --team payments
    run -2 pave init svc-usage --team payments
    [[ "$output" == *"--template"* ]]
    [[ "$output" == *"http-python"* ]]
    run -2 pave init svc-usage --template http-c --frobnicate
    run -0 pave init --help
    [[ "$output" == usage:* ]]
    run -0 pave templates --help
    [[ "$output" == usage:* ]]
    run -0 pave templates list --help
    run -2 pave templates
    [ ! -e "$E2E_CWD/svc-usage" ]
}

@test "without --team, the caller's only team is used" {
    # alice is a member of payments only (demo organization)
    run -0 env PAVE_TOKEN="$ALICE_TOKEN" "$PAVE_BIN" init svc-alice --template worker-shell
    run -0 pave catalog show svc-alice -o json
    [ "$(jq -r '.team // .service.team' <<<"$output")" = payments ]
    # with --no-register there is nobody to ask
    run -2 pave init svc-noteam --template worker-shell --no-register
    [[ "$output" == *"--team"* ]]
}

@test "unreachable server: the scaffold stays, exit 1 says how to register later" {
    run -1 env PAVE_SERVER="$DOWN_URL" "$PAVE_BIN" init svc-offline --template http-python \
        --team payments
    [[ "$output" == *"pave catalog apply -f svc-offline/pave.yaml"* ]]
    [ -f "$E2E_CWD/svc-offline/pave.yaml" ]
    # ... and the advice works
    run -0 pave catalog apply -f svc-offline/pave.yaml
    [ "$output" = "service/svc-offline created" ]
}

@test "the server refusing the manifest (unknown team): scaffold stays, exit 1" {
    run -1 pave init svc-noteam2 --template http-c --team nobody-here
    [[ "$output" == *"pave catalog apply -f svc-noteam2/pave.yaml"* ]]
    [ -f "$E2E_CWD/svc-noteam2/pave.yaml" ]
}

# A private templates root with one template; prints its path.
private_templates() {
    local root="$BATS_TEST_TMPDIR/templates"
    mkdir -p "$root/tiny/files/bin"
    cat >"$root/tiny/template.yaml" <<'EOF'
name: tiny
description: a test template
language: shell
variables:
  - name: owner_email
    description: who to page
    required: true
render: ["*"]
EOF
    printf 'apiVersion: pave/v1\nkind: Service\nmetadata:\n  name: {{name}}\n  team: {{ team }}\n' \
        >"$root/tiny/files/pave.yaml"
    printf '#!/bin/sh\necho "{{var.owner_email}}"\n' >"$root/tiny/files/bin/{{name}}"
    chmod 755 "$root/tiny/files/bin/{{name}}"
    printf 'keep {{this}} out\n' >"$root/tiny/files/RAW.txt"
    echo "$root"
}

@test "PAVE_TEMPLATES: required variables, paths rendered, modes kept, unknown placeholder" {
    local root
    root=$(private_templates)
    export PAVE_TEMPLATES="$root"
    run -0 pave templates list -o json
    [ "$(jq -r '[.[].name] | join(" ")' <<<"$output")" = tiny ]
    # a required variable without a default must be given
    run -2 pave init svc-tiny --template tiny --team payments --no-register
    [[ "$output" == *"--var owner_email=VALUE"* ]]
    # RAW.txt is rendered too ("*" matches every path) and holds an unknown placeholder
    run -1 pave init svc-tiny --template tiny --team payments --no-register \
        --var owner_email=ops@example.com
    [[ "$output" == *"files/RAW.txt:1: unknown placeholder '{{this}}'"* ]]
    [ ! -e "$E2E_CWD/svc-tiny" ]
    # rendered only where template.yaml says so: RAW.txt is then copied as is
    sed -i 's/^render: .*/render: [pave.yaml, "bin\/*"]/' "$root/tiny/template.yaml"
    run -0 pave init svc-tiny --template tiny --team payments --no-register \
        --var owner_email=ops@example.com
    [ -x "$E2E_CWD/svc-tiny/bin/svc-tiny" ]
    [ "$("$E2E_CWD/svc-tiny/bin/svc-tiny")" = ops@example.com ]
    [ "$(cat "$E2E_CWD/svc-tiny/RAW.txt")" = 'keep {{this}} out' ]
    grep -q '^  team: payments$' "$E2E_CWD/svc-tiny/pave.yaml"
    # a malformed template.yaml is reported with its position
    echo "colour: blue" >>"$root/tiny/template.yaml"
    run -1 pave templates show tiny
    [[ "$output" == *"template.yaml:"*"unknown key 'colour'"* ]]
    # a PAVE_TEMPLATES that does not exist is named
    export PAVE_TEMPLATES="$BATS_TEST_TMPDIR/nowhere"
    run -1 pave templates list
    [[ "$output" == *"PAVE_TEMPLATES"* ]]
}
