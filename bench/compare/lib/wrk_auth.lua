-- wrk script for the auth-proxy benchmark.
--
-- Environment:
--   BENCH_TOKENS_FILE  file with one JWT per line (required; may hold 1 line)
--   BENCH_RESULT_FILE  where done() writes a JSON summary (optional)
--   BENCH_FRESH        "1" = fresh-token mode (below); unset = 1 token / N tokens
--
-- With one token the request is static (wrk's fast path: built once).
-- With N tokens every request is pre-formatted once in init() and the script
-- rotates through them, so consecutive requests carry different identities
-- (spreads per-token cache and rate-limit state over N keys). Each wrk thread starts at a different offset.
--
-- Fresh mode (BENCH_FRESH=1; the 'fresh' / cache-miss variant): every request
-- carries a token from lines BENCH_FRESH_FIRST..BENCH_FRESH_LAST (1-based,
-- inclusive) of the file, each handed out ONCE, in file order, never wrapped.
-- With T = BENCH_WRK_THREADS threads, thread k takes lines FIRST+k, FIRST+k+T, ...
-- (disjoint).  When a thread has used all its lines it counts every further
-- request as "beyond" the pool and then:
--   BENCH_FRESH_WRAP unset/0: sends "Bearer pool-exhausted" (the proxy answers
--     401; non-2xx if wrk still counts it) and stops the thread
--     (wrk.thread:stop()): a short row, flagged by the report;
--   BENCH_FRESH_WRAP=1: starts over at its first line (only for the no-auth
--     reference rows, which never look at the token); counted and shown.
-- done() writes "fresh": {first, last, used, beyond, next, wrap} into the JSON;
-- "next" = the first line a later run may use without repeating a token.
-- Note: wrk builds one request before the run to check it (thread 0): that
-- token is counted as used and skipped, never sent twice.

local tokens_file = os.getenv("BENCH_TOKENS_FILE")
assert(tokens_file, "BENCH_TOKENS_FILE is not set")
local fresh = os.getenv("BENCH_FRESH") == "1"
local tokens = {}
local fresh_threads = {}

if fresh then
   local first = assert(tonumber(os.getenv("BENCH_FRESH_FIRST") or ""), "BENCH_FRESH_FIRST is not set")
   local last = assert(tonumber(os.getenv("BENCH_FRESH_LAST") or ""), "BENCH_FRESH_LAST is not set")
   local nthreads = tonumber(os.getenv("BENCH_WRK_THREADS") or "") or 1
   local wrap = os.getenv("BENCH_FRESH_WRAP") == "1"
   function setup(thread)
      thread:set("fresh_k", #fresh_threads)  -- this thread's number, 0-based
      fresh_threads[#fresh_threads + 1] = thread
   end

   function init(args)
      local k = fresh_k or 0  -- global set by setup() in this thread's state
      toks = {}
      local i = 0
      for line in io.lines(tokens_file) do
         i = i + 1
         if i > last then break end
         if i >= first and (i - first) % nthreads == k and #line > 0 then toks[#toks + 1] = line end
      end
      n = #toks
      assert(n > 0 or not wrap, "fresh: no token in lines " .. first .. ".." .. last)
      local h = {}
      for key, v in pairs(wrk.headers) do h[key] = v end
      h["Authorization"] = "Bearer @@BENCH_TOKEN@@"
      local req = wrk.format(nil, nil, h)
      local s, e = req:find("@@BENCH_TOKEN@@", 1, true)
      pre, post = req:sub(1, s - 1), req:sub(e + 1)
      used, beyond, stopped = 0, 0, false
   end

   function request()
      if used < n then
         used = used + 1
         return pre .. toks[used] .. post
      end
      beyond = beyond + 1
      if wrap then
         return pre .. toks[(beyond - 1) % n + 1] .. post
      end
      if not stopped then
         stopped = true
         wrk.thread:stop()
      end
      return pre .. "pool-exhausted" .. post
   end

   function fresh_summary()
      local used_sum, beyond_sum, used_max = 0, 0, 0
      for _, t in ipairs(fresh_threads) do
         local u, b = t:get("used") or 0, t:get("beyond") or 0
         used_sum, beyond_sum = used_sum + u, beyond_sum + b
         if u > used_max then used_max = u end
      end
      local nxt = math.min(first + nthreads * used_max, last + 1)
      return string.format('"fresh":{"first":%d,"last":%d,"threads":%d,"used":%d,"beyond":%d,"next":%d,"wrap":%s},',
         first, last, nthreads, used_sum, beyond_sum, nxt, wrap and "true" or "false"), last - first + 1
   end
else
   for line in io.lines(tokens_file) do
      if #line > 0 then tokens[#tokens + 1] = line end
   end
   assert(#tokens > 0, "no token in " .. tokens_file)

   if #tokens == 1 then
      wrk.headers["Authorization"] = "Bearer " .. tokens[1]
   else
      local thread_no = 0
      function setup(thread)
         thread:set("offset", thread_no * 7919)  -- spread threads over the list
         thread_no = thread_no + 1
      end

      function init(args)
         reqs = {}
         for i, t in ipairs(tokens) do
            local h = {}
            for k, v in pairs(wrk.headers) do h[k] = v end
            h["Authorization"] = "Bearer " .. t
            reqs[i] = wrk.format(nil, nil, h)
         end
         n = #reqs
         idx = (offset or 0) % n
      end

      function request()
         idx = idx % n + 1
         return reqs[idx]
      end
   end
end

function done(summary, latency, requests)
   local out = os.getenv("BENCH_RESULT_FILE")
   if not out or out == "" then return end
   local e = summary.errors
   local fresh_json, ntok = "", #tokens
   if fresh then fresh_json, ntok = fresh_summary() end
   local f = assert(io.open(out, "w"))
   f:write(string.format(
      '{"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d},' ..
      '%s"tokens":%d}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.stdev,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, fresh_json, ntok))
   f:close()
end
