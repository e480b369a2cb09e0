-- The entry point both stock policies share: runs metasync.pipeline and turns what went wrong
-- into an exit code. Configuration and pre-flight problems are one line (on stderr, or in the
-- log once it is set up) and exit 1; anything unexpected also gets its traceback at debug.
local log = require("metasync.log")
local setup = require("metasync.setup")

local M = {}

M.fatal = setup.fatal
local Fatal = setup.Fatal

local function options()
  local ok, o = pcall(require, "metasync.options")
  return ok and type(o) == "table" and o or {}
end

-- main(policy) -> exit code
function M.main(policy)
  local opts = options()
  local ok, rc = xpcall(require("metasync.pipeline").run, function(e)
    if getmetatable(e) == Fatal then return e end
    return debug.traceback(tostring(e), 2)
  end, policy, opts)
  if ok then return rc end
  local msg = getmetatable(rc) == Fatal and rc.msg or tostring(rc)
  if setup.log_ready then
    log.fatal("main", "%s", msg:match("^[^\n]*"))
    if getmetatable(rc) ~= Fatal then log.debug("main", "%s", msg)
    elseif rc.trace then log.debug("main", "%s", rc.trace) end
  else
    setup.stderr("%s", msg:match("^[^\n]*"))
  end
  return 1
end

return M
