-- The unified field list both directions work from, and the Keyfactor field definitions it
-- implies. A field: {kind="custom"|"manual", sectigo=, keyfactor=, description=, datatype=,
-- hint=, validation=, enrollment=, message=, options=, default=, display_order=,
-- case_sensitive=, sectigo_type=, sectigo_id=, sectigo_active=}.
local json = require("metasync.json")
local log = require("metasync.log")
local values = require("metasync.values")

local M = {}

-- describe(v) -> how a JSON value reads in a message about a malformed record: "missing",
-- "null", "a number (12.5)", 'a string ("abc")', "an object", "a list".
function M.describe(v)
  if v == nil then return "missing" end
  if v == json.null then return "null" end
  local t = type(v)
  if t == "string" then return string.format('a string ("%s")', (v:sub(1, 40):gsub("[%c\"\\]", "?"))) end
  if t == "number" or t == "boolean" then return string.format("a %s (%s)", t, tostring(v)) end
  if t == "table" then return (json.is_array(v) or v[1] ~= nil) and "a list" or "an object" end
  return t
end
local describe = M.describe

local function present(v) return v ~= nil and v ~= json.null end
local function object(v) return type(v) == "table" and not json.is_array(v) and v[1] == nil end
local function list(v) return type(v) == "table" and (next(v) == nil or v[1] ~= nil) end

-- check_sectigo_def(def) -> nil, or what makes a Sectigo custom field definition unusable.
-- Such a definition is left out (with a WARN) rather than guessed at: its name is the join key
-- of every value, and its input says how values are written.
function M.check_sectigo_def(d)
  if not object(d) then return "it is " .. describe(d) .. ", not an object" end
  if type(d.name) ~= "string" or not d.name:find("%S") then return "name is " .. describe(d.name) end
  if present(d.state) and type(d.state) ~= "string" then return "state is " .. describe(d.state) end
  local input = d.input
  if present(input) then
    if not object(input) then return "input is " .. describe(input) .. ", not an object" end
    if present(input.type) and type(input.type) ~= "string" then return "input.type is " .. describe(input.type) end
    if present(input.options) and not list(input.options) then
      return "input.options is " .. describe(input.options) .. ", not a list"
    end
  end
end

-- check_custom_fields(list) -> nil, or what makes a certificate's customFields unreadable (a
-- details document or a report row). Its certificate then fails: read as "no values", it
-- would look unchanged, and kftosc, which sends the whole list back, would drop what it
-- could not read.
function M.check_custom_fields(cfs)
  if not present(cfs) then return nil end
  if not list(cfs) then return "customFields is " .. describe(cfs) .. ", not a list" end
  for i, cf in ipairs(cfs) do
    if not object(cf) then return string.format("customFields[%d] is %s, not an object", i, describe(cf)) end
    if type(cf.name) ~= "string" then return string.format("customFields[%d]: name is %s", i, describe(cf.name)) end
  end
end

-- Sectigo input type -> Keyfactor DataType
M.TYPE_MAP = { TEXT_SINGLE_LINE = 1, TEXT_MULTI_LINE = 6, EMAIL = 7, NUMBER = 2, TEXT_OPTION = 5, DATE = 3 }

local function input_type(def)
  local input = type(def.input) == "table" and def.input or {}
  return input.type and tostring(input.type):upper() or "TEXT_SINGLE_LINE", input.options
end

-- active(def) -> false for INACTIVE / SUSPENDED_INACTIVE (and the old tool's "disabled").
function M.active(def)
  local s = def.state and tostring(def.state):upper() or "ACTIVE"
  return not (s:find("INACTIVE", 1, true) or s == "DISABLED")
end

-- from_sectigo(def) -> unified custom field for importAllCustomFields: Keyfactor gets the
-- Sectigo name (rewritten later for banned characters) and the matching data type.
function M.from_sectigo(def)
  local t, options = input_type(def)
  local opts
  if t == "TEXT_OPTION" and type(options) == "table" then
    opts = {}
    for _, o in ipairs(options) do opts[#opts + 1] = tostring(o) end
  end
  return { kind = "custom", sectigo = def.name, keyfactor = def.name, description = def.name,
    datatype = M.TYPE_MAP[t] or 1, hint = t, options = opts, enrollment = 0, display_order = 0,
    case_sensitive = false }
end

-- by_name(defs) -> map lower-case Sectigo name -> definition
function M.by_name(defs)
  local m = {}
  for _, d in ipairs(defs or {}) do
    if type(d) == "table" and type(d.name) == "string" then m[d.name:lower()] = d end
  end
  return m
end

-- attach_sectigo(list, defs): adds each custom field's Sectigo type, id and state.
function M.attach_sectigo(list, defs)
  local m = M.by_name(defs)
  for _, f in ipairs(list) do
    local d = f.kind == "custom" and f.sectigo and m[f.sectigo:lower()]
    if d then
      f.sectigo_type = input_type(d)
      f.sectigo_id = d.id
      f.sectigo_active = M.active(d)
      f.sectigo = d.name
    end
  end
  return list
end

-- definition(f) -> the Keyfactor MetadataField body this field wants.
function M.definition(f)
  return { Name = f.keyfactor, Description = f.description or f.keyfactor, DataType = f.datatype,
    Hint = f.hint or "", Validation = f.validation, Enrollment = f.enrollment or 0,
    Message = f.message, Options = f.options and table.concat(f.options, ",") or nil,
    DefaultValue = f.default, DisplayOrder = f.display_order or 0,
    CaseSensitive = f.case_sensitive or false }
end

local function norm(v)
  if v == nil or v == json.null then return "" end
  if type(v) == "boolean" then return v and "true" or "false" end
  return tostring(v)
end

local function norm_options(v)
  local out = {}
  for part in norm(v):gmatch("[^,]+") do out[#out + 1] = part:match("^%s*(.-)%s*$") end
  return table.concat(out, ",")
end

-- Properties compared; DisplayOrder only when the site chose one (0 lets Keyfactor order).
local function differences(want, have)
  local d = {}
  local function cmp(key, a, b)
    if a ~= b then d[#d + 1] = string.format("%s: '%s' -> '%s'", key, b, a) end
  end
  cmp("DataType", norm(want.DataType), norm(have.DataType))
  cmp("Description", norm(want.Description), norm(have.Description))
  cmp("Hint", norm(want.Hint), norm(have.Hint))
  cmp("Validation", norm(want.Validation), norm(have.Validation))
  cmp("Enrollment", norm(want.Enrollment), norm(have.Enrollment ~= nil and have.Enrollment or 0))
  cmp("Message", norm(want.Message), norm(have.Message))
  cmp("DefaultValue", norm(want.DefaultValue), norm(have.DefaultValue))
  if tonumber(want.DataType) == 5 then cmp("Options", norm_options(want.Options), norm_options(have.Options)) end
  if (want.DisplayOrder or 0) ~= 0 then cmp("DisplayOrder", norm(want.DisplayOrder), norm(have.DisplayOrder)) end
  if have.CaseSensitive ~= nil and have.CaseSensitive ~= json.null then
    cmp("CaseSensitive", norm(want.CaseSensitive), norm(have.CaseSensitive))
  end
  return d
end

-- diff(list, existing) -> {create = {def...}, update = {{def=, changes=}...}, unchanged = n}.
-- Only differing definitions are touched; names compare case-insensitively as Keyfactor does.
function M.diff(list, existing)
  local have = {}
  for i, e in ipairs(existing or {}) do
    if type(e) == "table" and type(e.Name) == "string" then
      have[e.Name:lower()] = e
    else
      -- Nothing can be matched to it; a field it really is will be refused as a duplicate.
      log.warn("fields", "Keyfactor metadata field definition #%d%s has no usable Name (%s); ignored", i,
        type(e) == "table" and present(e.Id) and (" (Id " .. tostring(e.Id) .. ")") or "",
        type(e) == "table" and describe(e.Name) or describe(e))
    end
  end
  local out, seen = { create = {}, update = {}, unchanged = 0 }, {}
  for _, f in ipairs(list) do
    local want = M.definition(f)
    local key = want.Name:lower()
    if not seen[key] then
      seen[key] = true
      local e = have[key]
      if not e then
        out.create[#out.create + 1] = want
      else
        local changes = differences(want, e)
        if #changes > 0 then
          want.Id = e.Id
          want.Name = e.Name
          out.update[#out.update + 1] = { def = want, changes = changes }
        else
          out.unchanged = out.unchanged + 1
        end
      end
    end
  end
  return out
end

-- metadata(kfcert, name) -> the certificate's value for a field, names compared
-- case-insensitively (Keyfactor treats field names that way).
-- A certificate's metadata keys in lower case, made once per certificate on the first miss
-- (a field the certificate has no value for is a miss every time, for every field).
local lowered = setmetatable({}, { __mode = "k" })

function M.metadata(cert, name)
  local md = type(cert) == "table" and cert.Metadata
  if type(md) ~= "table" then return nil end
  local v = md[name]
  if v ~= nil then return v end
  local low = lowered[md]
  if not low then
    -- No metadata at all (every certificate of a first run): nothing to lower-case.
    if next(md) == nil then return nil end
    low = {}
    for k, x in pairs(md) do
      if type(k) == "string" then low[k:lower()] = x end
    end
    lowered[md] = low
  end
  return low[name:lower()]
end

-- source_value(field, details) -> the value fields.json names in a Sectigo certificate's
-- details: a manual field's dot path (values.dig), a custom field's value by name. A policy
-- whose source_value is this very function lets metasync.pair settle a pair that needs nothing
-- natively (metasync.unchanged follows the same lookups); any other function is called per field.
function M.source_value(field, details)
  if field.kind == "manual" then return values.dig(details, field.sectigo) end
  return M.custom_value(details, field.sectigo)
end

-- keyfactor_convert(value, field, ctx) -> the stock conversion of a Sectigo value for a
-- Keyfactor field (values.to_keyfactor by the field's DataType; dates read in Sectigo's own
-- format). A policy whose convert is this very function lets metasync.unchanged settle, in C,
-- values no memo holds (an id unique to each certificate) when they plainly equal the
-- current value; any other function is called once per distinct value.
-- (Its options table is made once per field and run, not per value: a first run converts
-- every value of every certificate.)
local convert_opts = setmetatable({}, { __mode = "k" })
function M.keyfactor_convert(value, field, ctx)
  local o = convert_opts[field]
  local truncate, df = ctx.cfg.enableTruncation, ctx.sectigo_date_format
  if not o or o.options ~= field.options or o.truncate ~= truncate or o.date_format ~= df then
    o = { options = field.options, truncate = truncate, date_format = df }
    convert_opts[field] = o
  end
  return values.to_keyfactor(value, field.datatype, o)
end

-- The rule of engine/unchanged.c's stock_same for a field's DataType, as to_keyfactor reads
-- it: 1 text (with its length limit), 2 integer, 3 one of the options; nil: not settled there.
local function stock_rule(f)
  local dt = tonumber(f.datatype) or 1
  if dt == 2 then return 2 end
  if dt == 3 or dt == 4 then return nil end
  if dt == 5 and type(f.options) == "table" and #f.options > 0 then
    local set = {}
    for _, o in ipairs(f.options) do if type(o) == "string" then set[o] = true end end
    return 3, set
  end
  return 1, values.KF_MAX[dt] or false
end

-- lookup_plan(list, novalue[, stock]) -> the lookups of source_value and metadata for these
-- fields, in the form metasync.unchanged follows (engine/unchanged.c), or nil when two fields
-- share a Keyfactor name (each field is then settled on its own, which only holds for
-- distinct names) or a name is not a string. novalue: the memo's key for "no current value".
-- stock: the policy converts with keyfactor_convert, so each entry carries its stock rule.
function M.lookup_plan(list, novalue, stock)
  local plan, seen = { novalue = novalue, map = "Metadata" }, {}
  for i, f in ipairs(list) do
    -- Names that are not strings are looked up differently by the Lua (a number matches a
    -- number, or raises): those fields are left to it.
    if type(f.keyfactor) ~= "string" or type(f.sectigo) ~= "string" then return nil end
    local key = f.keyfactor
    if seen[key:lower()] then return nil end
    seen[key:lower()] = true
    local e = { f, key, key:lower() }
    if f.kind == "manual" then
      local segs = {}
      for _, seg in ipairs(values.path_segments(f.sectigo)) do
        local n = tonumber(seg)
        segs[#segs + 1] = seg
        segs[#segs + 1] = n and n + 1 or false
        segs[#segs + 1] = seg:lower()
      end
      e[4], e[5] = 1, segs
    else
      local name = f.sectigo
      e[4], e[5], e[6], e[7] = 2, name, name:lower(), "customFields"
    end
    if stock then e[8], e[9] = stock_rule(f) end
    plan[i] = e
  end
  return plan
end

-- custom_value(details, name) -> a Sectigo certificate's custom field value by name
function M.custom_value(details, name)
  local cfs = type(details) == "table" and details.customFields
  if type(cfs) ~= "table" then return nil end
  -- The exact name first: it is the usual case and needs no new strings (this runs for
  -- every field of every certificate).
  for _, cf in ipairs(cfs) do
    if type(cf) == "table" and cf.name == name then return cf.value end
  end
  local low = name:lower()
  for _, cf in ipairs(cfs) do
    if type(cf) == "table" and type(cf.name) == "string" and cf.name:lower() == low then return cf.value end
  end
end

return M
