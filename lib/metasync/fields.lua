-- The unified field list both directions work from, and the Keyfactor field definitions it
-- implies. A field: {kind="custom"|"manual", sectigo=, keyfactor=, description=, datatype=,
-- hint=, validation=, enrollment=, message=, options=, default=, display_order=,
-- case_sensitive=, sectigo_type=, sectigo_id=, sectigo_active=}.
local json = require("metasync.json")

local M = {}

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
  for _, e in ipairs(existing or {}) do
    if type(e) == "table" and type(e.Name) == "string" then have[e.Name:lower()] = e end
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
    low = {}
    for k, x in pairs(md) do
      if type(k) == "string" then low[k:lower()] = x end
    end
    lowered[md] = low
  end
  return low[name:lower()]
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
