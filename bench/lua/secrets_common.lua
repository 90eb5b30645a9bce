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

function M.headers()
   return {
      ["Authorization"] = "Bearer " .. M.token,
      ["X-ScaiVault-Tenant"] = M.tenant,
      ["Content-Type"] = "application/json",
   }
end

-- Secret i lives at bench/kNNNNNNN: spread over the key space by the
-- storage order of the paths.
function M.path(i)
   return string.format("/v1/secrets/bench/k%07d", i)
end

-- A JSON body whose string value has exactly value_size bytes.
function M.body()
   return '{"value":"' .. string.rep("x", M.value_size) .. '"}'
end

-- Counts responses by status so a run that returns errors is visible.
M.statuses = {}
function M.count(status)
   M.statuses[status] = (M.statuses[status] or 0) + 1
end

return M
