-- Loads the old tool's three files unchanged (config.json, fields.json,
-- bannedcharacters.json) plus metasync's optional keys, and validates everything before any
-- request is made. Every problem becomes one line naming the file, the key and what was
-- expected; unknown keys are warnings with a "did you mean".
local json = require("metasync.json")
local names = require("metasync.names")
local check = require("metasync.confcheck")
local fieldsconf = require("metasync.fieldsconf")
local conffile = require("metasync.conffile")

local M = {}
local pick, null, CONV, unknown_keys, decode_file = check.pick, check.null, check.CONV, check.unknown_keys, check.decode_file

M.levenshtein, M.suggest = check.levenshtein, check.suggest

-- kind: str, url, bool, num, int, intlist, enum, level, changes, oauth. Defaults are the old
-- tool's where it had one. Every num and int key has a min and a max: a value the rest of the
-- program cannot use (an infinite timeout, a 1e300 MB log) is refused here, with its key.
-- hint: where the credentials go instead of a URL's user:password@. cap: a value above max is
-- used as max with a warning (the old tool accepted any page size and the API capped it, so a
-- migrated config must not stop at it).
M.KEYS = {
  { "sectigoLogin", "str" }, { "sectigoPassword", "str", secret = "METASYNC_SECTIGO_PASSWORD" },
  { "sectigoCustomerUri", "str" }, { "sectigoAPIUrl", "url", hint = "sectigoLogin and sectigoPassword" },
  { "keyfactorAPIUrl", "url", hint = "keyfactorLogin and keyfactorPassword" }, { "keyfactorLogin", "str" },
  { "keyfactorPassword", "str", secret = "METASYNC_KEYFACTOR_PASSWORD" },
  { "keyfactorDateFormat", "str", "M/d/yyyy h:mm:ss tt" },
  { "importAllCustomFields", "bool", false }, { "syncRevokedAndExpiredCerts", "bool", false },
  { "issuerDNLookupTerm", "str", "Sectigo" }, { "sslTypeIds", "intlist", {} },
  { "enableDisabledFieldSync", "bool", false },
  { "sectigoPageSize", "int", 25, min = 1, max = 200, cap = "Sectigo's maximum page size" },
  { "keyfactorPageSize", "int", 100, min = 1, max = 5000, cap = "Keyfactor's maximum page size" },
  { "keyfactorAddedSince", "str" }, { "enableTruncation", "bool", false },
  { "UseKeyfactorOAuth", "bool" }, { "keyfactorOAuth", "oauth", secret = "METASYNC_KEYFACTOR_CLIENT_SECRET" },
  -- metasync's own keys
  { "sectigoOAuth", "oauth", secret = "METASYNC_SECTIGO_CLIENT_SECRET" },
  { "sectigoConcurrency", "int", 16, min = 1, max = 256 }, { "keyfactorConcurrency", "int", 16, min = 1, max = 256 },
  { "sectigoRequestsPerSecond", "num", 0, min = 0, max = 100000 },
  { "keyfactorRequestsPerSecond", "num", 0, min = 0, max = 100000 },
  { "maxRetries", "int", 8, min = 0, max = 20 },
  { "retryStatuses", "intlist", { 429, 500, 502, 503, 504 }, item_min = 400, item_max = 599 },
  { "circuitBreakerErrors", "int", 20, min = 0, max = 10000 }, -- 0: no circuit breaker
  { "circuitBreakerSeconds", "num", 30, min = 0, max = 86400 }, -- and failing for this long
  { "maxChanges", "changes" }, -- parsed into cfg.max_changes = {count=} or {percent=}
  { "sectigoBulkReads", "enum", "off", values = { "off", "auto", "on" } },
  { "requestTimeoutSeconds", "num", 60, min = 1, max = 86400 },
  { "connectTimeoutSeconds", "num", 10, min = 1, max = 86400 },
  { "caFile", "str" }, { "proxy", "str" }, { "insecureSkipVerify", "bool", false },
  { "logDirectory", "str", "logs" }, { "logLevel", "level", "info" },
  { "logFormat", "enum", "text", values = { "text", "json" } },
  -- the old tool's names (its NLog.config's logFileName and errorFileName), which shippers watch
  { "logFileName", "str", "MetadataSync.log" }, { "errorLogFileName", "str", "MetadataSync-Errors.log" },
  { "logMaxSizeMB", "num", 10, min = 0, max = 10240 }, { "logMaxFiles", "int", 5, min = 1, max = 100 },
  { "metricsFile", "str" }, -- the last run's counters for node_exporter (metasync.metrics)
  -- the sync state (baseline + journal) and two-way sync
  { "stateFile", "str", "state/metasync.db" }, { "journalDays", "int", 90, min = 0, max = 36500 },
  { "conflictPolicy", "enum", "report", values = { "report", "sectigo", "keyfactor" } },
}

M.OAUTH_KEYS = { "tokenUrl", "clientId", "clientSecret", "scopesCsv", "audience",
  "requestedWith", "refreshSkewSeconds" }
local SKEW = { min = 0, max = 86400 }
local TOKEN_URL = { hint = "clientId and clientSecret" }

local function copy(t)
  local out = {}
  for i, v in ipairs(t) do out[i] = v end
  return out
end

local function range_error(spec)
  return string.format("expected a value from %s to %s", tostring(spec.min), tostring(spec.max))
end

-- oauth_block(...) -> block or nil, and true when it had an error (so the checks that depend
-- on it stay quiet: one problem, one line).
local function oauth_block(v, file, key, secret_env, errs, warnings)
  if null(v) then return nil end
  if type(v) ~= "table" or check.is_list(v) then
    errs[#errs + 1] = string.format("%s: key '%s': expected an object", file, key)
    return nil, true
  end
  unknown_keys(v, M.OAUTH_KEYS, string.format("%s: key '%s'", file, key), warnings)
  local o, bad = {}, false
  local function fail(k, what)
    errs[#errs + 1] = string.format("%s: key '%s.%s': %s", file, key, k, what)
    bad = true
  end
  for _, k in ipairs(M.OAUTH_KEYS) do
    local x = pick(v, k)
    if not null(x) and not (k == "tokenUrl" and x == "") then
      local val, what
      if k == "refreshSkewSeconds" then
        val, what = CONV.num(x)
        if val and (val < SKEW.min or val > SKEW.max) then val, what = nil, range_error(SKEW) end
      elseif k == "tokenUrl" then val, what = CONV.url(x, TOKEN_URL)
      else val, what = CONV.str(x) end
      if val == nil then fail(k, what) else o[k] = val end
    end
  end
  local env, eerr = conffile.env_secret(secret_env)
  if eerr then errs[#errs + 1] = eerr; bad = true end
  if env then o.clientSecret = env end
  o.requestedWith = (o.requestedWith and o.requestedWith ~= "") and o.requestedWith or "APIClient"
  o.refreshSkewSeconds = o.refreshSkewSeconds or 120
  -- Usable only when the three essentials are there, as in the old tool.
  o.usable = (o.tokenUrl or "") ~= "" and (o.clientId or "") ~= "" and (o.clientSecret or "") ~= ""
  return o, bad
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

-- check_settings: the keys that are required, or required together. bad holds the keys that
-- already have an error, so a bad URL is reported once, not also as missing.
local function check_settings(cfg, file, errs, bad)
  local function need(key, why)
    if not bad[key] and (null(cfg[key]) or cfg[key] == "") then
      errs[#errs + 1] = string.format("%s: key '%s': %s", file, key, why)
    end
  end
  need("sectigoAPIUrl", "expected a URL (http:// or https://)")
  need("keyfactorAPIUrl", "expected a URL (http:// or https://)")
  need("sectigoCustomerUri", "expected a string (the Sectigo customer URI)")
  local so = cfg.sectigoOAuth
  if not (so and so.usable) and not bad.sectigoOAuth then
    need("sectigoLogin", "expected a string (or configure sectigoOAuth)")
    need("sectigoPassword", "expected a string (or set METASYNC_SECTIGO_PASSWORD or METASYNC_SECTIGO_PASSWORD_FILE)")
  end
  local ko = cfg.keyfactorOAuth
  local use_oauth = cfg.UseKeyfactorOAuth
  if use_oauth == nil then use_oauth = ko ~= nil and ko.usable end
  cfg.UseKeyfactorOAuth = use_oauth and true or false
  if bad.keyfactorOAuth then return end
  if use_oauth and not (ko and ko.usable) then
    errs[#errs + 1] = string.format("%s: key 'keyfactorOAuth': expected tokenUrl, clientId and clientSecret (or set METASYNC_KEYFACTOR_CLIENT_SECRET or METASYNC_KEYFACTOR_CLIENT_SECRET_FILE)", file)
  elseif not use_oauth then
    need("keyfactorLogin", "expected a string such as DOMAIN\\user (or configure keyfactorOAuth)")
    need("keyfactorPassword", "expected a string (or set METASYNC_KEYFACTOR_PASSWORD or METASYNC_KEYFACTOR_PASSWORD_FILE)")
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

-- holds_secret(section) -> true when config.json itself carries a password or client secret
local function holds_secret(section)
  local function set(v) return type(v) == "string" and v ~= "" end
  if set(pick(section, "sectigoPassword")) or set(pick(section, "keyfactorPassword")) then return true end
  for _, k in ipairs { "sectigoOAuth", "keyfactorOAuth" } do
    local o = pick(section, k)
    if type(o) == "table" and set(pick(o, "clientSecret")) then return true end
  end
  return false
end

-- key_value(spec, raw, file, errs, warnings) -> the converted value, or nil (absent or refused)
local function key_value(spec, raw, file, errs, warnings)
  local key, kind = spec[1], spec[2]
  if null(raw) or (raw == "" and kind ~= "str") then return nil end
  local val, what = CONV[kind](raw, spec)
  if val ~= nil and spec.cap and val > spec.max then
    warnings[#warnings + 1] = string.format("%s: key '%s': %s is above %s, %s; %s is used", file, key,
      tostring(val), spec.cap, tostring(spec.max), tostring(spec.max))
    val = spec.max
  end
  if val ~= nil and spec.max and (val < spec.min or val > spec.max) then val, what = nil, range_error(spec) end
  if val == nil then errs[#errs + 1] = string.format("%s: key '%s': %s", file, key, what) end
  return val
end

-- load_fields(dir, cfg, errs, warnings) -> {manual=, custom=}. fields.json is required: the
-- old tool always shipped it, and a run without it used to sync nothing and exit 0. The one
-- exception is importAllCustomFields with no fields.json at all: the custom fields then come
-- from Sectigo and there are simply no manual fields. A fields.json that is there but cannot
-- be read (a directory, no permission, a loop) is an error in every case.
local function load_fields(dir, cfg, errs, warnings)
  local file = dir .. "/fields.json"
  local doc, err, code = decode_file(file)
  -- A document of `false` is still a document (validate names what it should have been).
  if doc ~= nil then return fieldsconf.validate(doc, file, cfg, errs, warnings) end
  if code == "absent" and cfg.importAllCustomFields then return { manual = {}, custom = {} } end
  if code == "absent" then
    err = file .. ": file not found (it is required unless importAllCustomFields is true)"
  end
  errs[#errs + 1] = err
  return { manual = {}, custom = {} }
end

-- load(dir) -> cfg, warnings | nil, errors (a list of one-line messages), warnings
function M.load(dir)
  dir = (dir or "config"):gsub("/+$", "")
  if dir == "" then dir = "/" end
  local errs, warnings, bad = {}, {}, {}
  local file = dir .. "/config.json"
  local doc, info = decode_file(file) -- info: the error line when doc is nil
  if doc == nil then return nil, { info }, warnings end -- `false` is a document: refused below
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
    local nerr, val = #errs, nil
    if kind == "oauth" then
      local failed
      val, failed = oauth_block(raw, file, key, spec.secret, errs, warnings)
      if failed then bad[key] = true end
    else
      val = key_value(spec, raw, file, errs, warnings)
      if spec.secret then
        local env, eerr = conffile.env_secret(spec.secret)
        if eerr then errs[#errs + 1] = eerr end
        if env then val = env end
      end
      if val == nil then val = type(default) == "table" and copy(default) or default end
    end
    if #errs > nerr then bad[key] = true end
    if kind == "changes" then cfg.max_changes = val; val = val and raw end
    cfg[key] = val
  end
  check_settings(cfg, file, errs, bad)
  if cfg.stateFile == "" then
    errs[#errs + 1] = string.format("%s: key 'stateFile': expected a file path", file)
  else
    cfg.state_path = M.resolve(cfg, cfg.stateFile)
  end
  -- The log names are names: the directory is logDirectory's (or NLog.config's) to say.
  if cfg.logDirectory == "" then errs[#errs + 1] = string.format("%s: key 'logDirectory': expected a directory", file) end
  for _, key in ipairs { "logFileName", "errorLogFileName" } do
    local v = cfg[key]
    if v and (v == "" or v == "." or v == ".." or v:find("/", 1, true)) then
      errs[#errs + 1] = string.format("%s: key '%s': expected a file name without '/' (the directory is logDirectory)", file, key)
      bad[key] = true
    end
  end
  if not bad.logFileName and not bad.errorLogFileName and cfg.logFileName == cfg.errorLogFileName then
    errs[#errs + 1] = string.format("%s: key 'errorLogFileName': expected a name other than logFileName's", file)
  end
  if cfg.sectigoAPIUrl then cfg.sectigo_base = M.sectigo_base(cfg.sectigoAPIUrl) end
  if cfg.keyfactorAPIUrl then cfg.keyfactor_base = M.keyfactor_base(cfg.keyfactorAPIUrl) end
  local mode = conffile.group_readable(info)
  if mode and holds_secret(section) then
    warnings[#warnings + 1] = string.format("%s: holds a password or client secret and is readable by group or others (mode %s); chmod 600 it, or give the secrets through METASYNC_*_FILE", file, mode)
  end
  if cfg.insecureSkipVerify then
    warnings[#warnings + 1] = string.format("%s: key 'insecureSkipVerify': TLS certificates are not verified (for testing only)", file)
  end

  -- bannedcharacters.json may be missing (no replacements yet), but one that is there and
  -- cannot be read is an error: treating it as empty would lose the site's replacements the
  -- next time the file is written back.
  cfg.banned_path = dir .. "/bannedcharacters.json"
  local banned, berr = names.load(cfg.banned_path)
  if not banned then errs[#errs + 1] = berr else cfg.banned = banned end

  cfg.fields = load_fields(dir, cfg, errs, warnings)
  if #errs > 0 then return nil, errs, warnings end
  return cfg, warnings
end

return M
