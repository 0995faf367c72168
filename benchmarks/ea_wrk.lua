-- wrk script for the EA heartbeat benchmark: each connection sends pre-built requests in turn, one account after
-- another, and the run ends by printing its figures as one JSON line (prefixed "RESULT ").
-- The requests file (env BENCH_REQUESTS): one request per line, "<path>\t<token>\t<json body>"; env BENCH_THREADS
-- is wrk's -t, so that each thread takes its own share of the lines.

local created = 0

function setup(thread)
  thread:set("id", created)
  created = created + 1
end

function init(args)
  requests = {}
  local count = tonumber(os.getenv("BENCH_THREADS") or "1")
  local n = 0
  for line in io.lines(os.getenv("BENCH_REQUESTS")) do
    if n % count == id then
      local path, token, body = line:match("^([^\t]+)\t([^\t]+)\t(.*)$")
      requests[#requests + 1] = wrk.format("POST", path, {
        ["Authorization"] = "Bearer " .. token,
        ["Content-Type"] = "application/json",
      }, body)
    end
    n = n + 1
  end
  i = 0
end

function request()
  i = i % #requests + 1
  return requests[i]
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format(
    'RESULT {"requests": %d, "per_second": %.1f, "p50_ms": %.2f, "p90_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f, ' ..
    '"non_2xx": %d, "socket_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write, summary.errors.timeout))
end
