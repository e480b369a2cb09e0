-- Loads the old tool's three files unchanged (config.json, fields.json,
-- bannedcharacters.json) plus metasync's optional keys, and validates everything before any
-- request is made. Every problem becomes one line naming the file, the key and what was
-- expected; unknown keys are warnings with a "did you mean".
local json = require("metasync.json")
local names = require("metasync.names")

local M = {}

-- kind: str, url, bool, int, intlist, level, oauth. Defaults are the old tool's where it had one.
M.KEYS = {
  { "sectigoLogin", "str" }, { "sectigoPassword", "str", secret = "METASYNC_SECTIGO_PASSWORD" },
  { "sectigoCustomerUri", "str" }, { "sectigoAPIUrl", "url" },
  { "keyfactorAPIUrl", "url" }, { "keyfactorLogin", "str" },
  { "keyfactorPassword", "str", secret = "METASYNC_KEYFACTOR_PASSWORD" },
  { "keyfactorDateFormat", "str", "M/d/yyyy h:mm:ss tt" },
  { "importAllCustomFields", "bool", false }, { "syncRevokedAndExpiredCerts", "bool", false },
  { "issuerDNLookupTerm", "str", "Sectigo" }, { "sslTypeIds", "intlist" },
  { "enableDisabledFieldSync", "bool", false },
  { "sectigoPageSize", "int", 25, min = 1, max = 200 }, { "keyfactorPageSize", "int", 100, min = 1, max = 5000 },
  { "keyfactorAddedSince", "str" }, { "enableTruncation", "bool", false },
  { "UseKeyfactorOAuth", "bool" }, { "keyfactorOAuth", "oauth", secret = "METASYNC_KEYFACTOR_CLIENT_SECRET" },
  -- metasync's own keys
  { "sectigoOAuth", "oauth", secret = "METASYNC_SECTIGO_CLIENT_SECRET" },
  { "sectigoConcurrency", "int", 16, min = 1, max = 256 }, { "keyfactorConcurrency", "int", 16, min = 1, max = 256 },
  { "sectigoRequestsPerSecond", "num", 0, min = 0 }, { "keyfactorRequestsPerSecond", "num", 0, min = 0 },
  { "maxRetries", "int", 4, min = 0, max = 20 },
  { "requestTimeoutSeconds", "num", 60, min = 1 }, { "connectTimeoutSeconds", "num", 10, min = 1 },
  { "caFile", "str" }, { "proxy", "str" }, { "insecureSkipVerify", "bool", false },
  { "logDirectory", "str", "logs" }, { "logLevel", "level", "info" },
  { "logMaxSizeMB", "num", 10, min = 0 }, { "logMaxFiles", "int", 5, min = 1, max = 100 },
}

M.OAUTH_KEYS = { "tokenUrl", "clientId", "clientSecret", "scopesCsv", "audience",
  "requestedWith", "refreshSkewSeconds" }

M.FIELD_KEYS = { "sectigoFieldName", "keyfactorMetadataFieldName", "keyfactorDescription",
  "keyfactorDataType", "keyfactorHint", "keyfactorValidation", "keyfactorEnrollment",
  "keyfactorMessage", "keyfactorOptions", "keyfactorDefaultValue", "keyfactorDisplayOrder",
  "keyfactorCaseSensitive", "keyfactorAllowAPI" }

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
local function pick(obj, key)
  if obj[key] ~= nil then return obj[key], key end
  local low = key:lower()
  for k, v in pairs(obj) do
    if type(k) == "string" and k:lower() == low then return v, k end
  end
end

local function unknown_keys(obj, known, where, warnings)
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

local function oauth_block(v, file, key, secret_env, errs, warnings)
  if null(v) then return nil end
  if type(v) ~= "table" then
    errs[#errs + 1] = string.format("%s: key '%s': expected an object", file, key)
    return nil
  end
  unknown_keys(v, M.OAUTH_KEYS, string.format("%s: key '%s'", file, key), warnings)
  local o = {}
  for _, k in ipairs(M.OAUTH_KEYS) do
    local x = pick(v, k)
    if not null(x) then
      local conv = k == "refreshSkewSeconds" and CONV.num or CONV.str
      local val, what = conv(x)
      if val == nil then
        errs[#errs + 1] = string.format("%s: key '%s.%s': %s", file, key, k, what)
      else o[k] = val end
    end
  end
  local env = os.getenv(secret_env)
  if env and env ~= "" then o.clientSecret = env end
  o.requestedWith = (o.requestedWith and o.requestedWith ~= "") and o.requestedWith or "APIClient"
  o.refreshSkewSeconds = o.refreshSkewSeconds or 120
  -- Usable only when the three essentials are there, as in the old tool.
  o.usable = (o.tokenUrl or "") ~= "" and (o.clientId or "") ~= "" and (o.clientSecret or "") ~= ""
  if o.usable and not CONV.url(o.tokenUrl) then
    errs[#errs + 1] = string.format("%s: key '%s.tokenUrl': expected a URL (http:// or https://)", file, key)
  end
  return o
end

-- Sectigo paths all start with /api/...; accept the base with or without "/" or "/api".
function M.sectigo_base(u)
  u = u:gsub("/+$", "")
  u = u:gsub("/api$", "")
  return u
end

function M.keyfactor_base(u)
  return (u:gsub("/+$", ""))
end

local fieldsmod -- loaded lazily: metasync.fieldsconf validates fields.json
local function check_settings(cfg, file, errs)
  local function need(key, why)
    if null(cfg[key]) or cfg[key] == "" then
      errs[#errs + 1] = string.format("%s: key '%s': %s", file, key, why)
    end
  end
  need("sectigoAPIUrl", "expected a URL (http:// or https://)")
  need("keyfactorAPIUrl", "expected a URL (http:// or https://)")
  need("sectigoCustomerUri", "expected a string (the Sectigo customer URI)")
  local so = cfg.sectigoOAuth
  if not (so and so.usable) then
    need("sectigoLogin", "expected a string (or configure sectigoOAuth)")
    need("sectigoPassword", "expected a string (or set METASYNC_SECTIGO_PASSWORD)")
  end
  local ko = cfg.keyfactorOAuth
  local use_oauth = cfg.UseKeyfactorOAuth
  if use_oauth == nil then use_oauth = ko ~= nil and ko.usable end
  cfg.UseKeyfactorOAuth = use_oauth and true or false
  if use_oauth and not (ko and ko.usable) then
    errs[#errs + 1] = string.format("%s: key 'keyfactorOAuth': expected tokenUrl, clientId and clientSecret (or set METASYNC_KEYFACTOR_CLIENT_SECRET)", file)
  elseif not use_oauth then
    need("keyfactorLogin", "expected a string such as DOMAIN\\user (or configure keyfactorOAuth)")
    need("keyfactorPassword", "expected a string (or set METASYNC_KEYFACTOR_PASSWORD)")
  end
end

-- load(dir) -> cfg, warnings | nil, errors (a list of one-line messages), warnings
function M.load(dir)
  dir = (dir or "config"):gsub("/+$", "")
  if dir == "" then dir = "/" end
  local errs, warnings = {}, {}
  local file = dir .. "/config.json"
  local doc, derr = decode_file(file)
  if not doc then
    errs[1] = derr or (file .. ": file not found")
    return nil, errs, warnings
  end
  local section = type(doc) == "table" and pick(doc, "Config")
  if type(section) ~= "table" then
    return nil, { file .. ": key 'Config': expected an object holding the settings" }, warnings
  end
  local known = {}
  for _, spec in ipairs(M.KEYS) do known[#known + 1] = spec[1] end
  unknown_keys(section, known, file, warnings)
  local cfg = { dir = dir }
  for _, spec in ipairs(M.KEYS) do
    local key, kind, default = spec[1], spec[2], spec[3]
    local raw = pick(section, key)
    local val
    if kind == "oauth" then
      val = oauth_block(raw, file, key, spec.secret, errs, warnings)
    elseif not null(raw) and not (raw == "" and kind ~= "str") then
      local what
      val, what = CONV[kind](raw)
      if val == nil then
        errs[#errs + 1] = string.format("%s: key '%s': %s", file, key, what)
      elseif (spec.min and val < spec.min) or (spec.max and val > spec.max) then
        errs[#errs + 1] = string.format("%s: key '%s': expected a value from %s to %s", file, key,
          tostring(spec.min), spec.max and tostring(spec.max) or "up")
        val = nil
      end
    end
    if kind ~= "oauth" and spec.secret then
      local env = os.getenv(spec.secret)
      if env and env ~= "" then val = env end
    end
    if val == nil and kind ~= "oauth" then
      if type(default) == "table" then val = {} else val = default end
    end
    if kind == "intlist" and val == nil then val = {} end
    cfg[key] = val
  end
  check_settings(cfg, file, errs)
  if cfg.sectigoAPIUrl then cfg.sectigo_base = M.sectigo_base(cfg.sectigoAPIUrl) end
  if cfg.keyfactorAPIUrl then cfg.keyfactor_base = M.keyfactor_base(cfg.keyfactorAPIUrl) end

  cfg.banned_path = dir .. "/bannedcharacters.json"
  local banned, berr = names.load(cfg.banned_path)
  if not banned then errs[#errs + 1] = berr else cfg.banned = banned end

  fieldsmod = fieldsmod or require("metasync.fieldsconf")
  local fdoc, ferr = decode_file(dir .. "/fields.json")
  if not fdoc then
    if ferr then errs[#errs + 1] = ferr
    else cfg.fields = { manual = {}, custom = {} }
      if not cfg.importAllCustomFields then
        warnings[#warnings + 1] = dir .. "/fields.json: file not found, no fields are mapped"
      end
    end
  else
    cfg.fields = fieldsmod.validate(fdoc, dir .. "/fields.json", cfg, errs, warnings)
  end
  if #errs > 0 then return nil, errs, warnings end
  return cfg, warnings
end

M.pick, M.unknown_keys, M.CONV, M.null = pick, unknown_keys, CONV, null
return M
