-- The globals of `metasync repl` (and of `metasync run` scripts): the engine's modules, live
-- clients for both APIs, the loaded configuration, and the helpers for ad-hoc questions
-- (metasync.adhoc). (Setting globals is this module's whole purpose; no other library module
-- does.)
--
-- Every name is made on its first use (an __index on _G), so a script that never touches a
-- client runs without a configuration, as the unit tests do, and one that does gets the
-- configuration's error on that line ("no configuration: config/config.json: ..."). The REPL on
-- a terminal loads the configuration at once, to say which servers the clients talk to.
local log = require("metasync.log")
local json = require("metasync.json")

local M = {}

-- The help texts are read when help is first used: `metasync run` loads this module for
-- every script.
local HELP, BY_NAME
local function help_entries()
  if not HELP then
    HELP, BY_NAME = require("metasync.shellhelp"), {}
    for _, e in ipairs(HELP) do BY_NAME[e.name] = e end
  end
  return HELP, BY_NAME
end

local function adhoc() return require("metasync.adhoc") end
local function world() return require("metasync.adhoc_world") end

local function module(name) return function() return require("metasync." .. name) end end
local function helper(name) return function() return adhoc()[name] end end

-- name -> function making the global's value
local MAKE = {
  json = module("json"), re = module("re"), http = module("http"), task = module("task"), log = module("log"),
  serial = module("serial"),
  config = function() return world().config() end,
  sectigo = function() return (world().clients()) end,
  keyfactor = function() return select(2, world().clients()) end,
  help = function() return M.help end,
  reload = function() return M.reload end,
}
for _, name in ipairs { "matched", "side", "missing", "find", "values", "mapping", "show", "csv", "jsonl" } do
  MAKE[name] = helper(name)
end
local CLIENTS = { "config", "sectigo", "keyfactor" }

-- lazy(): installs the __index on _G that makes each of the names above on first use.
function M.lazy()
  local mt = getmetatable(_G) or {}
  local prev = mt.__index
  mt.__index = function(t, k)
    local make = MAKE[k]
    if make then
      local v = make()
      rawset(t, k, v)
      return v
    end
    if type(prev) == "function" then return prev(t, k) elseif type(prev) == "table" then return prev[k] end
  end
  setmetatable(_G, mt)
end

-- print, as the base library's, but masked like everything else the shell shows (the
-- printer in engine/repl.c redacts results): print(config.sectigoPassword) shows "***" once
-- the password is registered. JSON null prints as null. io.write stays raw, for whoever
-- really needs the bytes.
local function masked_print(...)
  local n, parts = select("#", ...), {}
  for i = 1, n do
    local v = (select(i, ...))
    parts[i] = v == json.null and "null" or tostring(v)
  end
  io.stdout:write(log.redact(table.concat(parts, "\t")), "\n")
end

---------------------------------------------------------------------------------------------
-- help
---------------------------------------------------------------------------------------------
local GROUPS = { { "clients", "clients (from the configuration)" }, { "helpers", "helpers (rows print as tables; streams go through show, csv or jsonl)" },
  { "modules", "modules" } }

local function overview()
  local lines, HELP = {}, help_entries()
  for _, g in ipairs(GROUPS) do
    lines[#lines + 1] = g[2] .. ":"
    for _, e in ipairs(HELP) do
      if e.group == g[1] then lines[#lines + 1] = string.format("  %-10s %s", e.name, e.line) end
    end
  end
  lines[#lines + 1] = 'help("name") shows one, with an example. Ctrl-C stops a running line.'
  return table.concat(lines, "\n")
end

local function page(e)
  local lines = { e.name .. ": " .. e.line }
  if e.text then
    for l in (e.text .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = "  " .. l end
  end
  lines[#lines + 1] = "example:"
  lines[#lines + 1] = "  " .. e.example
  return table.concat(lines, "\n")
end

-- entry(x) -> the help entry for a name, or for a value one of the globals holds
local function entry(x)
  local HELP, BY_NAME = help_entries()
  if type(x) == "string" then return BY_NAME[x] end
  for _, e in ipairs(HELP) do
    if rawget(_G, e.name) == x or (MAKE[e.name] and e.group ~= "clients" and MAKE[e.name]() == x) then return e end
  end
end

-- help is a table: `help` alone prints the list (the REPL prints tables through __tostring),
-- help() and help(x) print too.
M.help = setmetatable({}, {
  __tostring = overview,
  __call = function(_, x)
    if x == nil then masked_print(overview()) return end
    local e = entry(x)
    if not e then error(string.format("no help for %s; help() lists what there is",
      type(x) == "string" and ("'" .. x .. "'") or type(x)), 2) end
    masked_print(page(e))
  end,
})

M.interactive = false

local function clients_line()
  local ok, err = pcall(function()
    for _, k in ipairs(CLIENTS) do rawset(_G, k, MAKE[k]()) end
  end)
  if ok then
    print(string.format("clients: sectigo (%s), keyfactor (%s)", _G.config.sectigo_base, _G.config.keyfactor_base))
  else
    io.stderr:write("metasync: no API clients (", log.redact(tostring(err)), ")\n")
  end
end

-- reload(): the next use reads the configuration again (new clients) and fetches the field
-- definitions and the Sectigo index again.
function M.reload()
  world().reload()
  for _, k in ipairs(CLIENTS) do rawset(_G, k, nil) end
  if M.interactive then clients_line() end
end

---------------------------------------------------------------------------------------------
-- for engine/repl.c
---------------------------------------------------------------------------------------------
-- words() -> what completion offers inside a string: the mapping's field names and the config
-- keys (metasync.adhoc_world), and the helpers' and modules' names (help("mis<TAB>")).
function M.words()
  local list, seen = {}, {}
  local function add(w)
    if type(w) == "string" and not seen[w] then seen[w] = true; list[#list + 1] = w end
  end
  for _, e in ipairs((help_entries())) do add(e.name) end
  local ok, more = pcall(function() return world().words() end)
  if ok then for _, w in ipairs(more) do add(w) end end
  return list
end

-- settle(): after each chunk, finished or stopped (Ctrl-C abandons a helper mid-listing):
-- no status line is left on the screen.
function M.settle()
  local ok, status = pcall(require, "metasync.statusline")
  if ok then status.clear() end
end

-- setup(mode): mode "tty" (a terminal), "pipe" or "chunk" (-e). Everything is made on first use
-- (lazy), but the helpers and modules are set now so that completion sees them; on a terminal the
-- configuration is loaded now too. The log shows warnings and errors only, unless --log-level or
-- -v said otherwise: INFO lines are a run's narration, not the answer to a question.
function M.setup(mode)
  local opts = require("metasync.options")
  M.interactive = mode == "tty"
  M.lazy()
  _G.print = masked_print
  if not opts.log_level and not opts.verbose then log.set_level("warn") end
  for name, make in pairs(MAKE) do
    local is_client = false
    for _, k in ipairs(CLIENTS) do is_client = is_client or k == name end
    if not is_client then rawset(_G, name, make()) end
  end
  if M.term_width then require("metasync.table_out").term_width = M.term_width end
  if M.interactive then clients_line() end
  return true
end

return M
