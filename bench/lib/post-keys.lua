-- wrk script: like post.lua, but each request carries a virtual key picked at
-- random from BENCH_KEYS keys (BENCH_KEY_PREFIX .. 5-digit index, as
-- realistic.mjs configures them). The requests are formatted once in init, so
-- the pick costs wrk one table index per request.
--   BENCH_MODEL, BENCH_KEYS (default 1000), BENCH_KEY_PREFIX (default gwc-bench-vk-)
local model = os.getenv("BENCH_MODEL") or "gpt-4o"
local count = tonumber(os.getenv("BENCH_KEYS") or "1000")
local prefix = os.getenv("BENCH_KEY_PREFIX") or "gwc-bench-vk-"
local body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}'
local requests = {}

init = function(args)
  math.randomseed(os.time())
  for i = 0, count - 1 do
    local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. prefix .. string.format("%05d", i) }
    requests[i + 1] = wrk.format("POST", "/v1/chat/completions", headers, body)
  end
end

request = function()
  return requests[math.random(count)]
end

done = function(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
end
