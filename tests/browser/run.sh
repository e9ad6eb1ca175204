#!/usr/bin/env bash
# Runs the portal browser test against a real `pave server --demo` on a random local port.
# Usage: tests/browser/run.sh   (from anywhere; build/pave, or $PAVE_BIN, must exist)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
pave="${PAVE_BIN:-$root/build/pave}"

if [ ! -x "$pave" ]; then
    echo "run.sh: $pave not found; build it first (meson setup build && ninja -C build)" >&2
    exit 2
fi
if [ ! -x /usr/bin/chromium ] && [ -z "${CHROMIUM:-}" ]; then
    echo "run.sh: chromium not found (apt-get install chromium)" >&2
    exit 2
fi

cd "$here"
if [ ! -d node_modules/playwright-core ]; then
    npm install --no-audit --no-fund
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/pave-browser.XXXXXX")"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# A free port: bind to port 0 and let the kernel choose.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
url="http://127.0.0.1:$port"

# The "Create a service" page needs the golden-path templates of this checkout.
PAVE_TEMPLATES="${PAVE_TEMPLATES:-$root/templates}" \
    "$pave" server --data-dir "$tmp" --listen "127.0.0.1:$port" --demo >"$tmp/server.log" 2>&1 &
server_pid=$!

ready=""
for _ in $(seq 1 100); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        break
    fi
    if curl -fsS -o /dev/null "$url/healthz" 2>/dev/null && [ -s "$tmp/admin.token" ]; then
        ready=1
        break
    fi
    sleep 0.1
done
if [ -z "$ready" ]; then
    echo "run.sh: the server did not become ready on $url; its log:" >&2
    cat "$tmp/server.log" >&2 || true
    exit 1
fi

status=0
PAVE_URL="$url" PAVE_TOKEN="$(tr -d '[:space:]' <"$tmp/admin.token")" \
    node --test portal.test.mjs || status=$?
if [ "$status" -ne 0 ]; then
    echo "run.sh: browser test failed; server log follows" >&2
    tail -n 50 "$tmp/server.log" >&2 || true
fi
exit "$status"
