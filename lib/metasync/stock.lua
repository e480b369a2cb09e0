-- Lets a site script build on the stock policy instead of copying it:
--   local policy = require("metasync.stock").load("sctokf")
--   function policy.include(cert, ctx) ... end
--   return policy:run()
local M = { loading = 0 }

-- path(name) -> the stock script's file: scripts/ in the stock directory the host found
-- (beside the executable or under the install prefix), whatever a site put first on the path.
function M.path(name)
  local p = require("metasync.options").stock_dir .. "/scripts/" .. name .. ".lua"
  local f = io.open(p, "r")
  if not f then return nil, "stock script '" .. name .. "' not found at " .. p end
  f:close()
  return p
end

-- load(name) -> the stock policy table (e.g. "sctokf"), without running it.
function M.load(name)
  local p = assert(M.path(name))
  local chunk = assert(loadfile(p))
  M.loading = M.loading + 1
  local ok, policy = pcall(chunk)
  M.loading = M.loading - 1
  if not ok then error(policy, 0) end
  if type(policy) ~= "table" then error(p .. ": did not return a policy table", 0) end
  return policy
end

return M
