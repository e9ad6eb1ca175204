# Shared helpers for the end-to-end suite (bats). Load with `load helpers`.
#
# One `pave server --demo` serves a whole .bats file: e2e_server_start in setup_file starts it
# on a random free loopback port with a fresh data dir, waits for /healthz, exports
# PAVE_SERVER / PAVE_TOKEN / ALICE_TOKEN / BOB_TOKEN; e2e_server_stop in teardown_file sends
# SIGTERM and fails if the server exited non-zero or a sanitizer reported anything.
#
# The binary comes from PAVE_BIN (default: $REPO/build/pave). CLI commands run through `pave`
# below, from a private working directory with HOME and XDG_CONFIG_HOME in the file's temp dir,
# so a stray ./.pave/admin.token or ~/.config/pave/config never leaks in. Every wait is bounded.

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$E2E_DIR/../.." && pwd)"
export PAVE_BIN="${PAVE_BIN:-$REPO/build/pave}"

SANITIZER_PATTERN='ERROR: AddressSanitizer|runtime error:|LeakSanitizer|ERROR: UndefinedBehaviorSanitizer'

# Makes the per-file sandbox: home, config dir, CLI working dir, sanitizer log dir.
# Exports E2E_ROOT, HOME, XDG_CONFIG_HOME, E2E_CWD, E2E_SANLOG.
e2e_sandbox() {
    if [ ! -x "$PAVE_BIN" ]; then
        echo "PAVE_BIN '$PAVE_BIN' is not an executable; build it first (ninja -C build)" >&2
        return 1
    fi
    export E2E_ROOT="$BATS_FILE_TMPDIR"
    export HOME="$E2E_ROOT/home"
    export XDG_CONFIG_HOME="$HOME/.config"
    export E2E_CWD="$E2E_ROOT/cwd"
    export E2E_SANLOG="$E2E_ROOT/sanitizer"
    mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$E2E_CWD" "$E2E_SANLOG"
    unset PAVE_SERVER PAVE_TOKEN
    # Sanitizer reports from CLI processes go to files (so `run` output stays clean and a
    # report fails the test even when the exit code was the expected one). The server keeps
    # reporting on its stderr, which e2e_server_stop scans.
    export E2E_ASAN_BASE="${ASAN_OPTIONS:-}" E2E_UBSAN_BASE="${UBSAN_OPTIONS:-}"
    export ASAN_OPTIONS="${E2E_ASAN_BASE:+$E2E_ASAN_BASE:}log_path=$E2E_SANLOG/cli"
    export UBSAN_OPTIONS="${E2E_UBSAN_BASE:+$E2E_UBSAN_BASE:}print_stacktrace=1:log_path=$E2E_SANLOG/cli"
}

# Fails (with the reports) if any CLI process wrote a sanitizer report. Call from teardown.
e2e_check_sanitizer_logs() {
    local f found=0
    for f in "$E2E_SANLOG"/cli*; do
        [ -e "$f" ] || continue
        echo "# sanitizer report from a CLI process ($f):" >&2
        cat "$f" >&2
        found=1
    done
    if [ "$found" = 1 ]; then
        mkdir -p "$E2E_ROOT/sanitizer-seen"
        mv "$E2E_SANLOG"/cli* "$E2E_ROOT/sanitizer-seen/"
        return 1
    fi
}

# Runs the pave CLI from the private working directory.
pave() {
    (cd "$E2E_CWD" && "$PAVE_BIN" "$@")
}

# Starts `pave server` on DATA_DIR (default: a fresh dir) and a random port with --demo and any
# extra flags. Sets SRV_DIR, SRV_PORT, SRV_PID, SRV_OUT, SRV_ERR, SRV_RC (file that receives the
# exit code). Returns non-zero if it could not be started.
# Usage: e2e_server_launch NAME DATA_DIR [extra flags...]
e2e_server_launch() {
    local name=$1 data=$2
    shift 2
    local attempt port
    for attempt in 1 2 3 4 5 6 7 8; do
        port=$((20000 + RANDOM % 12000)) # below the ephemeral range (32768-60999)
        e2e_port_busy "$port" && continue
        local run="$E2E_ROOT/$name.$attempt"
        mkdir -p "$run"
        # A wrapper subshell records the exit code; fd 3 (bats' output) is closed so bats does
        # not wait for the server.
        (
            env ASAN_OPTIONS="$E2E_ASAN_BASE" UBSAN_OPTIONS="${E2E_UBSAN_BASE:+$E2E_UBSAN_BASE:}print_stacktrace=1" \
                "$PAVE_BIN" server --data-dir "$data" --listen "127.0.0.1:$port" "$@" \
                >>"$run/stdout" 2>>"$run/stderr" &
            echo $! >"$run/pid"
            # (bats runs with set -e: a bare `wait` on a failing server would end the subshell
            # before the exit code is written.)
            code=0
            wait $! || code=$?
            echo "$code" >"$run/rc"
        ) 3>&- </dev/null &
        echo "$run" >>"$E2E_ROOT/runs"
        if e2e_wait_healthy "$run" "$port"; then
            SRV_PID="$(cat "$run/pid")"
            export SRV_DIR="$data" SRV_PORT="$port" SRV_PID
            export SRV_OUT="$run/stdout" SRV_ERR="$run/stderr" SRV_RC="$run/rc" SRV_RUN="$run"
            return 0
        fi
        # Port taken between the check and the bind: try another; anything else is fatal.
        if [ -f "$run/rc" ] && grep -q 'cannot listen' "$run/stderr"; then
            continue
        fi
        echo "# pave server did not become healthy; stderr:" >&2
        cat "$run/stderr" >&2
        e2e_kill_run "$run"
        return 1
    done
    echo "# no free port after 8 attempts" >&2
    return 1
}

e2e_port_busy() {
    (exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Waits (at most 10 s) for /healthz on PORT while the process in RUN is alive.
e2e_wait_healthy() {
    local run=$1 port=$2 _
    for _ in $(seq 1 100); do
        [ -f "$run/rc" ] && return 1
        if [ -s "$run/pid" ] &&
            curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

e2e_kill_run() {
    local run=$1
    [ -s "$run/pid" ] && kill -KILL "$(cat "$run/pid")" 2>/dev/null
    return 0
}

# Kills (SIGKILL) every server this file started that is still running, except the shared one.
# For teardown, so a failed test leaves nothing behind.
e2e_kill_leftovers() {
    local run
    [ -f "$E2E_ROOT/runs" ] || return 0
    while read -r run; do
        [ "$run" = "${E2E_MAIN_RUN:-}" ] && continue
        [ -f "$run/rc" ] || e2e_kill_run "$run"
    done <"$E2E_ROOT/runs"
}

# Sends SIGTERM to the server of RUN and waits (at most 20 s) for its exit code, printed on
# stdout. Kills it and returns 1 if it does not stop.
e2e_server_terminate() {
    local run=$1 _
    [ -f "$run/rc" ] || kill -TERM "$(cat "$run/pid")" 2>/dev/null
    for _ in $(seq 1 200); do
        if [ -s "$run/rc" ]; then
            cat "$run/rc"
            return 0
        fi
        sleep 0.1
    done
    e2e_kill_run "$run"
    echo "# pave server did not stop within 20 s of SIGTERM" >&2
    return 1
}

# Fails if FILE holds a sanitizer report (prints it).
e2e_no_sanitizer_output() {
    if grep -Eq "$SANITIZER_PATTERN" "$1"; then
        echo "# sanitizer report in $1:" >&2
        cat "$1" >&2
        return 1
    fi
}

# Calls the API as ROLE (none|admin|alice|bob|garbage|TOKEN=<value>).
# Sets API_STATUS and API_BODY (also returns 0 whatever the status).
# Usage: api ROLE METHOD PATH [curl args...]
api() {
    local role=$1 method=$2 path=$3 tok=""
    shift 3
    case "$role" in
    none) tok="" ;;
    admin) tok="$ADMIN_TOKEN" ;;
    alice) tok="$ALICE_TOKEN" ;;
    bob) tok="$BOB_TOKEN" ;;
    garbage) tok="pave_0000000000000000000000000000000000000000" ;;
    TOKEN=*) tok="${role#TOKEN=}" ;;
    *)
        echo "api: unknown role '$role'" >&2
        return 2
        ;;
    esac
    local args=(-sS --path-as-is -m 20 -X "$method" -o "$E2E_ROOT/api.body" -w '%{http_code}')
    [ -n "$tok" ] && args+=(-H "Authorization: Bearer $tok")
    API_STATUS=$(curl "${args[@]}" "$@" "$PAVE_SERVER$path") || API_STATUS="curl-failed:$?"
    API_BODY=$(cat "$E2E_ROOT/api.body" 2>/dev/null)
    rm -f "$E2E_ROOT/api.body"
    return 0
}

# Asserts the last api call answered STATUS; prints the exchange otherwise.
expect_status() {
    if [ "$API_STATUS" != "$1" ]; then
        echo "expected HTTP $1, got $API_STATUS; body: $API_BODY" >&2
        return 1
    fi
}

# Creates a token for USER as admin and prints it.
e2e_token_for() {
    api admin POST /api/v1/tokens -H 'Content-Type: application/json' \
        -d "{\"name\":\"e2e-$1\",\"user\":\"$1\"}"
    expect_status 201 || return 1
    jq -er .token <<<"$API_BODY"
}

# setup_file body for files that need the shared demo server.
e2e_server_start() {
    e2e_sandbox || return 1
    e2e_server_launch main "$E2E_ROOT/data" --demo || return 1
    export E2E_MAIN_RUN="$SRV_RUN" E2E_DATA="$SRV_DIR"
    export PAVE_SERVER="http://127.0.0.1:$SRV_PORT"
    export ADMIN_TOKEN
    ADMIN_TOKEN="$(cat "$E2E_DATA/admin.token")" || return 1
    export PAVE_TOKEN="$ADMIN_TOKEN"
    export ALICE_TOKEN BOB_TOKEN
    ALICE_TOKEN="$(e2e_token_for alice)" || return 1
    BOB_TOKEN="$(e2e_token_for bob)" || return 1
}

# teardown_file body: stop the shared server, fail on a non-zero exit or sanitizer output.
e2e_server_stop() {
    [ -n "${E2E_MAIN_RUN:-}" ] || return 0
    local rc
    rc=$(e2e_server_terminate "$E2E_MAIN_RUN") || return 1
    e2e_no_sanitizer_output "$E2E_MAIN_RUN/stderr" || return 1
    if [ "$rc" != 0 ]; then
        echo "# pave server exited with status $rc; stderr:" >&2
        tail -n 50 "$E2E_MAIN_RUN/stderr" >&2
        return 1
    fi
    e2e_check_sanitizer_logs
}

# ---- services built by their pipeline (deploy, prometheus) -------------------------------------

# A free loopback port below the ephemeral range.
e2e_free_port() {
    local p _
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 12000))
        e2e_port_busy "$p" || {
            echo "$p"
            return 0
        }
    done
    return 1
}

# e2e_git_push SERVICE MESSAGE: commits $E2E_CWD/SERVICE and pushes it to the platform (port
# MAIN_PORT, token PAVE_TOKEN), which queues a pipeline run; then waits (at most 300 s) for that
# run to succeed.
e2e_git_push() {
    local svc=$1 before
    shift
    before=$(e2e_latest_run "$svc")
    (
        cd "$E2E_CWD/$svc" &&
            { [ -d .git ] || git init -q -b main; } &&
            git add -A &&
            git -c user.email=e2e@pave.test -c user.name=e2e commit -qm "$1" &&
            git push -q "http://pave:$PAVE_TOKEN@127.0.0.1:$MAIN_PORT/git/$svc.git" main
    ) >/dev/null 2>&1 || return 1
    local id="" _
    for _ in $(seq 1 100); do
        id=$(e2e_latest_run "$svc")
        [ -n "$id" ] && [ "$id" != "$before" ] && break
        sleep 0.1
    done
    [ -n "$id" ] && [ "$id" != "$before" ] || {
        echo "# the push queued no run" >&2
        return 1
    }
    e2e_wait_run_ok "$id"
}

e2e_latest_run() {
    curl -fsS -H "Authorization: Bearer $PAVE_TOKEN" "$PAVE_SERVER/api/v1/runs?service=$1" |
        jq -r '[.items[].id] | max // empty'
}

# Waits (at most 300 s) for run ID to succeed.
e2e_wait_run_ok() {
    local id=$1 state _
    for _ in $(seq 1 600); do
        state=$(curl -fsS -H "Authorization: Bearer $PAVE_TOKEN" \
            "$PAVE_SERVER/api/v1/runs/$id" 2>/dev/null | jq -r .state)
        case "$state" in
        succeeded) return 0 ;;
        failed | cancelled)
            echo "# run $id $state:" >&2
            "$PAVE_BIN" runs log "$id" >&2
            return 1
            ;;
        esac
        sleep 0.5
    done
    echo "# run $id did not finish" >&2
    return 1
}
