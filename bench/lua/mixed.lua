-- mixed.lua - reads and writes of random stored secrets: writes=P percent of
-- the requests are PUT /v1/secrets/{path} with a new value of size=N bytes
-- (a new version), the rest GET /v1/secrets/{path}. Scenario "mixed" runs it
-- with writes=10 (vault-benchmark's default mix), scenario "write" with
-- writes=100. The requests and writes sent are counted for done().
local c = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local tenants, paths, tails, n, pct, put_tail

setup = c.setup

function init(args)
   local a
   a, tenants, paths, tails = c.init(args)
   n = #paths
   pct = tonumber(a.writes) or 10
   local body = c.value_body(tonumber(a.size) or 1024)
   put_tail = "Content-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
   writes, issued = 0, 0
end

function request()
   local i = math.random(n)
   issued = issued + 1
   if pct >= 100 or math.random(100) <= pct then
      writes = writes + 1
      return "PUT /v1/secrets/" .. paths[i] .. tails[tenants[i]] .. put_tail
   end
   return "GET /v1/secrets/" .. paths[i] .. tails[tenants[i]] .. "\r\n"
end

done = c.done
