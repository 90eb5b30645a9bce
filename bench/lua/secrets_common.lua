-- secrets_common.lua - shared by the secrets scenarios (loaded with dofile).
-- Environment:
--   SV_TOKEN   bearer token (the BOOTSTRAP_TOKEN of the server under test)
--   SV_TENANT  tenant to act in (default bench)
--   SV_KEYS    number of distinct secrets (default 100000)
--   SV_VALUE   value size in bytes (default 1024)
local M = {}

M.token = os.getenv("SV_TOKEN") or error("SV_TOKEN is not set")
M.tenant = os.getenv("SV_TENANT") or "bench"
M.keys = tonumber(os.getenv("SV_KEYS") or "100000")
M.value_size = tonumber(os.getenv("SV_VALUE") or "1024")

M.headers = {
   ["Authorization"] = "Bearer " .. M.token,
   ["X-ScaiVault-Tenant"] = M.tenant,
   ["Content-Type"] = "application/json",
}

-- Secret i lives at bench/kNNNNNNN.
function M.path(i)
   return string.format("/v1/secrets/bench/k%07d", i)
end

-- A JSON body whose string value has exactly value_size bytes.
M.body = '{"value":"' .. string.rep("x", M.value_size) .. '"}'

-- wrk hooks that count the responses whose status is not in ok (a set), per
-- thread, and print the total at the end under label.
function M.install_counters(ok, label)
   local threads = {}
   setup = function(thread)
      table.insert(threads, thread)
   end
   response = function(status, hdrs, body)
      if not ok[status] then
         bad_responses = (bad_responses or 0) + 1
      end
   end
   done = function(summary, latency, requests)
      local bad = 0
      for _, t in ipairs(threads) do
         bad = bad + (t:get("bad_responses") or 0)
      end
      io.write(string.format("%s: %d\n", label, bad))
   end
end

function M.seed_random()
   math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
end

return M
