#!/usr/bin/env bats
# `pave render` through the real CLI and API: the demo payments-api rendered for Kubernetes and
# every object checked against the official Kubernetes OpenAPI schemas (npm kubernetes-models,
# installed into tests/e2e/k8s-validate on first use).

bats_require_minimum_version 1.5.0

setup_file() {
    load helpers
    e2e_server_start
    local dir="$BATS_TEST_DIRNAME/k8s-validate"
    if [ ! -d "$dir/node_modules/kubernetes-models" ]; then
        (cd "$dir" && npm install --no-audit --no-fund >&2)
    fi
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

VALIDATE="$BATS_TEST_DIRNAME/k8s-validate/validate.mjs"

@test "render -o json: a List whose every object validates against the Kubernetes schemas" {
    pave render payments-api --env prod --target kubernetes -o json >"$BATS_TEST_TMPDIR/out.json"
    run jq -r '[.apiVersion, .kind] | join(" ")' "$BATS_TEST_TMPDIR/out.json"
    [ "$output" = "v1 List" ]
    run jq -r '[.items[].kind] | join(",")' "$BATS_TEST_TMPDIR/out.json"
    [ "$output" = "Deployment,Service,Ingress,PodDisruptionBudget,NetworkPolicy" ]
    run jq -r '[.items[].metadata.namespace] | unique | join(",")' "$BATS_TEST_TMPDIR/out.json"
    [ "$output" = "payments-prod" ]
    run jq -r '.items[0].spec.template.spec.containers[0].image' "$BATS_TEST_TMPDIR/out.json"
    [ "$output" = "pave-registry.local/payments-api:prod" ]
    run node "$VALIDATE" "$BATS_TEST_TMPDIR/out.json"
    echo "$output"
    [ "$status" = 0 ]
    [ "$(grep -c '^ok ' <<<"$output")" = 5 ]
}

@test "spec.autoscale renders a HorizontalPodAutoscaler that validates; the HPA owns replicas" {
    run -0 pave catalog apply -f "$BATS_TEST_DIRNAME/fixtures/search-autoscale.yaml"
    pave render search --env prod -o json >"$BATS_TEST_TMPDIR/hpa.json"
    run jq -r '[.items[].kind] | join(",")' "$BATS_TEST_TMPDIR/hpa.json"
    [ "$output" = "Deployment,Service,PodDisruptionBudget,NetworkPolicy,HorizontalPodAutoscaler" ]
    run jq -r '.items[0].spec | has("replicas")' "$BATS_TEST_TMPDIR/hpa.json"
    [ "$output" = "false" ]
    run jq -r '.items[0].spec.template.spec.containers[0].resources.requests.cpu' \
        "$BATS_TEST_TMPDIR/hpa.json"
    [ "$output" = "250m" ]
    run jq -c '.items[4] | [.apiVersion, .metadata.name, .metadata.namespace,
        .spec.scaleTargetRef.kind, .spec.scaleTargetRef.name, .spec.minReplicas,
        .spec.maxReplicas, .spec.metrics[0].resource.name,
        .spec.metrics[0].resource.target.averageUtilization]' "$BATS_TEST_TMPDIR/hpa.json"
    [ "$output" = '["autoscaling/v2","search","payments-prod","Deployment","search",2,6,"cpu",70]' ]
    run jq -r '.items[2].spec.minAvailable' "$BATS_TEST_TMPDIR/hpa.json" # min 2 - maxUnavailable 1
    [ "$output" = 1 ]
    run node "$VALIDATE" "$BATS_TEST_TMPDIR/hpa.json"
    echo "$output"
    [ "$status" = 0 ]
    [ "$(grep -c '^ok ' <<<"$output")" = 5 ]
    [[ "$output" == *"ok autoscaling/v2/HorizontalPodAutoscaler payments-prod/search"* ]]
    # the validator knows the HPA schema: a broken one is refused
    jq '.items[4].spec.maxReplicas = "six"' "$BATS_TEST_TMPDIR/hpa.json" >"$BATS_TEST_TMPDIR/bad.json"
    run node "$VALIDATE" "$BATS_TEST_TMPDIR/bad.json"
    [ "$status" = 1 ]
    [[ "$output" == *"HorizontalPodAutoscaler"* ]]
}

@test "the validator really rejects a broken object" {
    pave render payments-api --env prod -o json |
        jq '.items[0].spec.replicas = "two"' >"$BATS_TEST_TMPDIR/bad.json"
    run node "$VALIDATE" "$BATS_TEST_TMPDIR/bad.json"
    [ "$status" = 1 ]
    [[ "$output" == *"must be integer"* ]]
}

@test "render defaults to YAML documents and takes --image" {
    run pave render ledger --env dev --image registry.example.com/ledger:v2
    [ "$status" = 0 ]
    [ "$(grep -c '^---$' <<<"$output")" = 4 ] # Deployment, Service, PDB, NetworkPolicy
    [[ "$output" == *"kind: Deployment"* ]]
    [[ "$output" == *"image: registry.example.com/ledger:v2"* ]]
    [[ "$output" == *"namespace: payments-dev"* ]]
    [[ "$output" != *"kind: Ingress"* ]]
}

@test "render: unknown environment exits 1" {
    run pave render payments-api --env nowhere
    [ "$status" = 1 ]
    [[ "$output" == *"unknown environment 'nowhere'"* ]]
}

@test "render: unsupported target exits 2 with a message" {
    run pave render payments-api --env prod --target nomad
    [ "$status" = 2 ]
    [[ "$output" == *"unsupported render target 'nomad'"* ]]
}

@test "render: unknown service exits 1; missing --env is a usage error" {
    run pave render no-such-service --env prod
    [ "$status" = 1 ]
    run pave render payments-api
    [ "$status" = 2 ]
}

@test "API: render answers a List; bad target is 400; a token is needed" {
    api alice GET "/api/v1/services/payments-api/render?env=staging&target=kubernetes"
    expect_status 200
    [ "$(jq -r '.items[0].metadata.namespace' <<<"$API_BODY")" = "payments-staging" ]
    api alice GET "/api/v1/services/payments-api/render?env=staging&target=swarm"
    expect_status 400
    api alice GET "/api/v1/services/payments-api/render?env=nope&target=kubernetes"
    expect_status 400
    api none GET "/api/v1/services/payments-api/render?env=staging&target=kubernetes"
    expect_status 401
}
