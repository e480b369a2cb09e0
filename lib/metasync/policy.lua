-- A policy is the table of hooks a script fills in; main() runs it, unless the script is
-- being loaded by metasync.stock for a site script to extend, in which case main() hands the
-- table back so the site can override single hooks and run it itself.
local M = {}
local Policy = {}
Policy.__index = Policy

function M.new(direction)
  return setmetatable({ direction = direction }, Policy)
end

function Policy:main()
  if require("metasync.stock").loading > 0 then return self end
  return require("metasync.run").main(self)
end

-- run() always runs, for site scripts: `return policy:run()`.
function Policy:run()
  return require("metasync.run").main(self)
end

return M
