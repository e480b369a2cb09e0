-- Value conversion between the two APIs and the semantic comparison that decides whether a
-- write is needed. Keyfactor hands metadata back as strings whatever the field type, and
-- reformats dates (25.1 reads back "7/23/2025 12:00:00 AM" for "2025-07-23"), so comparing
-- raw strings would rewrite every certificate on every run.
local json = require("metasync.json")
local dates = require("metasync.dates")

local M = {}

-- Keyfactor metadata DataType codes.
M.KF = { String = 1, Integer = 2, Date = 3, Boolean = 4, MultipleChoice = 5, BigText = 6, Email = 7 }
M.KF_NAMES = { "String", "Integer", "Date", "Boolean", "MultipleChoice", "BigText", "Email" }
-- Longest value Keyfactor stores per type; Sectigo takes 256 characters.
M.KF_MAX = { [1] = 400, [5] = 400, [6] = 4000, [7] = 400 }
M.SECTIGO_MAX = 256

local byte = string.byte

function M.absent(v)
  if v == nil or v == json.null then return true end
  if type(v) ~= "string" then return false end
  -- A string that starts with a printable character has something in it: no pattern needed
  -- for the usual case (this runs for every field of every certificate).
  local b = byte(v, 1)
  if b == nil then return true end
  if b > 32 then return false end
  return v:match("^%s*$") ~= nil
end

-- text(v) -> string form of a JSON value: integers without ".0", booleans as true/false,
-- lists joined by ", ". nil for an absent value.
function M.text(v)
  if v == nil or v == json.null then return nil end
  local t = type(v)
  if t == "string" then return v end
  if t == "boolean" then return v and "true" or "false" end
  if t == "number" then
    if math.type(v) == "integer" then return string.format("%d", v) end
    if v == math.floor(v) and v > -2^53 and v < 2^53 then return string.format("%d", math.tointeger(v)) end
    return (string.format("%.15g", v))
  end
  if t == "table" then
    if v[1] ~= nil or json.is_array(v) then
      local parts = {}
      for _, x in ipairs(v) do parts[#parts + 1] = M.text(x) or "" end
      return table.concat(parts, ", ")
    end
    return json.encode(v)
  end
  return tostring(v)
end

-- dig(obj, "certType.id") -> value at a dot path; keys match case-insensitively because the
-- old tool resolved them against .NET property names.
local segments = {} -- path -> its segments, split once

-- path_segments(path) -> the segments dig() walks ("certType.id" -> {"certType", "id"}); the
-- list is shared, only read.
function M.path_segments(path)
  local segs = segments[path]
  if not segs then
    segs = {}
    for seg in tostring(path):gmatch("[^%.]+") do segs[#segs + 1] = seg end
    segments[path] = segs
  end
  return segs
end

function M.dig(obj, path)
  local cur = obj
  local segs = segments[path] or M.path_segments(path)
  for _, seg in ipairs(segs) do
    if type(cur) ~= "table" then return nil end
    local nxt = cur[seg]
    if nxt == nil then
      local n = tonumber(seg)
      if n and cur[n + 1] ~= nil then nxt = cur[n + 1] end
    end
    if nxt == nil then
      local low = seg:lower()
      for k, v in pairs(cur) do
        if type(k) == "string" and k:lower() == low then nxt = v; break end
      end
    end
    cur = nxt
  end
  return cur
end

local function to_int(v)
  if type(v) == "number" then return math.tointeger(v) end
  local s = M.text(v)
  if not s then return nil end
  s = s:match("^%s*(.-)%s*$")
  if s:match("^[+-]?%d+$") then return math.tointeger(tonumber(s)) end
  local f = tonumber(s)
  return f and math.tointeger(f)
end

local TRUE = { ["true"] = true, ["1"] = true, yes = true, y = true, on = true }
local FALSE = { ["false"] = true, ["0"] = true, no = true, n = true, off = true }

function M.bool(v)
  if type(v) == "boolean" then return v end
  local s = M.text(v)
  if not s then return nil end
  s = s:lower():match("^%s*(.-)%s*$")
  if TRUE[s] then return true elseif FALSE[s] then return false end
  return nil
end

local function fit(s, max, truncate)
  if not max or #s <= max then return s end
  if truncate then return s:sub(1, max) end
  return nil, string.format("value is %d characters, the limit is %d", #s, max)
end

-- to_keyfactor(v, datatype, opts) -> string to send, or nil, reason. opts: options (list for
-- MultipleChoice), truncate (boolean). Every type goes as a string: that is how Keyfactor
-- stores and returns metadata, and it keeps "1234" from becoming 1234.0 anywhere.
function M.to_keyfactor(v, datatype, opts)
  opts = opts or {}
  if M.absent(v) then return nil, "absent" end
  datatype = tonumber(datatype) or 1
  if datatype == 2 then
    local i = to_int(v)
    if not i then return nil, string.format("'%s' is not an integer", M.text(v)) end
    return string.format("%d", i)
  elseif datatype == 3 then
    local d = dates.parse_any(M.text(v), opts.date_format)
    if not d then return nil, string.format("'%s' is not a date", M.text(v)) end
    return dates.format(d, "yyyy-MM-dd")
  elseif datatype == 4 then
    local b = M.bool(v)
    if b == nil then return nil, string.format("'%s' is not a boolean", M.text(v)) end
    return b and "true" or "false"
  elseif datatype == 5 and type(opts.options) == "table" and #opts.options > 0 then
    local s = M.text(v)
    for _, o in ipairs(opts.options) do
      if o == s then return s end
    end
    for _, o in ipairs(opts.options) do
      if type(o) == "string" and o:lower() == s:lower() then return o end
    end
    return nil, string.format("'%s' is not one of the field's options", s)
  end
  return fit(M.text(v), M.KF_MAX[datatype], opts.truncate)
end

-- to_sectigo(v, input_type, opts) -> string, or nil, reason. opts: date_format (the
-- keyfactorDateFormat), truncate. Sectigo wants DATE as yyyy-MM-dd.
function M.to_sectigo(v, input_type, opts)
  opts = opts or {}
  if M.absent(v) then return nil, "absent" end
  input_type = input_type and tostring(input_type):upper() or "TEXT_SINGLE_LINE"
  if input_type == "DATE" then
    local d = dates.parse_any(M.text(v), opts.date_format)
    if not d then return nil, string.format("'%s' is not a date in format '%s'", M.text(v), tostring(opts.date_format)) end
    return dates.format(d, "yyyy-MM-dd")
  elseif input_type == "NUMBER" then
    local i = to_int(v)
    if i then return string.format("%d", i) end
    local f = tonumber(M.text(v))
    if not f then return nil, string.format("'%s' is not a number", M.text(v)) end
    return M.text(f)
  end
  return fit(M.text(v), M.SECTIGO_MAX, opts.truncate)
end

-- contains(s, part) -> whether the string s holds part, in any case (false when s is not a
-- string). The answers are remembered (a few thousand pairs at most): an inventory repeats the
-- same few issuer names for every certificate, and lowering each one again is most of the test.
local CONTAINS_MAX = 4096
local contains_memo, contains_n = {}, 0
function M.contains(s, part)
  if type(s) ~= "string" then return false end
  local byp = contains_memo[part]
  local r = byp and byp[s]
  if r ~= nil then return r end
  r = s:lower():find(part:lower(), 1, true) ~= nil
  if contains_n >= CONTAINS_MAX then contains_memo, contains_n = {}, 0 end
  byp = contains_memo[part]
  if not byp then byp = {}; contains_memo[part] = byp end
  byp[s] = r
  contains_n = contains_n + 1
  return r
end

-- kind_of_kf(datatype) / kind_of_sectigo(type) -> "date" | "number" | "boolean" | "text"
function M.kind_of_kf(dt)
  dt = tonumber(dt)
  return (dt == 2 and "number") or (dt == 3 and "date") or (dt == 4 and "boolean") or "text"
end

function M.kind_of_sectigo(t)
  t = t and tostring(t):upper()
  return (t == "NUMBER" and "number") or (t == "DATE" and "date") or "text"
end

-- canonical(v, kind, date_format) -> the form the sync state keeps: dates yyyy-MM-dd, integers
-- without ".0", booleans true/false, text as it is; nil for an absent value. A value that does
-- not parse as its kind is kept as its text, so nothing is lost.
function M.canonical(v, kind, date_format)
  if M.absent(v) then return nil end
  local s = M.text(v)
  if kind == "date" then
    local d = dates.parse_any(s, date_format)
    if d then return dates.format(d, "yyyy-MM-dd") end
  elseif kind == "number" then
    local i = to_int(v)
    if i then return string.format("%d", i) end
  elseif kind == "boolean" then
    local b = M.bool(v)
    if b ~= nil then return b and "true" or "false" end
  end
  return s
end

-- equal(a, b, kind, date_format) -> true when writing b over a would change nothing.
function M.equal(a, b, kind, date_format)
  local ea, eb = M.absent(a), M.absent(b)
  if ea or eb then return ea == eb end
  local sa, sb = M.text(a), M.text(b)
  if sa == sb then return true end
  if kind == "date" then
    local da, db = dates.parse_any(sa, date_format), dates.parse_any(sb, date_format)
    if da and db then return dates.equal(da, db) end
  elseif kind == "number" then
    local na, nb = tonumber(sa), tonumber(sb)
    if na and nb then return na == nb end
  elseif kind == "boolean" then
    local ba, bb = M.bool(a), M.bool(b)
    if ba ~= nil and bb ~= nil then return ba == bb end
  end
  return false
end

return M
