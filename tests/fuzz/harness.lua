-- Shared by the Lua-level fuzz targets (fuzz_lua.c runs them): stand-ins for the engine modules
-- a fuzz process does without, and small helpers. Each target starts with
--   local H = require("harness").setup(...)
-- before it requires any SDK module, so the SDK binds to these stand-ins.
--
-- The stand-ins do only what the SDK needs of them, the way the real modules do it:
--   metasync.log     formats exactly as engine/log.c does (string.format when there are
--                    arguments), at every level, then discards: a log call with a bad format or
--                    argument still raises, as it would in a run with --log-level trace.
--   metasync.task    synchronous: spawn runs the function to its end at once (its error is kept
--                    for join, as the scheduler keeps it), sleep returns at once, a semaphore
--                    with no permit left raises "deadlock" as the real one does when nothing
--                    could release it.
--   metasync.http    no network: request() calls H.serve, which a target sets.
--   metasync.options the source tree as the stock directory.
--   metasync.signals no signal ever arrives.
--   metasync.db, metasync.lock: empty; loaded by metasync.setup/state but never called here.
local H = {}

local function format_message(fmt, ...)
  if select("#", ...) == 0 then return fmt == nil and "" or tostring(fmt) end
  return string.format(fmt, ...)
end

local function fake_log()
  local log = {}
  for _, level in ipairs { "trace", "debug", "info", "warn", "error", "fatal", "run_start", "run_end" } do
    log[level] = function(_, fmt, ...) format_message(fmt, ...) end
  end
  function log.enabled() return true end
  function log.level() return "trace" end
  function log.set_level() end
  function log.run_id() return "fuzz" end
  function log.redact(s) return s end
  function log.add_secret() end
  function log.setup() return true end
  function log.logger(name)
    local l = {}
    for k, f in pairs(log) do
      if type(f) == "function" then l[k] = function(_, ...) return f(name, ...) end end
    end
    return l
  end
  return log
end

local function fake_task()
  local T = {}
  local clock = 0
  function T.now() clock = clock + 0.001; return clock end
  function T.sleep() end
  function T.yield() end
  function T.current() return nil end
  function T.spawn(fn, ...)
    local r = table.pack(pcall(fn, ...))
    return { join = function() return table.unpack(r, 1, r.n) end, done = function() return true end }
  end
  function T.wait_all(list)
    local out = {}
    for i, t in ipairs(list) do out[i] = table.pack(t:join()) end
    return out
  end
  function T.map(iter, _, fn)
    local results, errors, i = {}, {}, 0
    for item in iter do
      i = i + 1
      local ok, r = pcall(fn, item)
      if ok then results[i] = r else errors[i] = r end
    end
    return results, errors
  end
  function T.semaphore(n)
    local s = { n = n }
    function s.acquire(self)
      if self.n <= 0 then error("deadlock", 2) end
      self.n = self.n - 1
    end
    function s.release(self) self.n = self.n + 1 end
    return s
  end
  return T
end

-- H.serve(request) -> response | nil, message, kind: what the fake metasync.http answers.
function H.serve() return nil, "no network in the fuzzer", "connect" end

function H.setup(source_dir)
  if H.source_dir then return H end
  H.source_dir = source_dir
  local preload = package.preload
  local log, task = fake_log(), fake_task()
  preload["metasync.log"] = function() return log end
  preload["metasync.task"] = function() return task end
  preload["metasync.http"] = function() return { request = function(r) return H.serve(r) end } end
  preload["metasync.options"] = function()
    return { command = "fuzz", config_dir = "config", stock_dir = source_dir, args = {}, version = "fuzz" }
  end
  preload["metasync.signals"] = function() return { install = function() end, received = function() return nil end } end
  preload["metasync.db"] = function() return {} end
  preload["metasync.lock"] = function() return {} end
  return H
end

-- split(s, sep, max) -> list of up to max parts of s between occurrences of sep (plain).
function H.split(s, sep, max)
  local out, pos = {}, 1
  while #out < (max or math.huge) - 1 do
    local i, j = s:find(sep, pos, true)
    if not i then break end
    out[#out + 1] = s:sub(pos, i - 1)
    pos = j + 1
  end
  out[#out + 1] = s:sub(pos)
  return out
end

-- fail(fmt, ...): a property the target checks does not hold. Raised at level 0 so the message
-- is the finding itself; fuzz_lua.c aborts on it.
function H.fail(fmt, ...)
  error("PROPERTY VIOLATED: " .. string.format(fmt, ...), 0)
end

-- quote(v) -> v as a Lua literal, for messages that show the offending value exactly.
function H.quote(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

-- A Lua runtime error inside the SDK ("…/lib/metasync/pair.lua:12: attempt to index a nil
-- value") caught by the SDK and passed on as a certificate's failure reason or a fatal message
-- is a bug just as an escaping one is. Matched with a pattern (not a plain find) so libFuzzer's
-- comparison tracing does not learn the source paths and forge them in vendor error texts.
function H.runtime_error_in(msg)
  msg = tostring(msg)
  return msg:find("lib/metasync/[%w_]+%.lua:%d+: ") or msg:find("scripts/[%w_]+%.lua:%d+: ")
    or msg:find("tests/fuzz/[%w_]+%.lua:%d+: ")
end

-- known(name, cond) -> true when cond holds and FUZZ_STRICT is not set: the input shows a finding
-- already reported to the owner of the code (README.md lists them), so the target skips the
-- property that would abort and the campaign goes on to look for new ones. FUZZ_STRICT=1 makes
-- every known finding abort again (to check a fix: the minimal input must then pass).
local strict = os.getenv("FUZZ_STRICT") == "1"
local announced = {}
function H.known(name, cond)
  if not cond or strict then return false end
  if not announced[name] then
    announced[name] = true
    io.stderr:write("fuzz: known finding '", name, "' seen (skipped; FUZZ_STRICT=1 stops on it)\n")
  end
  return true
end

-- every(n, fn): calls fn every n-th call of the returned function (periodic resets of module
-- caches that grow with every distinct input).
function H.every(n, fn)
  local i = 0
  return function()
    i = i + 1
    if i % n == 0 then fn() end
  end
end

return H
