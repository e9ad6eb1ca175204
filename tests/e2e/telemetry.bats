#!/usr/bin/env bats
# The observability pipeline as a logging agent (`pave agent`): kill -9 mid-stream with a disk
# buffer loses nothing; bad input (invalid JSON, invalid UTF-8, NUL bytes, 1 MiB lines) is kept
# as plain bodies and never stops the pipeline; config errors name file:line:column. Bounded
# waits only; every agent is stopped in teardown.

bats_require_minimum_version 1.5.0

setup() {
    load helpers
    e2e_sandbox
    W="$BATS_TEST_TMPDIR"
    AGENTS=()
}

teardown() {
    local p
    for p in "${AGENTS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    e2e_check_sanitizer_logs
}

# start_agent CONFIG DATA: runs pave agent in the background; sets AGENT.
start_agent() {
    "$PAVE_BIN" agent --config "$1" --data-dir "$2" >>"$W/agent.out" 2>>"$W/agent.err" &
    AGENT=$!
    AGENTS+=("$AGENT")
}

# Waits (at most N*0.1 s) until FILE has at least COUNT lines.
wait_lines() {
    local file=$1 count=$2 n=${3:-600} _
    for _ in $(seq 1 "$n"); do
        [ -f "$file" ] && [ "$(wc -l <"$file")" -ge "$count" ] && return 0
        sleep 0.1
    done
    echo "# $file has $(wc -l <"$file" 2>/dev/null || echo 0) lines, wanted $count" >&2
    return 1
}

@test "agent: kill -9 mid-stream with a disk buffer: every line delivered at least once" {
    local total=200000
    cat >"$W/agent.yaml" <<YAML
sources:
  - {type: file, path: $W/in.log, read_from: beginning}
transforms: []
sinks:
  - {type: file, name: out, path: $W/out.jsonl, buffer: {type: disk}}
YAML
    : >"$W/in.log"
    # the application writes 200 000 lines in 40 bursts while the agent reads
    (
        for b in $(seq 0 39); do
            seq $((b * 5000)) $((b * 5000 + 4999)) |
                awk '{ printf "{\"level\":\"info\",\"msg\":\"event\",\"i\":%d}\n", $1 }' >>"$W/in.log"
            sleep 0.05
        done
    ) &
    writer=$!
    start_agent "$W/agent.yaml" "$W/data"
    wait_lines "$W/out.jsonl" 20000
    kill -KILL "$AGENT"
    wait "$AGENT" 2>/dev/null || true
    before=$(wc -l <"$W/out.jsonl")
    start_agent "$W/agent.yaml" "$W/data"
    wait "$writer"
    # duplicates count as lines: wait for every distinct line (bounded), not for a line count
    local unique=0 _
    for _ in $(seq 1 240); do
        unique=$(jq -r '.attributes.i' "$W/out.jsonl" | sort -un | wc -l)
        [ "$unique" -ge "$total" ] && break
        sleep 0.5
    done
    kill -TERM "$AGENT"
    wait "$AGENT" || true
    lines=$(wc -l <"$W/out.jsonl")
    unique=$(jq -r '.attributes.i' "$W/out.jsonl" | sort -un | wc -l)
    echo "killed after $before lines; $lines lines out, $unique unique, $((lines - unique)) duplicates"
    [ "$unique" = "$total" ]
    [ "$(jq -r '.attributes.i' "$W/out.jsonl" | sort -n | head -n 1)" = 0 ]
    [ "$(jq -r '.attributes.i' "$W/out.jsonl" | sort -n | tail -n 1)" = $((total - 1)) ]
}

@test "agent: bad input is kept as plain bodies and the pipeline keeps flowing" {
    cat >"$W/agent.yaml" <<YAML
sources:
  - {type: file, path: $W/in.log, read_from: beginning}
transforms: [{type: redact}]
sinks:
  - {type: file, path: $W/out.jsonl}
YAML
    {
        echo '{"level":"info","msg":"first"}'
        echo '{"level":"info","msg": broken json'
        printf 'invalid utf-8: \xff\xfe\xc3\x28 end\n'
        printf 'nul \0 byte inside\n'
        head -c 1048576 /dev/zero | tr '\0' 'a'
        echo
        head -c 1200000 /dev/zero | tr '\0' 'b'
        echo
        printf '{"a":%.0s' $(seq 1 500)
        echo
        echo '{"level":"error","msg":"last, mail bob@example.com"}'
    } >"$W/in.log"
    start_agent "$W/agent.yaml" "$W/data"
    wait_lines "$W/out.jsonl" 8
    kill -TERM "$AGENT"
    wait "$AGENT"
    # every output line is valid JSON, in order, nothing lost
    run -0 jq -c '.body | length' "$W/out.jsonl"
    [ "${#lines[@]}" = 8 ]
    run -0 jq -r '.body' "$W/out.jsonl"
    [ "$(jq -r '.body' "$W/out.jsonl" | head -n 1)" = first ]
    [[ "$(jq -r '.body' "$W/out.jsonl" | sed -n 2p)" == *"broken json"* ]]
    [[ "$(jq -r '.body' "$W/out.jsonl" | sed -n 3p)" == *"invalid utf-8: "*"end"* ]]
    [ "$(jq -r '.body' "$W/out.jsonl" | tail -n 1)" = "last, mail [REDACTED:email]" ]
    [ "$(jq -r '.severity' "$W/out.jsonl" | tail -n 1)" = ERROR ]
    # the 1.2 MB line was cut at 1 MiB
    [ "$(jq -r '.body | length' "$W/out.jsonl" | sort -n | tail -n 1)" -le 1048576 ]
}

@test "agent: config errors name file:line:column; --check builds every component" {
    printf 'sources: []\nsinks:\n  - {type: file, pth: /tmp/x}\n' >"$W/bad.yaml"
    run -1 "$PAVE_BIN" agent --config "$W/bad.yaml" --data-dir "$W/d" --check
    [[ "$output" == *"$W/bad.yaml:3:"*"unknown key 'pth'"*"did you mean 'path'"* ]]
    printf 'sources: []\nsinks: [{type: file, path: %s/ok.jsonl}]\n' "$W" >"$W/ok.yaml"
    run -0 "$PAVE_BIN" agent --config "$W/ok.yaml" --data-dir "$W/d" --check
    [[ "$output" == *"ok"* ]]
    run -2 "$PAVE_BIN" agent
    run -0 "$PAVE_BIN" agent --help
}
