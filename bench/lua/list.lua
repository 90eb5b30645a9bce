-- list.lua - GET /v1/secrets?prefix=bench/X&limit=100 in a random tenant,
-- X a random hex digit: the stored names are bench/<8 hex digits>, so each
-- call lists about a sixteenth of a tenant's secrets (names only).
local c = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local names, tails

setup = c.setup

function init(args)
   local _
   _, _, _, tails = c.init(args)
   names = {}
   for t in pairs(tails) do names[#names + 1] = t end
   table.sort(names)
end

local hex = "0123456789abcdef"

function request()
   local d = math.random(16)
   return "GET /v1/secrets?prefix=bench/" .. hex:sub(d, d) .. "&limit=100" ..
      tails[names[math.random(#names)]] .. "\r\n"
end

done = c.done
