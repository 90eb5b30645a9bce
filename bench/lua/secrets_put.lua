-- secrets_put.lua - PUT of a SV_VALUE-byte value to random secrets among
-- SV_KEYS: wrk -t2 -c64 -d30s -s bench/lua/secrets_put.lua URL
-- Every request is a durable write (group commit): the figure is write
-- throughput at 64 concurrent clients.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(dir .. "secrets_common.lua")

c.install_counters({[200] = true, [201] = true}, "failed writes")
init = c.seed_random

function request()
   return wrk.format("PUT", c.path(math.random(0, c.keys - 1)), c.headers, c.body)
end
