-- Loads the old tool's three files unchanged (config.json, fields.json,
-- bannedcharacters.json) plus metasync's optional keys, and validates everything before any
-- request is made. Every problem becomes one line naming the file, the key and what was
-- expected; unknown keys are warnings with a "did you mean".
local json = require("metasync.json")
local names = require("metasync.names")
local check = require("metasync.confcheck")
local fieldsconf = require("metasync.fieldsconf")

local M = {}
local pick, null, CONV, unknown_keys, decode_file = check.pick, check.null, check.CONV, check.unknown_keys, check.decode_file

M.levenshtein, M.suggest = check.levenshtein, check.suggest

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
  { "sectigoBulkReads", "enum", "off", values = { "off", "auto", "on" } },
  { "requestTimeoutSeconds", "num", 60, min = 1 }, { "connectTimeoutSeconds", "num", 10, min = 1 },
  { "caFile", "str" }, { "proxy", "str" }, { "insecureSkipVerify", "bool", false },
  { "logDirectory", "str", "logs" }, { "logLevel", "level", "info" },
  { "logMaxSizeMB", "num", 10, min = 0 }, { "logMaxFiles", "int", 5, min = 1, max = 100 },
  -- the sync state (baseline + journal) and two-way sync
  { "stateFile", "str", "state/metasync.db" }, { "journalDays", "int", 90, min = 0, max = 36500 },
  { "conflictPolicy", "enum", "report", values = { "report", "sectigo", "keyfactor" } },
}

M.OAUTH_KEYS = { "tokenUrl", "clientId", "clientSecret", "scopesCsv", "audience",
  "requestedWith", "refreshSkewSeconds" }


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

-- home(dir) -> the tool's home: the parent of the configuration directory, where the old tool
-- kept its executable and logs/. Lexical, so it never depends on the working directory of a
-- cron job beyond what the configuration path itself says.
function M.home(dir)
  dir = dir:gsub("/+$", "")
  if dir == "" then return "/" end
  local last = dir:match("([^/]+)$")
  if last == "." or last == ".." then return dir .. "/.." end
  local parent = dir:match("^(.*)/[^/]+$")
  if parent == nil then return "." end
  if parent == "" then return "/" end
  return parent
end

-- resolve(cfg, path) -> an absolute path as is; a relative one against the tool's home.
function M.resolve(cfg, path)
  if path:sub(1, 1) == "/" then return path end
  local home = M.home(cfg.dir)
  if home == "." then return path end
  return home .. "/" .. path
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
      val, what = CONV[kind](raw, spec)
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
  if cfg.stateFile == "" then
    errs[#errs + 1] = string.format("%s: key 'stateFile': expected a file path", file)
  else
    cfg.state_path = M.resolve(cfg, cfg.stateFile)
  end
  if cfg.sectigoAPIUrl then cfg.sectigo_base = M.sectigo_base(cfg.sectigoAPIUrl) end
  if cfg.keyfactorAPIUrl then cfg.keyfactor_base = M.keyfactor_base(cfg.keyfactorAPIUrl) end

  cfg.banned_path = dir .. "/bannedcharacters.json"
  local banned, berr = names.load(cfg.banned_path)
  if not banned then errs[#errs + 1] = berr else cfg.banned = banned end

  local fdoc, ferr = decode_file(dir .. "/fields.json")
  if not fdoc then
    if ferr then errs[#errs + 1] = ferr
    else cfg.fields = { manual = {}, custom = {} }
      if not cfg.importAllCustomFields then
        warnings[#warnings + 1] = dir .. "/fields.json: file not found, no fields are mapped"
      end
    end
  else
    cfg.fields = fieldsconf.validate(fdoc, dir .. "/fields.json", cfg, errs, warnings)
  end
  if #errs > 0 then return nil, errs, warnings end
  return cfg, warnings
end

return M
