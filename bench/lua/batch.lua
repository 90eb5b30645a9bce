-- batch.lua - POST /v1/secrets/batch with batch=N (default 100) distinct
-- random paths of one random tenant per call. A pool of 1000 requests per
-- thread is built in init(), so that building JSON bodies does not slow the
-- load generator.
local c = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local pool = {}

setup = c.setup

function init(args)
   local a, tenants, paths, tails = c.init(args)
   local by_tenant, names = {}, {}
   for i = 1, #paths do
      local t = tenants[i]
      if not by_tenant[t] then
         by_tenant[t] = {}
         names[#names + 1] = t
      end
      local list = by_tenant[t]
      list[#list + 1] = paths[i]
   end
   local size = tonumber(a.batch) or 100
   for r = 1, 1000 do
      local t = names[math.random(#names)]
      local list = by_tenant[t]
      local k = math.min(size, #list)
      -- a partial Fisher-Yates shuffle picks k distinct paths
      local picked = {}
      for j = 1, k do
         local m = math.random(j, #list)
         list[j], list[m] = list[m], list[j]
         picked[j] = '"' .. list[j] .. '"'
      end
      local body = '{"paths":[' .. table.concat(picked, ",") .. ']}'
      pool[r] = "POST /v1/secrets/batch" .. tails[t] ..
         "Content-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
   end
end

function request()
   return pool[math.random(#pool)]
end

done = c.done
