-- The checks config.lua and fieldsconf.lua share: value conversions that say what was
-- expected, case-insensitive key lookup (the old tool's binder ignored case) and unknown-key
-- warnings with a "did you mean". A module of its own so neither file requires the other.
local json = require("metasync.json")

local M = {}

-- The keys of a fields.json entry.
M.FIELD_KEYS = { "sectigoFieldName", "keyfactorMetadataFieldName", "keyfactorDescription",
  "keyfactorDataType", "keyfactorHint", "keyfactorValidation", "keyfactorEnrollment",
  "keyfactorMessage", "keyfactorOptions", "keyfactorDefaultValue", "keyfactorDisplayOrder",
  "keyfactorCaseSensitive", "keyfactorAllowAPI", "syncDirection" }

local LEVELS = { trace = 1, debug = 1, info = 1, warn = 1, error = 1, fatal = 1 }

function M.levenshtein(a, b)
  a, b = a:lower(), b:lower()
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

-- suggest(key, candidates) -> closest candidate within a small edit distance, or nil
function M.suggest(key, candidates)
  local best, bd = nil, math.max(2, #key // 3) + 1
  for _, c in ipairs(candidates) do
    local d = M.levenshtein(key, c)
    if d < bd then best, bd = c, d end
  end
  return best
end

local function null(v) return v == nil or v == json.null end

-- Conversions: each returns the value, or nil plus what was expected.
local CONV = {}
function CONV.str(v)
  if type(v) == "string" then return v end
  if type(v) == "number" then return tostring(v) end
  return nil, "expected a string"
end
function CONV.url(v)
  if type(v) == "string" and v:match("^https?://[^/%s]+") and not v:match("%s") then return v end
  return nil, "expected a URL (http:// or https://)"
end
function CONV.bool(v)
  if type(v) == "boolean" then return v end
  if type(v) == "string" then
    local s = v:lower():match("^%s*(.-)%s*$")
    if s == "true" then return true elseif s == "false" then return false end
  end
  return nil, "expected true or false"
end
function CONV.num(v)
  local n = tonumber(v)
  if n and n == n then return n end
  return nil, "expected a number"
end
function CONV.int(v)
  local n = tonumber(v)
  if n and math.tointeger(n) then return math.tointeger(n) end
  return nil, "expected an integer"
end
function CONV.intlist(v)
  if type(v) == "string" then
    local out = {}
    for part in v:gmatch("[^,%s]+") do
      local n = CONV.int(part)
      if not n then return nil, "expected a list of integers" end
      out[#out + 1] = n
    end
    return out
  end
  if type(v) ~= "table" then return nil, "expected a list of integers" end
  local out = {}
  for i, x in ipairs(v) do
    local n = CONV.int(x)
    if not n then return nil, string.format("expected a list of integers (item %d)", i) end
    out[#out + 1] = n
  end
  return out
end
-- enum: one of spec.values, any case.
function CONV.enum(v, spec)
  if type(v) == "string" then
    for _, x in ipairs(spec.values) do
      if x:lower() == v:lower() then return x end
    end
  end
  return nil, "expected one of " .. table.concat(spec.values, ", ")
end
function CONV.level(v)
  if type(v) == "string" and LEVELS[v:lower()] then return v:lower() end
  return nil, "expected one of trace, debug, info, warn, error, fatal"
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- decode_file(path) -> doc, or nil, one-line error (nil, nil when the file does not exist)
local function decode_file(path)
  local text = read(path)
  if not text then return nil, nil end
  local doc, err = json.decode(text)
  if doc == nil then return nil, string.format("%s: malformed JSON: %s", path, tostring(err)) end
  return doc
end

-- pick(obj, key) -> value by case-insensitive key (the old tool's binder ignored case)
function M.pick(obj, key)
  if obj[key] ~= nil then return obj[key], key end
  local low = key:lower()
  for k, v in pairs(obj) do
    if type(k) == "string" and k:lower() == low then return v, k end
  end
end

function M.unknown_keys(obj, known, where, warnings)
  local set = {}
  for _, k in ipairs(known) do set[k:lower()] = true end
  for k in pairs(obj) do
    if type(k) == "string" and not set[k:lower()] and k:sub(1, 1) ~= "_" then
      local s = M.suggest(k, known)
      warnings[#warnings + 1] = string.format("%s: unknown key '%s'%s (ignored)", where, k,
        s and string.format(", did you mean '%s'?", s) or "")
    end
  end
end

M.null, M.CONV, M.decode_file = null, CONV, decode_file
return M
