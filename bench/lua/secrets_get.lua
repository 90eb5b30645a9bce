-- secrets_get.lua - GET of random secrets among SV_KEYS (seeded by
-- secrets_seed.lua): wrk -t2 -c64 -d30s -s bench/lua/secrets_get.lua URL
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(dir .. "secrets_common.lua")

c.install_counters({[200] = true}, "non-200 responses")
init = c.seed_random

function request()
   return wrk.format("GET", c.path(math.random(0, c.keys - 1)), c.headers)
end
