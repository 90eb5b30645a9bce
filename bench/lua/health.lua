-- health.lua - GET /v1/health, the same request every time (wrk's static
-- path: no Lua per request). The URL on wrk's command line names the path.
local c = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

setup = c.setup
done = c.done
