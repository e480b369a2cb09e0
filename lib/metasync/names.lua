-- Keyfactor metadata field names accept only [A-Za-z0-9_-]. Sectigo custom field names may
-- hold anything ("Cost Center"), so names are rewritten through bannedcharacters.json, the
-- site's table of replacements. A character with no replacement yet stops the run.
local json = require("metasync.json")
local conffile = require("metasync.conffile")

local M = {}

M.ALLOWED = "^[A-Za-z0-9_%-]$"

local function chars(s)
  local list = {}
  if utf8.len(s) then
    for _, cp in utf8.codes(s) do list[#list + 1] = utf8.char(cp) end
  else
    for i = 1, #s do list[#list + 1] = s:sub(i, i) end
  end
  return list
end

local function codepoint(c)
  local ok, cp = pcall(utf8.codepoint, c)
  return ok and cp or c:byte()
end

-- describe(c) -> "' ' (U+0020)"; a control character only by its code point, so a message
-- naming it stays one line.
function M.describe(c)
  local cp = codepoint(c)
  if cp < 0x20 or cp == 0x7F or (cp >= 0x80 and cp < 0xA0) then return string.format("U+%04X", cp) end
  return string.format("'%s' (U+%04X)", c, cp)
end

-- Most names are already valid: they skip the split into characters.
local function all_allowed(s) return not string.find(s, "[^A-Za-z0-9_%-]") end

-- banned(name) -> list of distinct characters of name that Keyfactor refuses, in order.
function M.banned(name)
  if all_allowed(name or "") then return {} end
  local out, seen = {}, {}
  for _, c in ipairs(chars(name or "")) do
    if not c:match(M.ALLOWED) and not seen[c] then
      seen[c] = true
      out[#out + 1] = c
    end
  end
  return out
end

-- A table of banned characters: list of {character=, replacement=string|nil}, plus a lookup.
local Table = {}
Table.__index = Table

function M.new_table(list)
  local t = setmetatable({ list = {}, by_char = {} }, Table)
  for _, e in ipairs(list or {}) do t:add(e.character, e.replacement) end
  return t
end

-- add(c[, replacement]) -> true when c was new. An existing replacement is never overwritten.
function Table:add(c, replacement)
  if self.by_char[c] then return false end
  local e = { character = c, replacement = replacement }
  self.list[#self.list + 1] = e
  self.by_char[c] = e
  return true
end

-- rewrite(name) -> new name, list of characters that still lack a replacement.
function Table:rewrite(name)
  if all_allowed(name) then return tostring(name), {} end
  local out, missing, seen = {}, {}, {}
  for _, c in ipairs(chars(name)) do
    if c:match(M.ALLOWED) then
      out[#out + 1] = c
    else
      local e = self.by_char[c]
      if e and e.replacement then
        out[#out + 1] = e.replacement
      else
        if not seen[c] then missing[#missing + 1] = c; seen[c] = true end
        out[#out + 1] = c
      end
    end
  end
  return table.concat(out), missing
end

function Table:pending()
  local n = 0
  for _, e in ipairs(self.list) do if not e.replacement then n = n + 1 end end
  return n
end

-- "null" (the tool's spelling) and JSON null both mean "no replacement yet".
local function repl_of(v)
  if v == nil or v == json.null or v == "null" then return nil end
  return v
end

local function ci(t, key)
  for k, v in pairs(t) do
    if type(k) == "string" and k:lower() == key then return v end
  end
end

-- parse(text, file) -> table, or nil, one-line error. Accepts the tool's form
-- {"BannedCharacters":[{"character":" ","replacementcharacter":"null"}]} and the README's
-- (a bare array, "replacementCharacter", JSON null).
function M.parse(text, file)
  file = file or "bannedcharacters.json"
  if text:match("^%s*$") then return M.new_table() end
  local doc, err = json.decode(text)
  if doc == nil then return nil, file .. ": malformed JSON: " .. tostring(err) end
  if doc == json.null then return M.new_table() end
  local arr = doc
  if type(doc) == "table" and not doc[1] and next(doc) ~= nil then
    arr = ci(doc, "bannedcharacters")
    if arr == nil or arr == json.null then arr = {} end
  end
  if type(arr) ~= "table" then
    return nil, file .. ": key 'BannedCharacters': expected a list of {character, replacementcharacter}"
  end
  local t = M.new_table()
  for i, e in ipairs(arr) do
    local c = type(e) == "table" and ci(e, "character")
    if type(c) ~= "string" or c == "" or c == "\0" or (utf8.len(c) or #c) ~= 1 then
      return nil, string.format("%s: key 'BannedCharacters[%d].character': expected a single character", file, i)
    end
    local r = repl_of(ci(e, "replacementcharacter"))
    if r ~= nil and (type(r) ~= "string" or not r:match("^[A-Za-z0-9_%-]*$")) then
      return nil, string.format("%s: key 'BannedCharacters[%d].replacementcharacter': expected characters from [A-Za-z0-9_-] or \"null\"", file, i)
    end
    t:add(c, r)
  end
  return t
end

-- load(path) -> table (empty when nothing is at the path), or nil, one-line error. A file
-- that is there but cannot be read (a directory, a FIFO, no permission, a symlink loop, too
-- big) is an error, never "empty": the table is written back later, and an empty one would
-- replace the site's replacements.
function M.load(path)
  local text, why, code = conffile.read(path)
  if not text then
    if code == "absent" then return M.new_table() end
    return nil, string.format("%s: %s", path, why)
  end
  return M.parse(text, path)
end

-- encode(t) -> the tool's form, so the old tool can still read what we write.
function M.encode(t)
  local arr = json.array()
  for _, e in ipairs(t.list) do
    arr[#arr + 1] = { character = e.character, replacementcharacter = e.replacement or "null" }
  end
  return json.encode({ BannedCharacters = arr }, { pretty = true }) .. "\n"
end

-- save(t, path) -> true or nil, error. Written to a temporary file then renamed so a crash
-- never leaves a half-written file behind. When path is a symbolic link (a site keeping the
-- file elsewhere, or under configuration management), the link's target is replaced and the
-- temporary file sits beside the target, so the rename stays on one file system and the link
-- stays a link.
function M.save(t, path)
  local target, terr = conffile.target(path)
  if not target then return nil, terr end
  local kind, kerr = conffile.kind(target)
  if kind ~= "file" and kind ~= "absent" then
    return nil, string.format("%s is not a regular file (%s); left as it is",
      target ~= path and "its target " .. target or "it", tostring(kind or kerr))
  end
  local tmp = string.format("%s.tmp.%d", target, math.random(1, 1 << 30))
  local f, err = io.open(tmp, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(M.encode(t))
  local cok, cerr = f:close()
  if not ok or not cok then os.remove(tmp); return nil, werr or cerr end
  local rok, rerr = os.rename(tmp, target)
  if not rok then os.remove(tmp); return nil, rerr end
  return true
end

return M
