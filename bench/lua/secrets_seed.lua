-- secrets_seed.lua - writes secrets 0..SV_KEYS-1 once each, then stops:
-- wrk -t2 -c64 -d30s -s bench/lua/secrets_seed.lua URL -- 2
-- (the number after -- must equal -t). Thread t of T writes t, t+T, t+2T, ...;
-- a thread stops when its share is done (wrk itself runs for -d).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(dir .. "secrets_common.lua")
local headers = c.headers()
local body = c.body()
-- setup runs in the main Lua state before each thread starts: it numbers the
-- threads (a thread may already run before the next one is set up, so the
-- thread count comes from the command line instead)
local threads, count = {}, 0

function setup(thread)
   thread:set("id", count)
   count = count + 1
   table.insert(threads, thread)
end

function init(args)
   nthreads = tonumber(args[1]) or error("pass the thread count after --, e.g. -- 2")
   next_i = id
   written = 0
   errors_seen = 0
end

function request()
   local i = next_i
   next_i = next_i + nthreads
   if i >= c.keys then
      wrk.thread:stop()
      i = i % c.keys
   end
   return wrk.format("PUT", c.path(i), headers, body)
end

function response(status, hdrs, body)
   if status == 200 or status == 201 then
      written = written + 1
   else
      errors_seen = errors_seen + 1
   end
end

function done(summary, latency, requests)
   local ok, bad = 0, 0
   for _, t in ipairs(threads) do
      ok = ok + (t:get("written") or 0)
      bad = bad + (t:get("errors_seen") or 0)
   end
   io.write(string.format("seeded: %d writes, %d failed\n", ok, bad))
end
