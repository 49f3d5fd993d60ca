-- wrk script: POST an OpenAI chat request and print one machine-readable line.
--   BENCH_MODEL       model to ask for (default gpt-4o)
--   BENCH_AUTH        optional Authorization header value
--   BENCH_KEYS        if set (N), each request carries instead one of N virtual keys, picked at
--                     random: BENCH_KEY_PREFIX (default gwc-bench-vk-) .. 5-digit index, as
--                     realistic.mjs configures them. The N requests are formatted once, in init,
--                     so the pick costs wrk one table index per request.
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth ~= nil and auth ~= "" then wrk.headers["Authorization"] = auth end
local model = os.getenv("BENCH_MODEL") or "gpt-4o"
wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}'

local keys = tonumber(os.getenv("BENCH_KEYS") or "")
if keys ~= nil then
  local prefix = os.getenv("BENCH_KEY_PREFIX") or "gwc-bench-vk-"
  local formatted = {}
  init = function(args)
    math.randomseed(os.time())
    for i = 0, keys - 1 do
      local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. prefix .. string.format("%05d", i) }
      formatted[i + 1] = wrk.format("POST", "/v1/chat/completions", headers, wrk.body)
    end
  end
  request = function()
    return formatted[math.random(keys)]
  end
end

done = function(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
end
