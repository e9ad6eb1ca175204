#!/usr/bin/env bats
# The OCI registry under /v2: a real skopeo round trip (push an OCI layout, inspect, pull back
# byte for byte), team rights, anonymous access, chunked uploads and mounts with curl, bad input.

load helpers

setup_file() {
    command -v skopeo >/dev/null || skip "skopeo is not installed (apt-get install -y skopeo)"
    e2e_server_start
    export REG="127.0.0.1:$SRV_PORT"
    export IMG="$BATS_FILE_TMPDIR/img"
    build_layout "$IMG"
}

teardown_file() {
    e2e_server_stop
}

teardown() {
    e2e_kill_leftovers
}

# sha256 hex of a file
hexof() { sha256sum "$1" | cut -d' ' -f1; }

# Adds FILE as a blob of the layout DIR; prints its hex digest.
add_blob() {
    local dir=$1 file=$2 h
    h=$(hexof "$file")
    cp "$file" "$dir/blobs/sha256/$h"
    echo "$h"
}

# Builds a one-layer OCI image layout with plain tools; exports MANIFEST_HEX, LAYER_HEX, CONFIG_HEX.
build_layout() {
    local dir=$1 work="$BATS_FILE_TMPDIR/build"
    mkdir -p "$dir/blobs/sha256" "$work/rootfs"
    echo "hello from paved" >"$work/rootfs/hello.txt"
    tar -C "$work/rootfs" --owner=0 --group=0 --mtime=@0 -cf "$work/layer.tar" hello.txt
    local diff_id
    diff_id=$(hexof "$work/layer.tar")
    gzip -n -c "$work/layer.tar" >"$work/layer.tar.gz"
    LAYER_HEX=$(add_blob "$dir" "$work/layer.tar.gz")
    local layer_size
    layer_size=$(stat -c %s "$work/layer.tar.gz")
    printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/hello"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$diff_id" >"$work/config.json"
    CONFIG_HEX=$(add_blob "$dir" "$work/config.json")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
        "$CONFIG_HEX" "$(stat -c %s "$work/config.json")" "$LAYER_HEX" "$layer_size" >"$work/manifest.json"
    MANIFEST_HEX=$(add_blob "$dir" "$work/manifest.json")
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' \
        "$MANIFEST_HEX" "$(stat -c %s "$work/manifest.json")" >"$dir/index.json"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
    export MANIFEST_HEX LAYER_HEX CONFIG_HEX
}

# curl against the registry as alice; headers in $BATS_TEST_TMPDIR/h, body in .../b; prints status.
rcurl() {
    curl -sS --path-as-is -m 20 -D "$BATS_TEST_TMPDIR/h" -o "$BATS_TEST_TMPDIR/b" \
        -w '%{http_code}' "$@"
}

# Value of header NAME from the last rcurl.
rheader() {
    grep -i "^$1:" "$BATS_TEST_TMPDIR/h" | head -1 | cut -d' ' -f2- | tr -d '\r'
}

@test "registry: the base endpoint challenges anonymous clients and greets token holders" {
    run rcurl "http://$REG/v2/"
    [ "$output" = 401 ]
    grep -qi '^WWW-Authenticate: Basic realm="pave"' "$BATS_TEST_TMPDIR/h"
    run rcurl -u "x:$ALICE_TOKEN" "http://$REG/v2/"
    [ "$output" = 200 ]
    [ "$(rheader Docker-Distribution-API-Version)" = "registry/2.0" ]
}

@test "registry: skopeo pushes an OCI image layout as alice" {
    run skopeo --insecure-policy copy --preserve-digests --dest-creds "x:$ALICE_TOKEN" \
        --dest-tls-verify=false "oci:$IMG:v1" "docker://$REG/payments-api:v1"
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "registry: skopeo inspect --raw returns the manifest bytes that were pushed" {
    skopeo inspect --raw --tls-verify=false --creds "x:$ALICE_TOKEN" \
        "docker://$REG/payments-api:v1" >"$BATS_TEST_TMPDIR/raw"
    cmp "$BATS_TEST_TMPDIR/raw" "$IMG/blobs/sha256/$MANIFEST_HEX"
    # bob (another team) may pull
    skopeo inspect --tls-verify=false --creds "x:$BOB_TOKEN" "docker://$REG/payments-api:v1" |
        jq -e --arg d "sha256:$MANIFEST_HEX" '.Digest == $d'
}

@test "registry: skopeo copies the image back byte for byte" {
    local out="$BATS_TEST_TMPDIR/back"
    run skopeo --insecure-policy copy --preserve-digests --src-creds "x:$BOB_TOKEN" \
        --src-tls-verify=false "docker://$REG/payments-api:v1" "oci:$out:v1"
    echo "$output"
    [ "$status" -eq 0 ]
    jq -e --arg d "sha256:$MANIFEST_HEX" '.manifests[0].digest == $d' "$out/index.json"
    for h in "$MANIFEST_HEX" "$CONFIG_HEX" "$LAYER_HEX"; do
        cmp "$IMG/blobs/sha256/$h" "$out/blobs/sha256/$h"
    done
}

@test "registry: alice cannot push to another team's service" {
    run skopeo --insecure-policy copy --dest-creds "x:$ALICE_TOKEN" --dest-tls-verify=false \
        "oci:$IMG:v1" "docker://$REG/auth-service:v1"
    echo "$output"
    [ "$status" -ne 0 ]
    run rcurl -u "x:$ALICE_TOKEN" -X POST "http://$REG/v2/auth-service/blobs/uploads/"
    [ "$output" = 403 ]
    jq -e '.errors[0].code == "DENIED"' "$BATS_TEST_TMPDIR/b"
}

@test "registry: anonymous pulls get 401" {
    run rcurl "http://$REG/v2/payments-api/manifests/v1"
    [ "$output" = 401 ]
    jq -e '.errors[0].code == "UNAUTHORIZED"' "$BATS_TEST_TMPDIR/b"
    run skopeo inspect --raw --tls-verify=false --no-creds "docker://$REG/payments-api:v1"
    [ "$status" -ne 0 ]
    run rcurl -u "x:pave_0000000000000000000000000000000000000000" "http://$REG/v2/"
    [ "$output" = 401 ]
}

@test "registry: chunked upload with curl, in order and out of order" {
    local T=$BATS_TEST_TMPDIR
    printf 'hello' >"$T/c1"
    printf ' world' >"$T/c2"
    run rcurl -u "x:$ALICE_TOKEN" -X POST "http://$REG/v2/payments-api/blobs/uploads/"
    [ "$output" = 202 ]
    local loc
    loc=$(rheader Location)
    [ -n "$(rheader Docker-Upload-UUID)" ]
    run rcurl -u "x:$ALICE_TOKEN" -X PATCH -H 'Content-Type: application/octet-stream' \
        -H 'Content-Range: 0-4' --data-binary "@$T/c1" "http://$REG$loc"
    [ "$output" = 202 ]
    [ "$(rheader Range)" = "0-4" ]
    loc=$(rheader Location)
    # a chunk that does not start where the upload ends
    run rcurl -u "x:$ALICE_TOKEN" -X PATCH -H 'Content-Type: application/octet-stream' \
        -H 'Content-Range: 7-12' --data-binary "@$T/c2" "http://$REG$loc"
    [ "$output" = 416 ]
    [ "$(rheader Range)" = "0-4" ]
    run rcurl -u "x:$ALICE_TOKEN" -X PATCH -H 'Content-Type: application/octet-stream' \
        -H 'Content-Range: 5-10' --data-binary "@$T/c2" "http://$REG$loc"
    [ "$output" = 202 ]
    [ "$(rheader Range)" = "0-10" ]
    local d
    d=sha256:$(printf 'hello world' | sha256sum | cut -d' ' -f1)
    run rcurl -u "x:$ALICE_TOKEN" -X PUT "http://$REG$loc?digest=$d"
    [ "$output" = 201 ]
    [ "$(rheader Docker-Content-Digest)" = "$d" ]
    run rcurl -u "x:$BOB_TOKEN" "http://$REG/v2/payments-api/blobs/$d"
    [ "$output" = 200 ]
    [ "$(cat "$T/b")" = "hello world" ]
    run rcurl -u "x:$BOB_TOKEN" -H 'Range: bytes=6-' "http://$REG/v2/payments-api/blobs/$d"
    [ "$output" = 206 ]
    [ "$(cat "$T/b")" = "world" ]
}

@test "registry: a monolithic upload with a wrong digest is refused and nothing is kept" {
    local T=$BATS_TEST_TMPDIR
    printf 'some bytes' >"$T/data"
    local wrong=sha256:$(printf 'other' | sha256sum | cut -d' ' -f1)
    run rcurl -u "x:$ALICE_TOKEN" -X POST -H 'Content-Type: application/octet-stream' \
        --data-binary "@$T/data" "http://$REG/v2/payments-api/blobs/uploads/?digest=$wrong"
    [ "$output" = 400 ]
    jq -e '.errors[0].code == "DIGEST_INVALID"' "$T/b"
    [ ! -e "$E2E_DATA/registry/blobs/sha256/${wrong:7:2}/${wrong:7}" ]
}

@test "registry: cross-repository mount with curl" {
    run rcurl -u "x:$ALICE_TOKEN" -X POST \
        "http://$REG/v2/ledger/blobs/uploads/?mount=sha256:$LAYER_HEX&from=payments-api"
    [ "$output" = 201 ]
    [ "$(rheader Location)" = "/v2/ledger/blobs/sha256:$LAYER_HEX" ]
    run rcurl -u "x:$ALICE_TOKEN" -I "http://$REG/v2/ledger/blobs/sha256:$LAYER_HEX"
    [ "$output" = 200 ]
    [ "$(rheader Content-Length)" = "$(stat -c %s "$IMG/blobs/sha256/$LAYER_HEX")" ]
    # one copy on disk
    [ "$(find "$E2E_DATA/registry/blobs" -name "$LAYER_HEX" | wc -l)" = 1 ]
}

@test "registry: a manifest with a wrong media type is refused" {
    run rcurl -u "x:$ALICE_TOKEN" -X PUT -H 'Content-Type: application/json' \
        --data-binary "@$IMG/blobs/sha256/$MANIFEST_HEX" "http://$REG/v2/payments-api/manifests/bad"
    [ "$output" = 400 ]
    jq -e '.errors[0].code == "MANIFEST_INVALID"' "$BATS_TEST_TMPDIR/b"
}

@test "registry: repository names with '..' or uppercase are refused" {
    run rcurl -u "x:$ALICE_TOKEN" "http://$REG/v2/payments-api/../ledger/tags/list"
    [ "$output" = 400 ]
    run rcurl -u "x:$ALICE_TOKEN" "http://$REG/v2/pay..ments/tags/list"
    [ "$output" = 400 ]
    jq -e '.errors[0].code == "NAME_INVALID"' "$BATS_TEST_TMPDIR/b"
    run rcurl -u "x:$ALICE_TOKEN" "http://$REG/v2/Payments-api/tags/list"
    [ "$output" = 400 ]
}

@test "registry: tags list and referrers answer" {
    run rcurl -u "x:$BOB_TOKEN" "http://$REG/v2/payments-api/tags/list"
    [ "$output" = 200 ]
    jq -e '.tags == ["v1"]' "$BATS_TEST_TMPDIR/b"
    run rcurl -u "x:$BOB_TOKEN" "http://$REG/v2/payments-api/referrers/sha256:$MANIFEST_HEX"
    [ "$output" = 200 ]
    jq -e '.manifests == []' "$BATS_TEST_TMPDIR/b"
}

@test "registry: podman pushes and pulls (docker v2 schema 2 manifests)" {
    command -v podman >/dev/null || skip "podman is not installed"
    local T=$BATS_TEST_TMPDIR
    local P=(podman --root "$BATS_FILE_TMPDIR/podman/root" --runroot "$BATS_FILE_TMPDIR/podman/run"
        --storage-driver vfs)
    mkdir -p "$T/rootfs"
    echo "podman layer" >"$T/rootfs/p.txt"
    tar -C "$T/rootfs" -cf "$T/rootfs.tar" p.txt
    run "${P[@]}" import "$T/rootfs.tar" localhost/paved-e2e:v1
    [ "$status" -eq 0 ] || skip "podman cannot run here: $output"
    run "${P[@]}" push --tls-verify=false --format v2s2 --creds "x:$ALICE_TOKEN" \
        localhost/paved-e2e:v1 "$REG/payments-api/podman:v1"
    echo "$output"
    [ "$status" -eq 0 ]
    run rcurl -u "x:$BOB_TOKEN" "http://$REG/v2/payments-api/podman/manifests/v1"
    [ "$output" = 200 ]
    [ "$(rheader Content-Type)" = "application/vnd.docker.distribution.manifest.v2+json" ]
    "${P[@]}" rmi -f localhost/paved-e2e:v1
    run "${P[@]}" pull --tls-verify=false --creds "x:$BOB_TOKEN" "$REG/payments-api/podman:v1"
    echo "$output"
    [ "$status" -eq 0 ]
    "${P[@]}" rmi -a -f >/dev/null 2>&1 || true
}

@test "registry: the server is still healthy" {
    run curl -fsS "http://$REG/healthz"
    [ "$status" -eq 0 ]
    e2e_no_sanitizer_output "$SRV_ERR"
}
