-- newtokens.lua - every request a token the server has never seen: GET of a
-- random secret of the token's tenant, with the next unused token of this
-- thread's slice of newtokens=FILE ("tenant token" per line; thread i of
-- threads=N takes lines i, i+N, ...). When its slice is used up a thread
-- reports it and stops (see common.lua: bench/run then interrupts wrk), so a
-- run ends early rather than reuse a token. cycle=1 reuses the tokens
-- instead: for the hello ceiling, which verifies nothing.
local c = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local toks, tok_tenant, by_tenant, host, next_tok, cycle, filler

setup = c.setup

function init(args)
   local a = c.args(args)
   c.seed(a)
   host = c.host()
   local tenants, paths = c.load_keys(a.keys)
   by_tenant = {}
   for i = 1, #paths do
      local list = by_tenant[tenants[i]]
      if not list then
         list = {}
         by_tenant[tenants[i]] = list
      end
      list[#list + 1] = paths[i]
   end
   local nthreads = tonumber(a.threads) or 1
   local me = (thread_id or 1) - 1
   local _, list, list_tenant = c.load_tokens(a.newtokens)
   toks, tok_tenant = {}, {}
   for i = 1 + me, #list, nthreads do
      toks[#toks + 1] = list[i]
      tok_tenant[#tok_tenant + 1] = list_tenant[i]
   end
   next_tok = 1
   cycle = a.cycle == "1"
   filler = "GET /v1/health HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n"
   fillers = 0
end

function request()
   if next_tok > #toks then
      if not cycle then
         c.exhausted()
         return filler
      end
      next_tok = 1
   end
   local i = next_tok
   next_tok = i + 1
   local list = by_tenant[tok_tenant[i]]
   return "GET /v1/secrets/" .. list[math.random(#list)] .. " HTTP/1.1\r\nHost: " .. host ..
      "\r\nAuthorization: Bearer " .. toks[i] .. "\r\n\r\n"
end

done = c.done
