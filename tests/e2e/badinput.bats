#!/usr/bin/env bats
# Hostile and malformed requests, driven by data files: tests/e2e/cases/*.case, one request each,
# run in name order by one loop (the way curl's tests/data/testN are run by runtests.pl).
#
# Case format: one "key: value" per line; '#' starts a comment line.
#   method: GET|POST|PUT|DELETE|PATCH        (required)
#   path: /api/v1/...                        (required; sent as is, no dot-segment squashing)
#   token: none|admin|alice|bob              (default admin)
#   header: Name: value                      (repeatable)
#   header-size: Name: prefix N              a header whose value is prefix + N 'a's
#   body: TEXT                               inline body (the rest of the line; may be empty)
#   body-printf: FORMAT                      body from printf FORMAT (\xNN, \n, \x00 ...)
#   body-file: data/NAME                     body from a file next to the cases
#   body-size: N                             N bytes of 'a'
#   body-repeat: STRING N                    STRING repeated N times
#   status: 400                              expected status; alternatives as 401|413
#   expect: TEXT                             substring the body must contain (repeatable)
#   reject: TEXT                             substring the body must not contain (repeatable)
#   tags: slow                               informational
#   known-bug: WHY                           the case fails because of a known product bug; it
#                                            runs in its own test so the others stay meaningful
# A JSON body without a header is sent as Content-Type: application/json.
# E2E_CASES=glob (e.g. 'json-*') runs a subset.

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
    CASES="$BATS_TEST_DIRNAME/cases"
}

teardown() {
    e2e_check_sanitizer_logs
}

# Prints the value of KEY in FILE (first occurrence); returns 1 if absent.
case_get() {
    local file=$1 key=$2 line
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in
        "$key:"*)
            line=${line#"$key:"}
            printf '%s' "${line# }"
            return 0
            ;;
        esac
    done <"$file"
    return 1
}

# Prints every value of KEY in FILE, one per line.
case_all() {
    local file=$1 key=$2 line
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in
        "$key:"*)
            line=${line#"$key:"}
            printf '%s\n' "${line# }"
            ;;
        esac
    done <"$file"
}

# Runs one case; prints why it failed and returns 1, or returns 0.
run_case() {
    local file=$1 name method path token status body_file=""
    name=$(basename "$file" .case)
    method=$(case_get "$file" method) || {
        echo "$name: no method"
        return 1
    }
    path=$(case_get "$file" path) || {
        echo "$name: no path"
        return 1
    }
    token=$(case_get "$file" token) || token=admin
    status=$(case_get "$file" status) || {
        echo "$name: no status"
        return 1
    }
    local args=(-sS --path-as-is -m 30 -X "$method" -o "$BATS_TEST_TMPDIR/$name.resp"
        -w '%{http_code}')
    case "$token" in
    none) ;;
    admin) args+=(-H "Authorization: Bearer $ADMIN_TOKEN") ;;
    alice) args+=(-H "Authorization: Bearer $ALICE_TOKEN") ;;
    bob) args+=(-H "Authorization: Bearer $BOB_TOKEN") ;;
    *)
        echo "$name: unknown token role '$token'"
        return 1
        ;;
    esac
    local h has_ct=0
    while IFS= read -r h; do
        [ -n "$h" ] || continue
        args+=(-H "$h")
        [[ "${h,,}" == content-type:* ]] && has_ct=1
    done < <(case_all "$file" header)
    local hs
    if hs=$(case_get "$file" header-size); then
        local hname=${hs%%:*} rest=${hs#*: } n
        n=${rest##* }
        rest=${rest% *}
        printf '%s: %s' "$hname" "$rest" >"$BATS_TEST_TMPDIR/$name.hdr"
        head -c "$n" /dev/zero | tr '\0' a >>"$BATS_TEST_TMPDIR/$name.hdr"
        args+=(-H "@$BATS_TEST_TMPDIR/$name.hdr")
    fi
    local v
    body_file="$BATS_TEST_TMPDIR/$name.body"
    if v=$(case_get "$file" body); then
        printf '%s' "$v" >"$body_file"
    elif v=$(case_get "$file" body-printf); then
        # shellcheck disable=SC2059 # the case supplies the format on purpose
        printf "$v" >"$body_file"
    elif v=$(case_get "$file" body-file); then
        cp "$CASES/$v" "$body_file" || {
            echo "$name: missing body file $v"
            return 1
        }
    elif v=$(case_get "$file" body-size); then
        head -c "$v" /dev/zero | tr '\0' a >"$body_file"
    elif v=$(case_get "$file" body-repeat); then
        local s=${v% *} n=${v##* }
        python3 -c 'import sys; sys.stdout.write(sys.argv[1] * int(sys.argv[2]))' "$s" "$n" \
            >"$body_file"
    else
        body_file=""
    fi
    if [ -n "$body_file" ]; then
        args+=(--data-binary "@$body_file")
        [ "$has_ct" = 1 ] || args+=(-H 'Content-Type: application/json')
    fi
    local got resp
    got=$(curl "${args[@]}" "$PAVE_SERVER$path" 2>"$BATS_TEST_TMPDIR/$name.err") ||
        got="curl failed ($?): $(cat "$BATS_TEST_TMPDIR/$name.err")"
    resp=$(tr -d '\0' <"$BATS_TEST_TMPDIR/$name.resp" 2>/dev/null)
    local ok=1 want
    [[ "|$status|" == *"|$got|"* ]] || {
        echo "$name: $method $path -> status $got, want $status"
        ok=0
    }
    while IFS= read -r want; do
        [ -n "$want" ] || continue
        [[ "$resp" == *"$want"* ]] || {
            echo "$name: body lacks '$want'"
            ok=0
        }
    done < <(case_all "$file" expect)
    while IFS= read -r want; do
        [ -n "$want" ] || continue
        [[ "$resp" != *"$want"* ]] || {
            echo "$name: body contains '$want'"
            ok=0
        }
    done < <(case_all "$file" reject)
    if [ "$ok" = 0 ]; then
        echo "$name: body was: ${resp:0:400}"
        return 1
    fi
    # Every API answer, error or not, is JSON (the 431 from the HTTP library is not ours).
    if [ "$got" != 431 ] && [ -n "$resp" ] && ! jq -e . >/dev/null 2>&1 <<<"$resp"; then
        echo "$name: body is not JSON: ${resp:0:200}"
        return 1
    fi
    return 0
}

# Runs the cases selected by KNOWN (0 = ordinary, 1 = known-bug); fails listing every failure.
run_cases() {
    local known=$1 f n=0 failed=0 report=""
    for f in "$CASES"/${E2E_CASES:-*}.case; do
        [ -f "$f" ] || continue
        if case_get "$f" known-bug >/dev/null; then
            [ "$known" = 1 ] || continue
        else
            [ "$known" = 0 ] || continue
        fi
        n=$((n + 1))
        local out
        if ! out=$(run_case "$f"); then
            failed=$((failed + 1))
            [ "$known" = 1 ] && out="$out"$'\n'"  known bug: $(case_get "$f" known-bug)"
            report+="$out"$'\n'
        fi
    done
    echo "# $n cases, $failed failed" >&3
    if [ "$failed" != 0 ]; then
        printf '%s' "$report"
        return 1
    fi
}

# bats test_tags=slow
@test "every bad-input case in cases/*.case answers as expected" {
    run_cases 0
}

# bats test_tags=needs-sqlite3
@test "after the bad input the server is healthy and the catalog still has its 3 services" {
    run -0 curl -fsS -m 10 "$PAVE_SERVER/healthz"
    [ "$output" = '{"status":"ok"}' ]
    api admin GET /api/v1/services
    expect_status 200
    [ "$(jq -r '[.items[].name] | sort | join(",")' <<<"$API_BODY")" = "auth-service,ledger,payments-api" ]
    [ "$(jq .total <<<"$API_BODY")" = 3 ]
    # The tables the SQL cases aimed at are all still there.
    api admin GET /api/v1/teams
    jq -e '[.items[].name] | index("payments") != null' <<<"$API_BODY"
    run -0 sqlite3 -readonly "$E2E_DATA/pave.db" "SELECT count(*) FROM services"
    [ "$output" = 3 ]
}
