-- Fuzz target: metasync.config.load over all three files of a configuration directory.
-- Input: one flags byte, then config.json, "\n--\n", fields.json, "\n--\n",
-- bannedcharacters.json. Flags: bits 1, 2, 4 = config.json, fields.json, bannedcharacters.json
-- present (absent files are removed); the top two bits (value 1..3) = that file (config.json,
-- fields.json, bannedcharacters.json) is a directory instead. The digit "7" is all three files;
-- "\xC7" has a directory for bannedcharacters.json.
-- Properties: load never raises (it reports problems as its result); the result is
-- cfg, warnings or nil, errors, warnings; every message is a string naming a file of the
-- directory; a configuration it accepts is usable: field specs complete, numeric settings in
-- range, every Keyfactor name valid or rewritable through the banned-characters table.
local H = require("harness").setup(...)
local config = require("metasync.config")

local FILES = { "config.json", "fields.json", "bannedcharacters.json" }

-- The directories, made once per process: "plain" holds the files an input writes; in
-- "dirN" the N-th file is a directory (and the other two are written like in plain).
local function pid()
  local f = io.open("/proc/self/stat", "r")
  local s = f and f:read("l")
  if f then f:close() end
  return s and s:match("^(%d+)") or tostring(os.time())
end
local root = string.format("%s/metasync-fuzz-config.%s", os.getenv("TMPDIR") or "/tmp", pid())
local function sh(cmd) assert(os.execute(cmd), cmd) end
sh(string.format("rm -rf '%s' && mkdir -p '%s/plain' '%s/dir1/config.json' '%s/dir2/fields.json' '%s/dir3/bannedcharacters.json'",
  root, root, root, root, root))
-- Removed when the Lua state closes (fuzz_lua.c closes it at exit).
FUZZ_CLEANUP = setmetatable({}, { __gc = function() os.execute(string.format("rm -rf '%s'", root)) end })

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function is_message(m, dir)
  return type(m) == "string" and m:sub(1, #dir + 1) == dir .. "/"
end

local function check_messages(list, dir, what)
  if type(list) ~= "table" then H.fail("%s is a %s, not a list", what, type(list)) end
  for i, m in ipairs(list) do
    if not is_message(m, dir) then H.fail("%s[%d] does not name a file of %s: %s", what, i, dir, H.quote(m)) end
    if m:find("\n", 1, true) then H.fail("%s[%d] is not one line: %s", what, i, H.quote(m)) end
  end
end

local function check_cfg(cfg, dir)
  for _, spec in ipairs(config.KEYS) do
    local v, kind = cfg[spec[1]], spec[2]
    if (kind == "int" or kind == "num") and v ~= nil then
      if type(v) ~= "number" or (spec.min and v < spec.min) or (spec.max and v > spec.max) then
        H.fail("%s = %s is out of range", spec[1], tostring(v))
      end
      -- A timeout, rate or size of inf reaches libcurl and the log as a number with no
      -- integer form.
      if v ~= v or v == math.huge or v == -math.huge then H.fail("%s = %s is not finite", spec[1], tostring(v)) end
      if kind == "int" and math.type(v) ~= "integer" then H.fail("%s = %s is not an integer", spec[1], tostring(v)) end
    elseif kind == "bool" and v ~= nil and type(v) ~= "boolean" then
      H.fail("%s = %s is not a boolean", spec[1], tostring(v))
    end
  end
  if type(cfg.keyfactorDateFormat) ~= "string" then H.fail("no keyfactorDateFormat") end
  if type(cfg.sslTypeIds) ~= "table" then H.fail("sslTypeIds is not a list") end
  if type(cfg.fields) ~= "table" or type(cfg.fields.manual) ~= "table" or type(cfg.fields.custom) ~= "table" then
    H.fail("cfg.fields is not {manual=, custom=}")
  end
  if type(cfg.banned) ~= "table" or type(cfg.banned.rewrite) ~= "function" then H.fail("no banned-characters table") end
  for _, kind in ipairs { "manual", "custom" } do
    for i, f in ipairs(cfg.fields[kind]) do
      if type(f.sectigo) ~= "string" or f.sectigo == "" or type(f.keyfactor) ~= "string" or f.keyfactor == "" then
        H.fail("%s field %d lacks a name", kind, i)
      end
      if math.type(f.datatype) ~= "integer" or f.datatype < 1 or f.datatype > 7 then H.fail("%s field %d: datatype %s", kind, i, tostring(f.datatype)) end
      if f.sync ~= "both" and f.sync ~= "sctokf" and f.sync ~= "kftosc" then H.fail("%s field %d: sync %s", kind, i, tostring(f.sync)) end
      if kind == "manual" or not cfg.importAllCustomFields then
        local ok, new, missing = pcall(cfg.banned.rewrite, cfg.banned, f.keyfactor)
        if not ok then H.fail("rewrite raised: %s", tostring(new)) end
        if #missing > 0 or not new:match("^[A-Za-z0-9_%-]+$") then
          H.fail("accepted field name %s cannot become a Keyfactor name (%s)", H.quote(f.keyfactor), H.quote(new))
        end
      end
    end
  end
  if cfg.state_path == nil or cfg.state_path == "" then H.fail("no state_path") end
  if cfg.sectigo_base == nil or cfg.keyfactor_base == nil then H.fail("no API base URLs") end
end

return function(data)
  local flags = data:byte(1) or 0
  local parts = H.split(data:sub(2), "\n--\n", 3)
  local as_dir = flags >> 6
  local dir = root .. (as_dir == 0 and "/plain" or ("/dir" .. as_dir))
  for i, name in ipairs(FILES) do
    if i ~= as_dir then
      local path = dir .. "/" .. name
      if flags & (1 << (i - 1)) ~= 0 then write(path, parts[i] or "") else os.remove(path) end
    end
  end
  local ok, cfg, errs, warnings = pcall(config.load, dir)
  if not ok then H.fail("config.load raised: %s", tostring(cfg)) end
  if cfg then
    if type(cfg) ~= "table" then H.fail("config.load returned a %s", type(cfg)) end
    check_messages(errs, dir, "warnings")
    check_cfg(cfg, dir)
  else
    if type(errs) ~= "table" or #errs == 0 then H.fail("config.load failed without an error") end
    check_messages(errs, dir, "errors")
    check_messages(warnings or {}, dir, "warnings")
  end
end
