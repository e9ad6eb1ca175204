-- wrk script for bench/catalog. Environment:
--   PAVE_TOKEN   bearer token
--   BENCH_MODE   "list" (GET /api/v1/services?limit=50&offset=<random multiple of 50>) or
--                "cursor" (GET /api/v1/services?limit=50&after=<random svc-NNNNN>) or
--                "show" (GET /api/v1/services/<random svc-NNNNN>)
--   BENCH_N      number of services loaded (svc-00000 .. svc-<N-1>)
-- done() prints one machine-readable line: RESULT mode=... p50_ms=... p99_ms=... rps=...
local token = os.getenv("PAVE_TOKEN") or ""
local mode = os.getenv("BENCH_MODE") or "list"
local n = tonumber(os.getenv("BENCH_N") or "10000")

wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Accept"] = "application/json"

local thread_id = 0
function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0))
end

local pages = math.max(1, math.floor(n / 50))

function request()
  if mode == "cursor" then
    return wrk.format("GET", string.format("/api/v1/services?limit=50&after=svc-%05d",
                                           math.random(0, n - 1)))
  end
  if mode == "show" then
    return wrk.format("GET", string.format("/api/v1/services/svc-%05d", math.random(0, n - 1)))
  end
  return wrk.format("GET", "/api/v1/services?limit=50&offset=" .. (math.random(0, pages - 1) * 50))
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT mode=%s requests=%d rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f " ..
    "non2xx=%d socket_errors=%d\n",
    mode, summary.requests, summary.requests / secs, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
