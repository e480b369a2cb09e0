-- Validation of fields.json: {"ManualFields":[...], "CustomFields":[...]}, the old tool's
-- field mapping. Items are normalised into field specs the rest of the library uses:
-- {sectigo=, keyfactor=, kind="manual"|"custom", description=, datatype=1..7, hint=,
--  validation=, enrollment=, message=, options={...}, default=, display_order=,
--  case_sensitive=, allow_api=}
local json = require("metasync.json")
local check = require("metasync.confcheck")
local names = require("metasync.names")

local M = {}

local pick, CONV, null = check.pick, check.CONV, check.null

local function opt_string(item, key, where, errs)
  local v = pick(item, key)
  if null(v) then return nil end
  local s, what = CONV.str(v)
  if not s then errs[#errs + 1] = string.format("%s.%s': %s", where, key, what) end
  return s, not s
end

-- options: a JSON list of strings (numbers are taken as their text), or a comma-joined string
-- as Keyfactor stores it. Anything else is an error: a table item would reach Keyfactor as
-- "table: 0x...", and an object would silently be no options at all.
local function options_of(v, where, errs)
  if null(v) or v == "" then return nil end
  if type(v) == "string" then
    if v:find("\0", 1, true) then
      errs[#errs + 1] = where .. ".keyfactorOptions': must not contain a NUL byte"
      return nil
    end
    local out = {}
    for part in v:gmatch("[^,]+") do out[#out + 1] = part:match("^%s*(.-)%s*$") end
    return out
  end
  if not check.is_list(v) then
    errs[#errs + 1] = where .. ".keyfactorOptions': expected a list of strings"
    return nil
  end
  local out = {}
  for i, x in ipairs(v) do
    local s, what = nil, "expected a string"
    if type(x) == "string" or type(x) == "number" then s, what = CONV.str(x) end
    if not s then
      errs[#errs + 1] = string.format("%s.keyfactorOptions[%d]': %s", where, i, what)
      return nil
    end
    out[#out + 1] = s
  end
  return out
end

local function item_spec(item, kind, where, errs, warnings)
  if type(item) ~= "table" then
    errs[#errs + 1] = where .. "': expected an object"
    return nil
  end
  check.unknown_keys(item, check.FIELD_KEYS, where .. "'", warnings)
  local f = { kind = kind }
  local failed
  -- one line per problem: a value already refused is not also reported as missing
  f.sectigo, failed = opt_string(item, "sectigoFieldName", where, errs)
  if not failed and (not f.sectigo or f.sectigo == "") then
    errs[#errs + 1] = where .. ".sectigoFieldName': expected a non-empty string"
  end
  f.keyfactor, failed = opt_string(item, "keyfactorMetadataFieldName", where, errs)
  if not failed and (not f.keyfactor or f.keyfactor == "") then
    errs[#errs + 1] = where .. ".keyfactorMetadataFieldName': expected a non-empty string"
  end
  local dt = pick(item, "keyfactorDataType")
  local n = not null(dt) and tonumber(dt)
  if not n or not math.tointeger(n) or n < 1 or n > 7 then
    errs[#errs + 1] = string.format("%s.keyfactorDataType': expected an integer 1..7 (1 String, 2 Integer, 3 Date, 4 Boolean, 5 MultipleChoice, 6 BigText, 7 Email), got %s",
      where, null(dt) and "nothing" or json.encode(dt))
  else
    f.datatype = math.tointeger(n)
  end
  f.description = opt_string(item, "keyfactorDescription", where, errs)
  if not f.description or f.description == "" then f.description = f.keyfactor end
  f.hint = opt_string(item, "keyfactorHint", where, errs) or ""
  f.validation = opt_string(item, "keyfactorValidation", where, errs)
  f.message = opt_string(item, "keyfactorMessage", where, errs)
  f.default = opt_string(item, "keyfactorDefaultValue", where, errs)
  f.options = options_of(pick(item, "keyfactorOptions"), where, errs)
  for key, conv in pairs {
    keyfactorEnrollment = { "enrollment", CONV.int, 0 },
    keyfactorDisplayOrder = { "display_order", CONV.int, 0, max = 100000 },
    keyfactorCaseSensitive = { "case_sensitive", CONV.bool, false },
    keyfactorAllowAPI = { "allow_api", CONV.bool, true },
  } do
    local raw = pick(item, key)
    if null(raw) or raw == "" then
      f[conv[1]] = conv[3]
    else
      local v, what = conv[2](raw)
      if v ~= nil and conv.max and (v < 0 or v > conv.max) then
        v, what = nil, string.format("expected a value from 0 to %d", conv.max)
      end
      if v == nil then errs[#errs + 1] = string.format("%s.%s': %s", where, key, what) end
      f[conv[1]] = v
    end
  end
  -- Which way `metasync sync` moves this field. Manual fields are Sectigo's own certificate
  -- details, which nothing writes back.
  local dir = pick(item, "syncDirection")
  if null(dir) or dir == "" then
    f.sync = kind == "manual" and "sctokf" or "both"
  else
    local v = type(dir) == "string" and dir:lower()
    if v ~= "both" and v ~= "sctokf" and v ~= "kftosc" then
      errs[#errs + 1] = string.format("%s.syncDirection': expected both, sctokf or kftosc, got %s", where, json.encode(dir))
    elseif kind == "manual" and v ~= "sctokf" then
      errs[#errs + 1] = string.format("%s.syncDirection': manual fields go only sctokf (Sectigo's certificate details are not written)", where)
    end
    f.sync = v or "both"
  end
  if f.enrollment and (f.enrollment < 0 or f.enrollment > 2) then
    errs[#errs + 1] = where .. ".keyfactorEnrollment': expected 0 (optional), 1 (required) or 2 (hidden)"
  end
  return f
end

local function list_of(doc, key, kind, file, errs, warnings)
  local v = pick(doc, key)
  if null(v) then return {} end
  if type(v) ~= "table" or (next(v) ~= nil and v[1] == nil) then
    errs[#errs + 1] = string.format("%s: key '%s': expected a list of field objects", file, key)
    return {}
  end
  local out = {}
  for i, item in ipairs(v) do
    local where = string.format("%s: key '%s[%d]", file, key, i)
    local f = item_spec(item, kind, where, errs, warnings)
    if f then out[#out + 1] = f end
  end
  return out
end

-- validate(doc, file, cfg, errs, warnings) -> {manual=, custom=}
function M.validate(doc, file, cfg, errs, warnings)
  if type(doc) ~= "table" then
    errs[#errs + 1] = file .. ": expected an object with ManualFields and CustomFields"
    return { manual = {}, custom = {} }
  end
  check.unknown_keys(doc, { "ManualFields", "CustomFields" }, file, warnings)
  local fields = {
    manual = list_of(doc, "ManualFields", "manual", file, errs, warnings),
    custom = list_of(doc, "CustomFields", "custom", file, errs, warnings),
  }
  -- Names typed by the site must already be valid Keyfactor names, or be rewritten by a
  -- replacement the site has filled in. With importAllCustomFields the custom names come from
  -- Sectigo instead and go through the banned-characters flow at run time.
  local lists = { fields.manual }
  if not cfg.importAllCustomFields then lists[2] = fields.custom end
  local seen = {}
  for _, list in ipairs(lists) do
    for _, f in ipairs(list) do
      if f.keyfactor then
        local bad = names.banned(f.keyfactor)
        local missing = {}
        for _, c in ipairs(bad) do
          local e = cfg.banned and cfg.banned.by_char[c]
          if not (e and e.replacement) then missing[#missing + 1] = names.describe(c) end
        end
        if #missing > 0 then
          errs[#errs + 1] = string.format("%s: key '%s': Keyfactor field name '%s' contains %s; Keyfactor accepts only A-Z a-z 0-9 _ - (rename it, or give a replacement in bannedcharacters.json)",
            file, f.kind == "manual" and "ManualFields" or "CustomFields", check.show(f.keyfactor, 200), table.concat(missing, ", "))
        end
        local low = f.keyfactor:lower()
        if seen[low] then
          errs[#errs + 1] = string.format("%s: key 'keyfactorMetadataFieldName': '%s' is mapped twice", file, check.show(f.keyfactor, 200))
        end
        seen[low] = true
      end
    end
  end
  return fields
end

return M
