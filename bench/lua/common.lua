-- common.lua - shared by the wrk scenario scripts of bench/run (bench/README.md).
--
-- wrk runs a script once in its main Lua state (setup() per thread, done() at
-- the end) and once more in each thread's own state (init(args), then
-- request() for every request). Scenario scripts load this file with
-- dofile() and build whole HTTP/1.1 requests as strings: wrk.format() builds
-- a header table per call, which costs the load generator more than the
-- server's cheapest endpoints.
--
-- Arguments (after `--` on wrk's command line, as key=value):
--   keys=FILE       "tenant path" per line: the secrets bench/run stored
--   auth=jwt|bootstrap
--   tokens=FILE     "tenant token" per line (auth=jwt): one token per tenant
--   bootstrap=TOK   the bootstrap token (auth=bootstrap; sent with
--                   X-ScaiVault-Tenant)
--   size=N          secret value size for writes (default 1024)
--   threads=N       wrk's -t (token slices for new-tokens)
--   seed=N          random seed
-- Globals read back by done() through thread:get(): writes, issued, fillers.
local M = {}

M.threads = {}

function M.args(list)
   local a = {}
   for _, kv in ipairs(list or {}) do
      local k, v = kv:match("^([^=]+)=(.*)$")
      if k then a[k] = v end
   end
   return a
end

-- Every thread gets an id (1..N) and its own random sequence.
function M.setup(thread)
   table.insert(M.threads, thread)
   thread:set("thread_id", #M.threads)
end

function M.seed(a)
   math.randomseed((tonumber(a.seed) or 1) * 7919 + (thread_id or 0) * 104729)
end

function M.host()
   return wrk.headers["Host"]
end

-- Two parallel arrays: tenant of key i, path of key i.
function M.load_keys(file)
   local tenants, paths = {}, {}
   local f = assert(io.open(file, "r"), "cannot open keys file " .. tostring(file))
   for line in f:lines() do
      local t, p = line:match("^(%S+) (%S+)$")
      if t then
         tenants[#tenants + 1] = t
         paths[#paths + 1] = p
      end
   end
   f:close()
   assert(#paths > 0, "no keys in " .. file)
   return tenants, paths
end

-- tenant -> token, and the tokens in file order.
function M.load_tokens(file)
   local by_tenant, list, list_tenant = {}, {}, {}
   local f = assert(io.open(file, "r"), "cannot open tokens file " .. tostring(file))
   for line in f:lines() do
      local t, tok = line:match("^(%S+) (%S+)$")
      if t then
         by_tenant[t] = tok
         list[#list + 1] = tok
         list_tenant[#list_tenant + 1] = t
      end
   end
   f:close()
   return by_tenant, list, list_tenant
end

-- The header lines (each ending in CRLF) that authenticate as `tenant`.
function M.auth_lines(a, tokens, tenant)
   if a.auth == "bootstrap" then
      return "Authorization: Bearer " .. a.bootstrap .. "\r\nX-ScaiVault-Tenant: " .. tenant .. "\r\n"
   end
   local tok = tokens[tenant]
   assert(tok, "no token for tenant " .. tenant)
   return "Authorization: Bearer " .. tok .. "\r\n"
end

-- Per-tenant request tails: auth lines, Host, end of headers.
function M.tenant_tails(a, tenants)
   local by_tenant = a.auth == "jwt" and M.load_tokens(a.tokens) or {}
   local tails = {}
   for _, t in ipairs(tenants) do
      if not tails[t] then
         tails[t] = " HTTP/1.1\r\nHost: " .. M.host() .. "\r\n" .. M.auth_lines(a, by_tenant, t)
      end
   end
   return tails
end

-- The usual init(): arguments, this thread's seed, the keys and each
-- tenant's request tail. Returns args, tenants, paths, tails.
function M.init(args)
   local a = M.args(args)
   M.seed(a)
   local tenants, paths = M.load_keys(a.keys)
   return a, tenants, paths, M.tenant_tails(a, tenants)
end

-- A JSON body {"value":"..."} with a printable value of `size` bytes.
function M.value_body(size)
   local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
   local chunk = {}
   for i = 1, 62 do chunk[i] = alphabet:sub(((i * 7) % 62) + 1, ((i * 7) % 62) + 1) end
   local s = table.concat(chunk)
   local v = s:rep(math.floor(size / #s) + 1):sub(1, size)
   return '{"value":"' .. v .. '"}'
end

local function num(x)
   if x == nil or x ~= x then return "null" end
   return string.format("%.0f", x)
end

local function sum_threads(name)
   local total = 0
   for _, t in ipairs(M.threads) do
      total = total + (tonumber(t:get(name)) or 0)
   end
   return total
end

-- One line "BENCHJSON {...}" that bench/run parses. Latencies in µs.
function M.done(summary, latency, requests)
   local e = summary.errors
   local fields = {
      '"requests":' .. num(summary.requests),
      '"duration_us":' .. num(summary.duration),
      '"bytes":' .. num(summary.bytes),
      '"errors":{"connect":' .. num(e.connect) .. ',"read":' .. num(e.read) .. ',"write":' .. num(e.write) ..
         ',"status":' .. num(e.status) .. ',"timeout":' .. num(e.timeout) .. '}',
      '"latency_us":{"p50":' .. num(latency:percentile(50)) .. ',"p95":' .. num(latency:percentile(95)) ..
         ',"p99":' .. num(latency:percentile(99)) .. ',"max":' .. num(latency.max) ..
         ',"mean":' .. num(latency.mean) .. '}',
      '"writes":' .. num(sum_threads("writes")),
      '"issued":' .. num(sum_threads("issued")),
      '"fillers":' .. num(sum_threads("fillers")),
   }
   io.write("BENCHJSON {" .. table.concat(fields, ",") .. "}\n")
end

-- Called by a thread that has nothing left to send (count-limited runs):
-- say so once on stdout (bench/run interrupts wrk when every thread has) and
-- stop this thread's loop. The request returned meanwhile is a cheap filler.
function M.exhausted()
   if not exhausted_said then
      exhausted_said = true
      io.write("WRK-THREAD-DONE\n")
      io.flush()
      wrk.thread:stop()
   end
   fillers = (fillers or 0) + 1
end

return M
