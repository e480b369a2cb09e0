-- The behaviour switches of POST/GET /__sim/settings and a world's "settings": one table of
-- names, checks and defaults, shared by the control API and the --data loader.
local U = require("util")

local SET = {}

local function one_of(...)
  local ok = {}
  for _, v in ipairs({ ... }) do ok[v] = true end
  local names = table.concat({ ... }, ", ")
  return function(v) return type(v) == "string" and ok[v] == true end, names
end

local function boolean(v) return type(v) == "boolean" end

-- A Java-style date pattern the simulator can render (yyyy MM dd HH mm ss SSS and quoted text).
local function pattern(v) return type(v) == "string" and #v <= 64 and U.date_formatter(v) ~= nil end

-- name -> { check, default, hint }; a default of false means "absent" (the value comes from
-- elsewhere, e.g. the command line). Order is the order GET /__sim/settings documents.
SET.ORDER = { "sectigoListSerialFormat", "sectigoCustomFieldsPut", "sectigoIgnorePaging", "sectigoReport",
  "sectigoReportDateFormat", "sectigoReportInactiveFields", "sectigoReportSerialFormat", "sectigoReportMaxRows",
  "keyfactorDateFormat", "keyfactorQueryNames", "keyfactorIgnorePaging", "productVersion", "tokenTtl" }

local SPEC = {}
SET.SPEC = SPEC
local function def(name, check, default, hint) SPEC[name] = { check = check, default = default, hint = hint } end

do
  local c, h = one_of("colon", "plain")
  def("sectigoListSerialFormat", c, "colon", h)
  c, h = one_of("merge", "replace")
  def("sectigoCustomFieldsPut", c, "merge", h)
  def("sectigoIgnorePaging", boolean, false, "true or false")
  c, h = one_of("on", "404", "403", "401", "405", "badshape", "badrows")
  def("sectigoReport", c, "on", h)
  def("sectigoReportDateFormat", pattern, "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'",
    "a date pattern of yyyy, MM, dd, HH, mm, ss, SSS and 'quoted text'")
  def("sectigoReportInactiveFields", boolean, false, "true or false")
  c, h = one_of("plain", "colon")
  def("sectigoReportSerialFormat", c, "plain", h)
  def("sectigoReportMaxRows", function(v) return U.int(v, 0) ~= nil and type(v) == "number" end, 0,
    "an integer >= 0 (0: no cap)")
  c, h = one_of("M/d/yyyy h:mm:ss tt", "yyyy-MM-dd")
  def("keyfactorDateFormat", c, false, h)
  c, h = one_of("any", "v10", "v25")
  def("keyfactorQueryNames", c, "any", h)
  def("keyfactorIgnorePaging", boolean, false, "true or false")
  def("productVersion", function(v) return type(v) == "string" and #v <= 64 end, false, "a string of at most 64 characters")
  def("tokenTtl", function(v) return type(v) == "number" and U.int(v, 1, 86400) ~= nil end, 300, "an integer 1..86400")
end

-- Checks a settings object; returns nil when fine, else a message naming the setting (under
-- path, e.g. "settings" in a world document).
function SET.check(doc, path)
  local pre = path and path .. ": " or ""
  if type(doc) ~= "table" or U.is_array(doc) then return pre .. "must be a JSON object" end
  for k, v in pairs(doc) do
    local s = SPEC[k]
    if not s then
      return string.format("%sunknown setting '%s' (one of %s)", pre, U.clean(k, 100), table.concat(SET.ORDER, ", "))
    end
    if not s.check(v) then return (path and path .. "." or "") .. k .. ": invalid value, expected " .. s.hint end
  end
  return nil
end

-- Stores the values of a checked settings object into st (the world's settings).
function SET.apply(st, doc)
  for k, v in pairs(doc) do st[k] = math.type(v) == "float" and math.tointeger(v) or v end
end

-- The effective value of one setting (the stored one, else its default).
function SET.get(st, name)
  local v = st[name]
  if v == nil then return SPEC[name].default end
  return v
end

-- Every setting's effective value, as GET /__sim/settings shows them; cfg gives the defaults that
-- come from the command line.
function SET.view(st, cfg)
  local out = {}
  for _, k in ipairs(SET.ORDER) do out[k] = SET.get(st, k) end
  out.keyfactorDateFormat = st.keyfactorDateFormat or cfg.keyfactor_date_format
  local names = out.keyfactorQueryNames
  out.productVersion = st.productVersion or (names == "v10" and "10.4.0.0" or "25.1.0.0")
  return out
end

return SET
