-- secrets_put.lua - PUT of a SV_VALUE-byte value to random secrets among
-- SV_KEYS: wrk -t2 -c64 -d30s -s bench/lua/secrets_put.lua URL
-- Every request is a durable write (group commit): the figure is write
-- throughput at 64 concurrent clients.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(dir .. "secrets_common.lua")
local headers = c.headers()
local body = c.body()
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
   errors_seen = 0
end

function request()
   return wrk.format("PUT", c.path(math.random(0, c.keys - 1)), headers, body)
end

function response(status, hdrs, body)
   if status ~= 200 and status ~= 201 then
      errors_seen = errors_seen + 1
   end
end

function done(summary, latency, requests)
   local bad = 0
   for _, t in ipairs(threads) do
      bad = bad + (t:get("errors_seen") or 0)
   end
   io.write(string.format("failed writes: %d\n", bad))
end
