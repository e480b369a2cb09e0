local config = require("metasync.config")

-- every directory made here is removed when the Lua state closes (also after a failure)
local made = setmetatable({}, { __gc = function(t)
  for _, p in ipairs(t) do os.execute("rm -rf '" .. p .. "'") end
end })
local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p '" .. p .. "'"))
  made[#made + 1] = p
  return p
end
local function write(dir, name, text)
  local f = assert(io.open(dir .. "/" .. name, "w")); f:write(text); f:close()
end
local BASE = [[{
  "Config": {
    "sectigoLogin": "admin", "sectigoPassword": "s3cret", "sectigoCustomerUri": "cust",
    "sectigoAPIUrl": "https://cert-manager.com/api/", "keyfactorAPIUrl": "https://kf.local/KeyfactorAPI/",
    "keyfactorLogin": "DOMAIN\\user", "keyfactorPassword": "kfpass",
    "importAllCustomFields": "false", "syncRevokedAndExpiredCerts": true,
    "sslTypeIds": [ 11111, "11112" ], "sectigoPageSize": "50" %s
  }
}]]
local FIELDS = [[{"_comments": {"x": "y"},
  "ManualFields": [{"sectigoFieldName": "id", "keyfactorMetadataFieldName": "SectigoID",
     "keyfactorDescription": "id", "keyfactorDataType": 2, "keyfactorDisplayOrder": 1}],
  "CustomFields": [{"sectigoFieldName": "Cost Center", "keyfactorMetadataFieldName": %s,
     "keyfactorDataType": %s, "keyfactorOptions": "a, b"}]}]]

local function setup(extra, kfname, dt)
  local d = tmpdir()
  write(d, "config.json", BASE:format(extra or ""))
  -- it holds passwords: readable by others it would be a warning (test_config_hostile.lua)
  assert(os.execute("chmod 600 '" .. d .. "/config.json'"))
  write(d, "fields.json", FIELDS:format(kfname or '"CostCenter"', dt or "1"))
  return d
end

-- a valid old-tool config loads, with strings for booleans and numbers
local cfg, warnings = config.load(setup())
assert(cfg, warnings)
assert(cfg.importAllCustomFields == false and cfg.syncRevokedAndExpiredCerts == true)
assert(cfg.sslTypeIds[1] == 11111 and cfg.sslTypeIds[2] == 11112)
assert(cfg.sectigoPageSize == 50 and cfg.keyfactorPageSize == 100)
assert(cfg.keyfactorDateFormat == "M/d/yyyy h:mm:ss tt" and cfg.issuerDNLookupTerm == "Sectigo")
assert(cfg.sectigo_base == "https://cert-manager.com", cfg.sectigo_base)
assert(cfg.keyfactor_base == "https://kf.local/KeyfactorAPI")
assert(cfg.sectigoConcurrency == 16 and cfg.maxRetries == 8 and cfg.logDirectory == "logs")
assert(cfg.UseKeyfactorOAuth == false)
assert(cfg.fields.manual[1].keyfactor == "SectigoID" and cfg.fields.manual[1].datatype == 2)
assert(cfg.fields.custom[1].options[2] == "b")
assert(cfg.banned and cfg.banned.list[1] == nil, "missing bannedcharacters.json means none")
assert(#warnings == 0, warnings[1])
for _, u in ipairs { "https://x.com", "https://x.com/", "https://x.com/api", "https://x.com/api/" } do
  assert(config.sectigo_base(u) == "https://x.com")
end

-- lower-case "config" section works too
local d = setup()
write(d, "config.json", (BASE:format(""):gsub('"Config"', '"config"')))
assert(config.load(d))

-- unknown key: a warning with a did-you-mean
cfg, warnings = config.load(setup(', "keyfactorPagesize2": 5'))
assert(cfg and warnings[1]:find("unknown key 'keyfactorPagesize2', did you mean 'keyfactorPageSize'%?"), warnings[1])

local function err_of(dir)
  local c, errs = config.load(dir)
  assert(c == nil, "expected an error")
  return table.concat(errs, "\n"), errs
end
-- malformed JSON: line and column
d = tmpdir(); write(d, "config.json", '{\n  "Config": {\n    "a": 1,,\n  }\n}')
local e = err_of(d)
assert(e:find(d .. "/config.json: malformed JSON: line %d+ column %d+"), e)
-- missing keyfactorAPIUrl
d = setup(); write(d, "config.json", (BASE:format(""):gsub('"keyfactorAPIUrl": "[^"]*",', "")))
e = err_of(d)
assert(e:find(d .. "/config.json: key 'keyfactorAPIUrl': expected a URL", 1, true), e)
-- bad URL, bad boolean
e = err_of(setup(', "keyfactorAPIUrl": "kf.local"'))
assert(e:find("key 'keyfactorAPIUrl': expected a URL"), e)
e = err_of(setup(', "enableTruncation": "maybe"'))
assert(e:find("key 'enableTruncation': expected true or false"), e)
-- keyfactorDataType outside 1..7
d = setup(nil, nil, "9")
e = err_of(d)
assert(e:find(d .. "/fields.json: key 'CustomFields[1].keyfactorDataType': expected an integer 1..7", 1, true), e)
-- banned character in a Keyfactor name when importAllCustomFields is false: names the field
d = setup(nil, '"Cost Center"')
local _, errs = err_of(d)
assert(#errs == 1 and errs[1]:find("'Cost Center'") and errs[1]:find("' ' (U+0020)", 1, true), errs[1])
assert(not errs[1]:find("\n"), "one line")
-- ... but accepted once bannedcharacters.json has a replacement for it
write(d, "bannedcharacters.json", '{"BannedCharacters":[{"character":" ","replacementcharacter":"_"}]}')
assert(config.load(d))
-- ... and not checked here when importAllCustomFields is true (the run-time flow handles it)
assert(config.load(setup(', "importAllCustomFields": true', '"Cost Center"')))
-- secrets from the environment: missing from the file is fine when the variable is set
d = setup()
write(d, "config.json", (BASE:format(""):gsub('"sectigoPassword": "s3cret",', "")))
e = err_of(d)
assert(e:find("key 'sectigoPassword'") and e:find("METASYNC_SECTIGO_PASSWORD"), e)
-- OAuth for Keyfactor: usable block switches basic auth off
cfg = assert(config.load(setup(', "keyfactorLogin": null, "keyfactorOAuth": {"tokenUrl": "https://idp/token", "clientId": "c", "clientSecret": "x", "scopesCsv": ""}')))
assert(cfg.UseKeyfactorOAuth == true and cfg.keyfactorOAuth.requestedWith == "APIClient"
  and cfg.keyfactorOAuth.refreshSkewSeconds == 120)
e = err_of(setup(', "UseKeyfactorOAuth": true'))
assert(e:find("key 'keyfactorOAuth'"), e)
-- every error is one line naming the file
e, errs = err_of(setup(', "sectigoPageSize": 0, "logLevel": "loud", "sslTypeIds": ["x"]'))
assert(#errs == 3, e)
for _, l in ipairs(errs) do assert(l:find("/config.json: key '") and not l:find("\n"), l) end
-- bad bannedcharacters.json
d = setup(); write(d, "bannedcharacters.json", "{oops")
assert(err_of(d):find(d .. "/bannedcharacters.json: malformed JSON", 1, true))
-- missing config.json
d = tmpdir()
assert(err_of(d):find(d .. "/config.json: file not found", 1, true))

-- the state file: default under the tool's home (the config directory's parent), never the
-- working directory; an absolute path is kept
cfg = assert(config.load(setup()))
assert(cfg.journalDays == 90 and cfg.conflictPolicy == "report", "sync defaults")
local parent = cfg.dir:match("^(.*)/[^/]+$")
assert(cfg.state_path == parent .. "/state/metasync.db", cfg.state_path)
cfg = assert(config.load(setup(', "stateFile": "/var/lib/metasync/s.db", "conflictPolicy": "Keyfactor"')))
assert(cfg.state_path == "/var/lib/metasync/s.db" and cfg.conflictPolicy == "keyfactor")
assert(config.home("config") == "." and config.home("/etc/metasync/config/") == "/etc/metasync"
  and config.home(".") == "./.." and config.home("/config") == "/", "home")
assert(err_of(setup(', "conflictPolicy": "newest"')):find("key 'conflictPolicy': expected one of report, sectigo, keyfactor", 1, true))
assert(err_of(setup(', "journalDays": -1')):find("key 'journalDays'", 1, true))
assert(err_of(setup(', "stateFile": ""')):find("key 'stateFile': expected a file path", 1, true))
-- syncDirection in fields.json
d = setup()
write(d, "fields.json", [[{"ManualFields": [], "CustomFields": [
  {"sectigoFieldName": "A", "keyfactorMetadataFieldName": "A", "keyfactorDataType": 1, "syncDirection": "KFtoSC"},
  {"sectigoFieldName": "B", "keyfactorMetadataFieldName": "B", "keyfactorDataType": 1}]}]])
cfg = assert(config.load(d))
assert(cfg.fields.custom[1].sync == "kftosc" and cfg.fields.custom[2].sync == "both", "syncDirection")
write(d, "fields.json", [[{"ManualFields": [
  {"sectigoFieldName": "id", "keyfactorMetadataFieldName": "I", "keyfactorDataType": 2, "syncDirection": "both"}],
  "CustomFields": [{"sectigoFieldName": "A", "keyfactorMetadataFieldName": "A", "keyfactorDataType": 1, "syncDirection": "up"}]}]])
local e = err_of(d)
assert(e:find("key 'ManualFields[1].syncDirection': manual fields go only sctokf", 1, true), e)
assert(e:find([[key 'CustomFields[1].syncDirection': expected both, sctokf or kftosc, got "up"]], 1, true), e)
-- logFormat: text (the old tool's lines) or json
assert(assert(config.load(setup())).logFormat == "text", "logFormat default")
assert(assert(config.load(setup(', "logFormat": "JSON"'))).logFormat == "json", "logFormat json")
assert(err_of(setup(', "logFormat": "xml"')):find("key 'logFormat': expected one of text, json", 1, true))

-- The bounded edit distance agrees with the plain one below its limit and says "at least the
-- limit" otherwise; the suggestions it drives stay the same.
local function plain(a, b)
  a, b = a:lower(), b:lower()
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a:byte(i) == b:byte(j) and 0 or 1))
    end
    prev = cur
  end
  return prev[#b]
end
math.randomseed(7)
local function word()
  local t = {}
  for i = 1, math.random(0, 9) do t[i] = string.char(math.random(97, 100)) end
  return table.concat(t)
end
for _ = 1, 3000 do
  local a, b, limit = word(), word(), math.random(1, 6)
  local want = plain(a, b)
  assert(config.levenshtein(a, b) == want, a .. " " .. b)
  local got = config.levenshtein(a, b, limit)
  assert(got == math.min(want, limit), string.format("%s %s limit %d: %d, want %d", a, b, limit, got, want))
end
assert(config.suggest("sectigoPasword", config.KEY_NAMES or { "sectigoPassword", "sectigoLogin" }) == "sectigoPassword")
assert(config.suggest("zzzzzzzzzzzz", { "sectigoPassword", "sectigoLogin" }) == nil)
-- the histogram bound never rules out the best candidate: suggest agrees with a full search
for _ = 1, 2000 do
  local key, cands = word() .. word(), {}
  for i = 1, 6 do cands[i] = word() .. word() end
  local best, bd = nil, math.max(2, #key // 3) + 1
  for _, c in ipairs(cands) do
    local d = plain(key, c)
    if d < bd then best, bd = c, d end
  end
  assert(config.suggest(key, cands) == best, key)
end
print("ok")
