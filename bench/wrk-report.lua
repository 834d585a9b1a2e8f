-- wrk script for bench/gateway.sh: the request's method and body from the
-- environment (BENCH_METHOD, BENCH_BODY; headers come from wrk -H), and after
-- wrk's own report one machine-readable line: `RESULT key=value …`, latencies in µs.

local method = os.getenv("BENCH_METHOD")
local body = os.getenv("BENCH_BODY")
if method and method ~= "" then
  wrk.method = method
end
if body and body ~= "" then
  wrk.body = body
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d rps=%.0f p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d non2xx=%d errors=%d\n",
    summary.requests, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
