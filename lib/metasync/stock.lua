-- Lets a site script build on the stock policy instead of copying it:
--   local policy = require("metasync.stock").load("sctokf")
--   function policy.include(cert, ctx) ... end
--   return policy:run()
local M = { loading = 0 }

local function exists(p)
  local f = io.open(p, "r")
  if f then f:close() return true end
  return false
end

-- path(name) -> the stock script's file. The stock scripts sit in scripts/ beside lib/.
function M.path(name)
  local cands = {}
  local ok, opts = pcall(require, "metasync.options")
  if ok and type(opts) == "table" and opts.stock_dir then
    cands[#cands + 1] = opts.stock_dir .. "/" .. name .. ".lua"
    cands[#cands + 1] = opts.stock_dir .. "/scripts/" .. name .. ".lua"
  end
  local me = package.searchpath("metasync.stock", package.path)
  if me then
    local root = me:gsub("[^/]*$", ""):gsub("/?[^/]+/?$", ""):gsub("/?[^/]+/?$", "")
    cands[#cands + 1] = (root == "" and "." or root) .. "/scripts/" .. name .. ".lua"
  end
  for _, c in ipairs(cands) do
    if exists(c) then return c end
  end
  return nil, "stock script '" .. name .. "' not found (looked in " .. table.concat(cands, ", ") .. ")"
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
