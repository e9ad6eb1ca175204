#!/usr/bin/env bats
# Pipelines end to end: `pave build`, git push triggers, steps in the sandbox, secrets masked,
# caches, artifacts, cancel, the concurrency limit and recovery after a crash.

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

# Creates service NAME of team payments with a working tree in $E2E_ROOT/src/NAME whose
# pipeline is PIPELINE (a string). Sets DIR.
mk_service() {
    local name=$1 pipeline=$2
    DIR="$E2E_ROOT/src/$name"
    mkdir -p "$DIR/.pave"
    printf 'apiVersion: pave/v1\nkind: Service\nmetadata: { name: %s, team: payments }\n' \
        "$name" >"$DIR/pave.yaml"
    printf '%s\n' "$pipeline" >"$DIR/.pave/pipeline.yml"
    pave catalog apply -f "$DIR/pave.yaml" >/dev/null
}

# Polls run ID until its state matches the regex WANT, at most 60 s.
wait_state() {
    local id=$1 want=$2 i state=""
    for i in $(seq 1 300); do
        api admin GET "/api/v1/runs/$id"
        state=$(jq -r .state <<<"$API_BODY")
        if [[ "$state" =~ ^($want)$ ]]; then
            return 0
        fi
        sleep 0.2
    done
    echo "run $id is still '$state' (wanted $want)" >&2
    return 1
}

# Queues a build of DIR without following; sets RUN_ID.
queue_build() {
    local out
    out=$(pave build --dir "$1" --no-follow -o json 2>/dev/null) || return 1
    RUN_ID=$(jq -er .id <<<"$out")
}

@test "pave build runs every step in the sandbox and stores a tarball artifact with its digest" {
    mk_service hello 'apiVersion: pave/v1
kind: Pipeline
steps:
  - name: build
    commands: ["mkdir -p bin", "echo hello > bin/hello"]
  - name: test
    commands: ["grep -q hello bin/hello", "echo tests passed"]
artifact: { paths: [bin/] }'
    run -0 pave build --dir "$DIR"
    [[ "$output" == *"==> step build (1/2)"* ]]
    [[ "$output" == *"tests passed"* ]]
    [[ "$output" == *"<== artifact sha256:"* ]]
    id=$(pave runs list --service hello -o json | jq -r '.[0].id')
    api admin GET "/api/v1/runs/$id"
    expect_status 200
    [ "$(jq -r .state <<<"$API_BODY")" = succeeded ]
    [ "$(jq -r '[.steps[].state] | join(",")' <<<"$API_BODY")" = "succeeded,succeeded" ]
    digest=$(jq -r .artifact.digest <<<"$API_BODY")
    curl -fsS -H "Authorization: Bearer $ADMIN_TOKEN" -D "$E2E_ROOT/h" \
        -o "$E2E_ROOT/a.tgz" "$PAVE_SERVER/api/v1/runs/$id/artifact"
    [ "sha256:$(sha256sum "$E2E_ROOT/a.tgz" | cut -d' ' -f1)" = "$digest" ]
    grep -qi "x-pave-digest: $digest" "$E2E_ROOT/h"
    [ "$(tar -xzOf "$E2E_ROOT/a.tgz" bin/hello)" = hello ]
}

@test "a failing step fails the run, skips the rest and pave build exits 1" {
    mk_service failing 'apiVersion: pave/v1
kind: Pipeline
steps:
  - name: build
    commands: ["echo about to fail", "exit 3"]
  - name: never
    commands: ["echo should not run"]'
    run -1 pave build --dir "$DIR"
    [[ "$output" == *"step build failed: exit 3"* ]]
    [[ "$output" != *"should not run"* ]]
    id=$(pave runs list --service failing -o json | jq -r '.[0].id')
    api admin GET "/api/v1/runs/$id"
    [ "$(jq -r '[.steps[].state] | join(",")' <<<"$API_BODY")" = "failed,skipped" ]
}

@test "an invalid pipeline file is refused before anything runs, with every problem at file:line:column" {
    mk_service badpipe 'apiVersion: pave/v1
kind: Pipeline
steps:
  - name: build
    comands: ["make"]
    timeout: fast'
    run -1 pave build --dir "$DIR"
    [[ "$output" == *".pave/pipeline.yml:5:5"* ]]
    [[ "$output" == *"did you mean 'commands'"* ]]
    [[ "$output" == *".pave/pipeline.yml:6:"* ]]
    [[ "$output" == *"nothing was uploaded"* ]]
    [ "$(pave runs list --service badpipe -o json | jq length)" = 0 ]
    # pushed with git (no client-side check) the run fails before any step, with the same report
    tar -cf "$E2E_ROOT/bad.tar" -C "$DIR" .
    api admin POST /api/v1/services/badpipe/builds --data-binary @"$E2E_ROOT/bad.tar"
    expect_status 201
    id=$(jq -r .id <<<"$API_BODY")
    wait_state "$id" failed
    run -0 pave runs log "$id"
    [[ "$output" == *".pave/pipeline.yml:5:5"* ]]
    [[ "$output" != *"==> step"* ]]
}

@test "a fork bomb, a memory hog and a hung step are contained and the platform stays healthy" {
    mk_service hostile 'apiVersion: pave/v1
kind: Pipeline
steps:
  - name: bomb
    timeout: 20s
    resources: { pids: 64 }
    commands: ["bomb() { bomb | bomb & }; bomb; sleep 30"]'
    run -1 pave build --dir "$DIR"
    [[ "$output" == *"step bomb failed"* ]]
    run -0 curl -fsS -m 10 "$PAVE_SERVER/healthz"
    mk_service hog 'apiVersion: pave/v1
kind: Pipeline
steps:
  - name: hog
    timeout: 60s
    resources: { memory: 64Mi }
    commands:
      - awk '"'"'BEGIN { s = "x"; while (1) s = s s }'"'"''
    run -1 pave build --dir "$DIR"
    [[ "$output" == *"out of memory"* ]]
    mk_service hung 'apiVersion: pave/v1
kind: Pipeline
steps:
  - name: hang
    timeout: 2s
    commands: ["sleep 600"]'
    run -1 pave build --dir "$DIR"
    [[ "$output" == *"step hang failed: timed out"* ]]
    run -0 curl -fsS -m 10 "$PAVE_SERVER/healthz"
    ! pgrep -f "sleep 600"
}

@test "secrets reach the step as environment variables, are masked in the log and not stored in clear" {
    mk_service secretive 'apiVersion: pave/v1
kind: Pipeline
steps:
  - name: use
    secrets: [API_KEY]
    commands: ["echo the key is $API_KEY", "test \"$API_KEY\" = s3cr3t-value-123"]'
    run -0 bash -c "cd '$E2E_CWD' && printf 's3cr3t-value-123' | '$PAVE_BIN' secret set secretive API_KEY"
    run -0 pave secret list secretive -o json
    [ "$(jq -r '.[0].name' <<<"$output")" = API_KEY ]
    [[ "$output" != *s3cr3t* ]]
    run -0 pave build --dir "$DIR"
    [[ "$output" == *"the key is ***"* ]]
    [[ "$output" != *"s3cr3t-value-123"* ]]
    ! sqlite3 "$E2E_DATA/pave.db" .dump | grep -q s3cr3t-value-123
    ! grep -rq s3cr3t-value-123 "$E2E_MAIN_RUN/stderr"
    [ "$(stat -c %a "$E2E_DATA/secret.key")" = 600 ]
}

@test "another team can neither build a service nor touch its secrets" {
    mk_service guarded 'apiVersion: pave/v1
kind: Pipeline
steps: [{ name: a, commands: ["true"] }]'
    tar -cf "$E2E_ROOT/t.tar" -C "$DIR" .
    api bob POST /api/v1/services/guarded/builds --data-binary @"$E2E_ROOT/t.tar"
    expect_status 403
    api bob PUT /api/v1/services/guarded/secrets/X --data-binary 'v'
    expect_status 403
    api bob GET /api/v1/services/guarded/secrets
    expect_status 403
    api none POST /api/v1/services/guarded/builds --data-binary @"$E2E_ROOT/t.tar"
    expect_status 401
    api alice POST /api/v1/services/guarded/builds --data-binary @"$E2E_ROOT/t.tar"
    expect_status 201
}

@test "steps cannot see the platform's data directory, write outside the workspace or reach the network" {
    mk_service jail "apiVersion: pave/v1
kind: Pipeline
steps:
  - name: probe
    commands:
      - \"if cat '$E2E_DATA/admin.token'; then echo LEAK-token; fi\"
      - \"if ls '$E2E_DATA' >/dev/null 2>&1; then echo LEAK-dir; fi\"
      - \"if touch /usr/pwned 2>/dev/null; then echo LEAK-write; fi\"
      - \"if cat /etc/shadow >/dev/null 2>&1; then echo LEAK-shadow; fi\"
      - \"echo interfaces: \$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\\\n' ' ')\"
      - \"touch /workspace/ok && echo workspace writable\""
    run -0 pave build --dir "$DIR"
    [[ "$output" != *LEAK* ]]
    [[ "$output" == *"interfaces: lo"* ]]
    [[ "$output" != *"interfaces: lo e"* ]]
    [[ "$output" == *"workspace writable"* ]]
}

@test "a step's when.branch skips it on other branches" {
    mk_service branchy 'apiVersion: pave/v1
kind: Pipeline
steps:
  - name: always
    commands: ["echo always ran"]
  - name: release-only
    when: { branch: ["release/*"] }
    commands: ["echo release ran"]'
    run -0 pave build --dir "$DIR" --branch main
    [[ "$output" == *"always ran"* ]]
    [[ "$output" == *"release-only (2/2): skipped"* ]]
    run -0 pave build --dir "$DIR" --branch release/1.0
    [[ "$output" == *"release ran"* ]]
}

@test "a cache is empty on the first run and restored on the next" {
    mk_service cached 'apiVersion: pave/v1
kind: Pipeline
caches:
  - name: deps
    paths: [.deps]
steps:
  - name: fetch
    cache: [deps]
    commands:
      - "if [ -f .deps/fetched ]; then echo cache hit; else mkdir -p .deps && echo x > .deps/fetched && echo cache miss; fi"'
    run -0 pave build --dir "$DIR"
    [[ "$output" == *"cache miss"* ]]
    run -0 pave build --dir "$DIR"
    [[ "$output" == *"cache deps: restored"* ]]
    [[ "$output" == *"cache hit"* ]]
}

@test "runs beyond the worker count wait queued, and cancel stops queued and running runs" {
    mk_service sleepy 'apiVersion: pave/v1
kind: Pipeline
steps:
  - name: nap
    timeout: 2m
    commands: ["echo napping", "sleep 60"]'
    queue_build "$DIR"; a=$RUN_ID
    queue_build "$DIR"; b=$RUN_ID
    queue_build "$DIR"; c=$RUN_ID
    wait_state "$a" running
    wait_state "$b" running
    api admin GET "/api/v1/runs/$c"
    [ "$(jq -r .state <<<"$API_BODY")" = queued ]
    run -0 pave runs cancel "$c"
    wait_state "$c" cancelled
    run -0 pave runs cancel "$a"
    run -0 pave runs cancel "$b"
    wait_state "$a" cancelled
    wait_state "$b" cancelled
    api admin GET "/api/v1/runs/$a"
    [ "$(jq -r '.steps[0].state' <<<"$API_BODY")" = cancelled ]
    run -1 pave runs cancel "$a"
    [[ "$output" == *"already cancelled"* ]]
}

@test "retry queues the same source again" {
    mk_service again 'apiVersion: pave/v1
kind: Pipeline
steps: [{ name: a, commands: ["echo run of the same source"] }]'
    run -0 pave build --dir "$DIR"
    id=$(pave runs list --service again -o json | jq -r '.[0].id')
    run -0 pave runs retry "$id"
    [[ "$output" == *"run of the same source"* ]]
    api admin GET "/api/v1/runs?service=again"
    [ "$(jq -r '.items[0].retry_of' <<<"$API_BODY")" = "$id" ]
}

@test "git push to the platform queues a run on a watched branch, and only there" {
    mk_service pushed 'apiVersion: pave/v1
kind: Pipeline
on: { push: { branches: [main] } }
steps: [{ name: build, commands: ["echo built from git"] }]'
    cd "$DIR"
    git init -q -b main
    git add -A
    git -c user.email=e2e@example.invalid -c user.name=e2e commit -qm first
    port=${PAVE_SERVER##*:}
    run -0 git push -q "http://pave:$ALICE_TOKEN@127.0.0.1:$port/git/pushed.git" main
    for i in $(seq 1 100); do
        n=$(pave runs list --service pushed -o json | jq length)
        [ "$n" -ge 1 ] && break
        sleep 0.2
    done
    id=$(pave runs list --service pushed -o json | jq -r '.[0].id')
    [ "$(pave runs list --service pushed -o json | jq -r '.[0].trigger')" = push ]
    wait_state "$id" succeeded
    run -0 pave runs log "$id"
    [[ "$output" == *"built from git"* ]]
    git checkout -q -b feature
    git -c user.email=e2e@example.invalid -c user.name=e2e commit -q --allow-empty -m two
    run -0 git push -q "http://pave:$ALICE_TOKEN@127.0.0.1:$port/git/pushed.git" feature
    [ "$(pave runs list --service pushed -o json | jq length)" = 1 ]
    # bob is not in team payments: he may clone but not push
    run -0 git clone -q "http://pave:$BOB_TOKEN@127.0.0.1:$port/git/pushed.git" "$E2E_ROOT/bobclone"
    run ! git push -q "http://pave:$BOB_TOKEN@127.0.0.1:$port/git/pushed.git" feature:bob
    run ! git ls-remote "http://pave:wrong@127.0.0.1:$port/git/pushed.git"
}

# bats test_tags=slow
@test "a run that was running when the server died is marked failed on restart" {
    data="$E2E_ROOT/crashdata"
    e2e_server_launch crash "$data" --demo
    run1="$SRV_RUN"
    export PAVE_SERVER="http://127.0.0.1:$SRV_PORT"
    export PAVE_TOKEN
    PAVE_TOKEN=$(cat "$data/admin.token")
    mk_service doomed 'apiVersion: pave/v1
kind: Pipeline
steps: [{ name: nap, commands: ["sleep 60"] }]'
    queue_build "$DIR"
    id=$RUN_ID
    state=""
    for i in $(seq 1 100); do
        state=$(curl -fsS -H "Authorization: Bearer $PAVE_TOKEN" "$PAVE_SERVER/api/v1/runs/$id" | jq -r .state)
        [ "$state" = running ] && break
        sleep 0.2
    done
    [ "$state" = running ]
    kill -9 "$(cat "$run1/pid")"
    sleep 0.5
    e2e_server_launch crash2 "$data"
    run2="$SRV_RUN"
    body=$(curl -fsS -H "Authorization: Bearer $PAVE_TOKEN" "http://127.0.0.1:$SRV_PORT/api/v1/runs/$id")
    e2e_server_terminate "$run2" >/dev/null
    [ "$(jq -r .state <<<"$body")" = failed ]
    [[ "$(jq -r .error <<<"$body")" == *"server stopped"* ]]
}

# bats test_tags=slow
@test "every golden-path template's scaffold passes its own pipeline in the sandbox" {
    for t in http-c http-python worker-shell; do
        run -0 pave init "gp-$t" --template "$t" --team payments
        run -0 pave build --dir "$E2E_CWD/gp-$t"
        [[ "$output" == *"==> step test"* ]]
        [[ "$output" == *"<== artifact sha256:"* ]]
    done
}

@test "a successful run is published as a signed OCI image with provenance that skopeo can pull" {
    command -v skopeo >/dev/null || skip "skopeo is not installed"
    mk_service imaged 'apiVersion: pave/v1
kind: Pipeline
steps:
  - name: build
    commands: ["mkdir -p out", "echo payload > out/file"]
artifact: { paths: [out/] }'
    run -0 pave build --dir "$DIR" --branch main
    [[ "$output" == *"<== image imaged/"*"signed, provenance sha256:"* ]]
    id=$(pave runs list --service imaged -o json | jq -r '.[0].id')
    run -0 pave artifacts verify imaged "run-$id"
    [[ "$output" == *verified* ]]
    run -0 pave artifacts list imaged -o json
    [ "$(jq -r '.[0].signature' <<<"$output")" = verified ]
    port=${PAVE_SERVER##*:}
    run -0 skopeo inspect --tls-verify=false --creds "x:$ALICE_TOKEN" "docker://127.0.0.1:$port/imaged:main"
    [ "$(jq -r '.Labels["dev.pave.run"]' <<<"$output")" = "$id" ]
    run -0 skopeo copy -q --src-tls-verify=false --src-creds "x:$ALICE_TOKEN" \
        "docker://127.0.0.1:$port/imaged:run-$id" "oci:$E2E_ROOT/pulled:x"
    layer=$(jq -r '.manifests[0].digest' "$E2E_ROOT/pulled/index.json")
    [ -n "$layer" ]
}

@test "artifacts gc keeps the newest images and branch-tagged ones, deletes the rest with their referrers" {
    mk_service retained 'apiVersion: pave/v1
kind: Pipeline
steps: [{ name: build, commands: ["mkdir -p out", "date +%s%N > out/stamp"] }]
artifact: { paths: [out/] }'
    run -0 pave build --dir "$DIR"
    run -0 pave build --dir "$DIR"
    run -0 pave build --dir "$DIR" --branch main
    run -0 pave build --dir "$DIR"
    [ "$(pave artifacts list retained -o json | jq length)" = 4 ]
    api bob POST /api/v1/registry/gc -d '{"keep":1}'
    expect_status 403
    run -0 pave artifacts gc --keep 1 --service retained --grace 0s -o json
    [ "$(jq -r .images_removed <<<"$output")" = 2 ]
    [ "$(jq -r .bytes_freed <<<"$output")" -gt 0 ]
    run -0 pave artifacts list retained -o json
    [ "$(jq length <<<"$output")" = 2 ]
    [[ "$(jq -r '[.[].tags[]] | join(",")' <<<"$output")" == *main* ]]
    newest=$(jq -r '.[0].tags[0]' <<<"$output")
    run -0 pave artifacts verify retained "$newest"
}
