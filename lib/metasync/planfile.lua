-- A saved plan (`--dry-run --plan-out FILE`, read back by `metasync apply FILE`): JSON lines,
-- so both ends stream and hold one certificate at a time, however large the inventory.
--   line 1:  the header {metasync_plan = 1, command, version, created, config_sha256}
--   then:    Keyfactor field definitions to create or update {definition = "create"|"update",
--            name, def, old}, before any certificate, as a run writes them first
--   then:    one object per target certificate {target = "keyfactor"|"sectigo", direction,
--            serial, keyfactor_id, sectigo_id, label, changes = {{field, key, kind, old, new,
--            baseline}}}: old is the value the plan saw, in canonical form (what apply
--            compares the target with), new what is written, baseline what both sides then hold.
-- The file is written to FILE.tmp and renamed only when the dry run completed, so a FILE that
-- exists is a whole plan. The header's hash ties the plan to the configuration it was made
-- under: the decisions in it came from that mapping and those settings.
local json = require("metasync.json")
local conffile = require("metasync.conffile")

local M = {}

M.FORMAT = 1
M.CONFIG_FILES = { "config.json", "fields.json", "bannedcharacters.json" }

---------------------------------------------------------------------------------------------
-- SHA-256 (FIPS 180-4), on Lua 5.4 integers. The engine has no digest binding, and the input
-- is three config files of a few KiB each; a strong hash, since config.json may hold passwords.
---------------------------------------------------------------------------------------------
local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}
local M32 = 0xffffffff
local function ror(x, n) return ((x >> n) | (x << (32 - n))) & M32 end

function M.sha256(msg)
  local h = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 }
  local len = #msg
  msg = msg .. "\128" .. string.rep("\0", (55 - len) % 64) .. string.pack(">I8", len * 8)
  local w = {}
  for i = 1, #msg, 64 do
    for j = 1, 16 do w[j] = (string.unpack(">I4", msg, i + (j - 1) * 4)) end
    for j = 17, 64 do
      local x, y = w[j - 15], w[j - 2]
      w[j] = (w[j - 16] + (ror(x, 7) ~ ror(x, 18) ~ (x >> 3)) + w[j - 7] + (ror(y, 17) ~ ror(y, 19) ~ (y >> 10))) & M32
    end
    local a, b, c, d, e, f, g, hh = h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]
    for j = 1, 64 do
      local t1 = (hh + (ror(e, 6) ~ ror(e, 11) ~ ror(e, 25)) + ((e & f) ~ (~e & g)) + K[j] + w[j]) & M32
      local t2 = ((ror(a, 2) ~ ror(a, 13) ~ ror(a, 22)) + ((a & b) ~ (a & c) ~ (b & c))) & M32
      hh, g, f, e, d, c, b, a = g, f, e, (d + t1) & M32, c, b, a, (t1 + t2) & M32
    end
    h[1], h[2], h[3], h[4] = (h[1] + a) & M32, (h[2] + b) & M32, (h[3] + c) & M32, (h[4] + d) & M32
    h[5], h[6], h[7], h[8] = (h[5] + e) & M32, (h[6] + f) & M32, (h[7] + g) & M32, (h[8] + hh) & M32
  end
  return string.format(string.rep("%08x", 8), table.unpack(h))
end

-- config_hash(dir, command) -> hex digest | nil, message. Over the command and the bytes of
-- the three files (a missing optional file counts as missing, which differs from empty), each
-- framed by its name and length so no two different sets of files read the same.
function M.config_hash(dir, command)
  local parts = { "metasync plan config 1\n", tostring(command), "\n" }
  for _, name in ipairs(M.CONFIG_FILES) do
    local text, why, code = conffile.read(dir .. "/" .. name)
    if not text and code ~= "absent" then return nil, string.format("%s/%s: %s", dir, name, tostring(why)) end
    parts[#parts + 1] = string.format("%s %s\n", name, text and #text or "absent")
    parts[#parts + 1] = text or ""
  end
  return M.sha256(table.concat(parts))
end

-- escape(s) -> s on one line for the dry-run text: a backslash doubled, \n \r \t, any other
-- control character as \xNN. A multi-line note would otherwise break "one line per change".
local ESC = { ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
function M.escape(s)
  return (tostring(s):gsub("[%c\\]", function(c) return ESC[c] or string.format("\\x%02X", c:byte()) end))
end

---------------------------------------------------------------------------------------------
-- Writing
---------------------------------------------------------------------------------------------
local function null(v) if v == nil then return json.null end return v end

-- Keys in a fixed order, so a plan reads the same way every time (and diffs cleanly).
local function object(...)
  local out, n = {}, select("#", ...)
  for i = 1, n, 2 do
    local k, v = select(i, ...)
    out[#out + 1] = json.encode(k) .. ":" .. json.encode(null(v))
  end
  return "{" .. table.concat(out, ",") .. "}"
end

local Writer = {}
Writer.__index = Writer
-- A plan never finished (a run that failed or stopped) leaves no FILE.tmp behind, even when
-- the run ends by an error: the writer is collected with the Lua state.
Writer.__gc = function(w) if not w.closed then w:discard() end end

-- create(path, header) -> writer | nil, message. header: command, version, config_sha256.
function M.create(path, header)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "w")
  if not f then return nil, string.format("cannot write %s: %s", tmp, tostring(err)) end
  f:setvbuf("full")
  local w = setmetatable({ path = path, tmp = tmp, f = f, targets = 0, changes = 0, definitions = 0 }, Writer)
  w:line(object("metasync_plan", M.FORMAT, "command", header.command, "version", header.version,
    "created", header.created or os.date("!%Y-%m-%dT%H:%M:%SZ"), "config_sha256", header.config_sha256))
  return w
end

function Writer:line(s)
  if self.err or self.closed then return end
  local ok, err = self.f:write(s, "\n")
  if not ok then self.err = tostring(err) end
end

-- definition(action, def, old): a Keyfactor field definition to create ("create") or to
-- update ("update", old = the definition as Keyfactor held it).
function Writer:definition(action, def, old)
  self.definitions = self.definitions + 1
  self:line(object("definition", action, "name", def.Name, "def", def, "old", old))
end

-- target(e): one target certificate's changes (see the head of this file).
function Writer:target(e)
  local list = {}
  for i, c in ipairs(e.changes) do
    list[i] = object("field", c.field, "key", c.key, "kind", c.kind or "text", "old", c.old, "new", c.new,
      "baseline", c.baseline)
  end
  self.targets, self.changes = self.targets + 1, self.changes + #list
  local head = object("target", e.target, "direction", e.direction, "serial", e.serial, "keyfactor_id", e.keyfactor_id,
    "sectigo_id", e.sectigo_id, "label", e.label)
  self:line(head:sub(1, -2) .. ',"changes":[' .. table.concat(list, ",") .. "]}")
end

-- commit() -> true | nil, message: flushed, closed and renamed into place.
function Writer:commit()
  if self.closed then return nil, "already closed" end
  local ok, err = true, self.err
  if not err then ok, err = self.f:flush() end
  self.f:close()
  self.closed = true
  if ok and not self.err then ok, err = os.rename(self.tmp, self.path) end
  if not ok or self.err then
    os.remove(self.tmp)
    return nil, string.format("cannot write %s: %s", self.path, tostring(self.err or err))
  end
  return true
end

function Writer:discard()
  if self.closed then return end
  self.closed = true
  pcall(self.f.close, self.f)
  os.remove(self.tmp)
end

---------------------------------------------------------------------------------------------
-- Reading
---------------------------------------------------------------------------------------------
local TARGETS = { keyfactor = "sctokf", sectigo = "kftosc" }
local KINDS = { text = true, date = true, number = true, boolean = true }

local function str(v) return type(v) == "string" end
local function opt_str(v) return v == nil or v == json.null or type(v) == "string" end
local function id(v) return math.type(v) == "integer" and v > 0 end

-- check_entry(e) -> nil | what is wrong with one decoded line after the header.
local function check_entry(e)
  if type(e) ~= "table" or json.is_array(e) then return "not an object" end
  if e.definition ~= nil then
    if e.definition ~= "create" and e.definition ~= "update" then return "definition is neither create nor update" end
    if type(e.def) ~= "table" or not str(e.def.Name) then return "definition without a Name" end
    if e.definition == "update" and type(e.old) ~= "table" then return "update without the old definition" end
    return nil
  end
  if TARGETS[e.target] == nil then return "target is neither keyfactor nor sectigo" end
  if e.direction ~= TARGETS[e.target] then return "direction does not match the target" end
  if not str(e.serial) then return "no serial" end
  if not id(e.target == "keyfactor" and e.keyfactor_id or e.sectigo_id) then return "no id of the target certificate" end
  if type(e.changes) ~= "table" or #e.changes == 0 then return "no changes" end
  for i, c in ipairs(e.changes) do
    if type(c) ~= "table" or not str(c.field) or not str(c.key) or not KINDS[c.kind]
        or not opt_str(c.old) or not opt_str(c.new) or not opt_str(c.baseline) then
      return string.format("change %d: expected field, key, kind and old/new/baseline as strings or null", i)
    end
  end
  return nil
end
M.check_entry = check_entry

local Reader = {}
Reader.__index = Reader

-- open(path) -> reader (reader.header) | nil, message. Only the header is read here.
function M.open(path)
  local f, err = io.open(path, "r")
  if not f then return nil, string.format("cannot read %s", tostring(err)) end
  local first = f:read("l")
  local h = first and json.decode(first)
  if type(h) ~= "table" or h.metasync_plan == nil then
    f:close()
    return nil, string.format("%s is not a metasync plan (no plan header on its first line)", path)
  end
  if h.metasync_plan ~= M.FORMAT then
    f:close()
    return nil, string.format("%s is a plan of format %s; this metasync reads format %d", path, tostring(h.metasync_plan), M.FORMAT)
  end
  if not str(h.command) or not str(h.config_sha256) then
    f:close()
    return nil, string.format("%s: the plan header lacks its command or config hash", path)
  end
  return setmetatable({ path = path, f = f, header = h, n = 1 }, Reader)
end

-- next() -> entry | nil at the end | raises "PATH line N: why" on a line that is no entry.
function Reader:next()
  while true do
    local line = self.f:read("l")
    if not line then return nil end
    self.n = self.n + 1
    if line:match("%S") then
      local e, derr = json.decode(line)
      local why = e == nil and ("malformed JSON: " .. tostring(derr)) or check_entry(e)
      if why then error(string.format("%s line %d: %s", self.path, self.n, why), 0) end
      return e
    end
  end
end

function Reader:close() if self.f then self.f:close(); self.f = nil end end

-- check(header, dir) -> true | nil, the one-line reason the plan may not be applied under the
-- configuration in dir.
function M.check(header, dir)
  local digest, err = M.config_hash(dir, header.command)
  if not digest then return nil, err end
  if digest ~= header.config_sha256 then
    return nil, string.format("the %s plan of %s was made under another configuration (%s in %s differ); make a new plan with --dry-run --plan-out",
      header.command, tostring(header.created), table.concat(M.CONFIG_FILES, ", "), dir)
  end
  return true
end

return M
