-- read.lua - GET /v1/secrets/{path} of a random stored secret, authenticated
-- as that secret's tenant (bench/README.md, scenario "read").
local c = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local tenants, paths, tails, n

setup = c.setup

function init(args)
   _, tenants, paths, tails = c.init(args)
   n = #paths
end

function request()
   local i = math.random(n)
   return "GET /v1/secrets/" .. paths[i] .. tails[tenants[i]] .. "\r\n"
end

done = c.done
