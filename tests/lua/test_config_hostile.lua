-- The configuration loader against hostile or broken files: what sits at the path (directory,
-- FIFO, device, loop, no permission, too big), out-of-range numbers, lists that are objects,
-- NUL bytes, URLs with credentials, secrets from *_FILE variables, and the new keys. Cases that
-- could block if the loader regressed (FIFOs, devices) run in a child under `timeout`, so a
-- regression fails the test instead of hanging it.
local config = require("metasync.config")
local names = require("metasync.names")
local json = require("metasync.json")

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function sh(cmd) assert(os.execute(cmd), cmd) end
local function pread(cmd)
  local p = assert(io.popen(cmd)); local s = p:read("a"); p:close(); return s
end
-- The binary running this test, for the child runs (the host's own path: metasync's, also
-- under valgrind, where /proc/<pid>/exe is valgrind's).
local BIN = require("metasync.options").executable
local ROOT = pread("id -u") == "0\n"

-- Every directory made here is removed at the end, and when the Lua state closes after a
-- failed assertion.
local made = setmetatable({}, { __gc = function(t) for _, p in ipairs(t) do os.execute("rm -rf " .. q(p)) end end })
local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  sh("mkdir -p " .. q(p) .. " && chmod 755 " .. q(p))
  made[#made + 1] = p
  return p
end
local function write(path, text)
  local f = assert(io.open(path, "wb")); f:write(text); f:close()
end
local function read(path)
  local f = io.open(path, "rb"); if not f then return nil end
  local s = f:read("a"); f:close(); return s
end

local BASE = {
  sectigoLogin = "admin", sectigoPassword = "s3cret", sectigoCustomerUri = "cust",
  sectigoAPIUrl = "https://cert-manager.com", keyfactorAPIUrl = "https://kf.local/KeyfactorAPI",
  keyfactorLogin = "DOMAIN\\user", keyfactorPassword = "kfpass",
}
local FIELDS = { ManualFields = json.array(), CustomFields = { { sectigoFieldName = "Cost Center",
  keyfactorMetadataFieldName = "CostCenter", keyfactorDataType = 1 } } }

-- setup(over[, fields]) -> a config directory; over's json.null removes a key, a string in
-- over.raw is spliced into the Config object as it is (for what the encoder cannot write).
local function setup(over, fields)
  local c = {}
  for k, v in pairs(BASE) do c[k] = v end
  for k, v in pairs(over or {}) do if k ~= "raw" then c[k] = v ~= json.null and v or nil end end
  local text = json.encode({ Config = c })
  if over and over.raw then text = text:gsub("}}$", ", " .. over.raw .. "}}") end
  local d = tmpdir()
  write(d .. "/config.json", text)
  write(d .. "/fields.json", type(fields) == "string" and fields or json.encode(fields or FIELDS))
  sh("chmod 644 " .. q(d) .. "/*")
  return d
end
local function errs_of(dir)
  local c, errs = config.load(dir)
  assert(c == nil, "expected an error for " .. dir)
  for _, e in ipairs(errs) do assert(not e:find("\n"), "one line: " .. e) end
  return errs
end
-- one_err(dir, ...) -> the only error, which must contain every plain text given
local function one_err(dir, ...)
  local errs = errs_of(dir)
  assert(#errs == 1, (#errs .. " errors:\n" .. table.concat(errs, "\n")):gsub("%z", "\\0"))
  for _, want in ipairs { ... } do assert(errs[1]:find(want, 1, true), errs[1] .. "\n  lacks: " .. want) end
  return errs[1]
end

-- child(dir[, env[, prefix]]) -> exit code, output lines. Loads the configuration in a child
-- metasync under `timeout 10`: it prints OK and a few values, or the errors.
local script = tmpdir() .. "/load.lua"
write(script, [[
local cfg, errs = require("metasync.config").load(arg[1])
if not cfg then for _, e in ipairs(errs) do print(e) end os.exit(1) end
print("OK", cfg.sectigoPassword, cfg.keyfactorPassword, cfg.sectigoOAuth and cfg.sectigoOAuth.clientSecret)
for _, w in ipairs(errs) do print("WARN " .. w) end
]])
sh("chmod 644 " .. q(script))
local function child(dir, env, prefix)
  local out = os.tmpname()
  local _, _, rc = os.execute(string.format("%s timeout 10 %s %s run %s %s >%s 2>&1", env or "", prefix or "",
    q(BIN), q(script), q(dir), q(out)))
  local text = read(out) or ""
  os.remove(out)
  assert(rc ~= 124, "the configuration load hung on " .. dir)
  local lines = {}
  for l in text:gmatch("[^\n]+") do lines[#lines + 1] = l end
  return rc, lines
end
local function child_err(dir, want, env, prefix)
  local rc, lines = child(dir, env, prefix)
  assert(rc == 1 and #lines == 1 and lines[1]:find(want, 1, true),
    string.format("rc %s, output:\n%s\n  wanted: %s", tostring(rc), table.concat(lines, "\n"), want))
  return lines[1]
end

-- 1. What sits at the path ------------------------------------------------------------------
local FILES = { "config.json", "fields.json", "bannedcharacters.json" }
for _, name in ipairs(FILES) do
  local d = setup()
  os.remove(d .. "/" .. name)
  sh("mkdir " .. q(d .. "/" .. name))
  one_err(d, d .. "/" .. name .. ": is a directory")
  d = setup()
  os.remove(d .. "/" .. name)
  sh(string.format("cd %s && ln -s loop1 loop2 && ln -s loop2 loop1 && ln -s loop1 %s", q(d), name))
  one_err(d, d .. "/" .. name .. ": too many levels of symbolic links")
  d = setup()
  os.remove(d .. "/" .. name)
  sh(string.format("ln -s %s %s", q(d .. "/nowhere"), q(d .. "/" .. name)))
  one_err(d, d .. "/" .. name .. ": is a symbolic link to a missing file")
  -- bigger than the cap: a sparse file, so the test writes nothing much
  d = setup()
  sh("truncate -s 5M " .. q(d .. "/" .. name))
  one_err(d, d .. "/" .. name .. ": is larger than 4 MiB")
  -- a FIFO blocks whoever opens it until a writer comes; a device never ends
  d = setup()
  os.remove(d .. "/" .. name)
  sh("mkfifo " .. q(d .. "/" .. name))
  child_err(d, d .. "/" .. name .. ": is a FIFO, not a regular file")
  d = setup()
  os.remove(d .. "/" .. name)
  sh(string.format("ln -s /dev/zero %s", q(d .. "/" .. name)))
  child_err(d, d .. "/" .. name .. ": is a device, not a regular file")
  -- no permission: as root chmod does not stop reads, so the child runs as nobody
  d = setup()
  write(d .. "/bannedcharacters.json", "[]")
  sh("chmod 000 " .. q(d .. "/" .. name))
  local prefix
  if ROOT then
    assert(os.execute("command -v setpriv >/dev/null"), "setpriv (util-linux) is needed to test EACCES as root")
    prefix = "setpriv --reuid=65534 --regid=65534 --clear-groups"
  end
  child_err(d, d .. "/" .. name .. ": permission denied", nil, prefix)
end
-- a missing config.json is still "file not found"; a missing bannedcharacters.json is none
one_err(tmpdir(), "/config.json: file not found")
assert(config.load(setup()).banned.list[1] == nil)

-- 2. fields.json is required, except with importAllCustomFields and no file at all ---------
local d = setup()
os.remove(d .. "/fields.json")
one_err(d, d .. "/fields.json: file not found (it is required unless importAllCustomFields is true)")
d = setup { importAllCustomFields = true }
os.remove(d .. "/fields.json")
local cfg = assert(config.load(d))
assert(#cfg.fields.manual == 0 and #cfg.fields.custom == 0)
d = setup { importAllCustomFields = true }
os.remove(d .. "/fields.json"); sh("mkdir " .. q(d .. "/fields.json"))
one_err(d, d .. "/fields.json: is a directory")

-- 3. Numbers: finite and in range, with the key named ---------------------------------------
for _, spec in ipairs(config.KEYS) do
  if spec[2] == "num" or spec[2] == "int" then
    assert(spec.min and spec.max, "key " .. spec[1] .. " has no range")
  end
end
for key, max in pairs { requestTimeoutSeconds = 86400, connectTimeoutSeconds = 86400, logMaxSizeMB = 10240,
  sectigoRequestsPerSecond = 100000, keyfactorRequestsPerSecond = 100000 } do
  one_err(setup { [key] = 1e300 }, string.format("/config.json: key '%s': expected a value from", key), tostring(max))
  one_err(setup { [key] = "1e999" }, string.format("/config.json: key '%s': expected a finite number", key))
  one_err(setup { [key] = "-1e999" }, string.format("key '%s': expected a finite number", key))
  one_err(setup { [key] = "nan" }, string.format("key '%s': expected a number", key))
  one_err(setup { [key] = { 1 } }, string.format("key '%s': expected a number", key))
  -- 1e999 as a JSON number: the decoder refuses it; the line still names the key
  one_err(setup { raw = string.format('"%s": 1e999', key) }, "malformed JSON", string.format("near key '%s'", key))
end
one_err(setup { sectigoPageSize = 1e300 }, "key 'sectigoPageSize': expected an integer")
one_err(setup { keyfactorOAuth = { tokenUrl = "https://idp/t", clientId = "c", clientSecret = "x", refreshSkewSeconds = 1e300 } },
  "key 'keyfactorOAuth.refreshSkewSeconds': expected a value from 0 to 86400")
cfg = assert(config.load(setup { requestTimeoutSeconds = "86400", logMaxSizeMB = 10240 }))
assert(cfg.requestTimeoutSeconds == 86400 and cfg.logMaxSizeMB == 10240)

-- 4. Lists are lists -------------------------------------------------------------------------
one_err(setup { sslTypeIds = { a = 1 } }, "key 'sslTypeIds': expected a list of integers")
one_err(setup { raw = '"sslTypeIds": {}' }, "key 'sslTypeIds': expected a list of integers")
assert(#config.load(setup { sslTypeIds = json.array() }).sslTypeIds == 0)
assert(config.load(setup { sslTypeIds = "1, 2" }).sslTypeIds[2] == 2)
local function with_options(opts)
  return setup(nil, { ManualFields = json.array(), CustomFields = { { sectigoFieldName = "Env",
    keyfactorMetadataFieldName = "Env", keyfactorDataType = 5, keyfactorOptions = opts } } })
end
one_err(with_options { "a", { x = 1 } }, "/fields.json: key 'CustomFields[1].keyfactorOptions[2]': expected a string")
one_err(with_options { "a", true }, "key 'CustomFields[1].keyfactorOptions[2]': expected a string")
one_err(with_options { a = "b" }, "key 'CustomFields[1].keyfactorOptions': expected a list of strings")
local opts = config.load(with_options { "a", 2 }).fields.custom[1].options
assert(opts[1] == "a" and opts[2] == "2")
one_err(setup(nil, { CustomFields = { { sectigoFieldName = "A", keyfactorMetadataFieldName = "A", keyfactorDataType = 1,
  keyfactorDisplayOrder = 1e300 } } }), "key 'CustomFields[1].keyfactorDisplayOrder'")

-- 5. URLs ------------------------------------------------------------------------------------
one_err(setup { keyfactorAPIUrl = "kf.local" }, "key 'keyfactorAPIUrl': expected a URL")
one_err(setup { sectigoAPIUrl = json.null }, "key 'sectigoAPIUrl': expected a URL")
cfg = assert(config.load(setup { keyfactorAPIUrl = "HTTPS://KF.local:8443/KeyfactorAPI", sectigoAPIUrl = "Http://[::1]:8080/api" }))
assert(cfg.keyfactor_base == "https://KF.local:8443/KeyfactorAPI" and cfg.sectigo_base == "http://[::1]:8080", cfg.sectigo_base)
assert(config.load(setup { keyfactorAPIUrl = "https://kf:65535" }))
for _, u in ipairs { "https://kf:0/x", "https://kf:65536", "https://kf:99999999999999999999", "https://kf:abc/", "https://kf:" } do
  one_err(setup { keyfactorAPIUrl = u }, "key 'keyfactorAPIUrl': expected a URL whose port is from 1 to 65535")
end
for _, u in ipairs { "ftp://kf", "https://", "https:///x", "https://kf/a b" } do
  one_err(setup { keyfactorAPIUrl = u }, "key 'keyfactorAPIUrl': expected a URL (http:// or https://)")
end
local e = one_err(setup { keyfactorAPIUrl = "http://user:hunter2@kf.local/KeyfactorAPI" },
  "key 'keyfactorAPIUrl': expected a URL without a user name or password (put them in keyfactorLogin and keyfactorPassword)")
assert(not e:find("hunter2", 1, true) and not e:find("user:", 1, true), e)
e = one_err(setup { sectigoAPIUrl = "https://me:pw@cert-manager.com" }, "key 'sectigoAPIUrl'", "sectigoLogin and sectigoPassword")
assert(not e:find(":pw", 1, true), e)
e = one_err(setup { keyfactorOAuth = { tokenUrl = "HTTPS://c:topsecret@idp/token", clientId = "c", clientSecret = "x" } },
  "key 'keyfactorOAuth.tokenUrl': expected a URL without a user name or password (put them in clientId and clientSecret)")
assert(not e:find("topsecret", 1, true), e)
cfg = assert(config.load(setup { keyfactorOAuth = { tokenUrl = "HTTPS://idp/token", clientId = "c", clientSecret = "x" } }))
assert(cfg.keyfactorOAuth.tokenUrl == "https://idp/token")
one_err(setup { sectigoOAuth = { tokenUrl = "idp" , clientId = "c", clientSecret = "x" }, sectigoLogin = json.null },
  "key 'sectigoOAuth.tokenUrl': expected a URL")

-- 6. NUL bytes --------------------------------------------------------------------------------
one_err(setup { sectigoLogin = "ad\0min" }, "key 'sectigoLogin': must not contain a NUL byte")
one_err(setup { keyfactorAPIUrl = "https://kf\0.local" }, "key 'keyfactorAPIUrl': must not contain a NUL byte")
one_err(setup { logDirectory = "logs\0/x" }, "key 'logDirectory': must not contain a NUL byte")
one_err(setup(nil, { CustomFields = { { sectigoFieldName = "A\0", keyfactorMetadataFieldName = "A", keyfactorDataType = 1 } } }),
  "key 'CustomFields[1].sectigoFieldName': must not contain a NUL byte")
one_err(with_options { "a\0b" }, "key 'CustomFields[1].keyfactorOptions[1]': must not contain a NUL byte")
one_err(with_options "a,\0b", "key 'CustomFields[1].keyfactorOptions': must not contain a NUL byte")
-- control characters in names and keys stay out of the one-line messages
e = one_err(setup(nil, { CustomFields = { { sectigoFieldName = "A", keyfactorMetadataFieldName = "Cost\nCenter", keyfactorDataType = 1 } } }),
  "Keyfactor field name 'Cost\\x0ACenter' contains U+000A")
local _, w = config.load(setup { ["bad\nkey"] = 1 })
assert(#w == 2 and w[1]:find("unknown key 'bad\\x0Akey'", 1, true) and not w[1]:find("\n"), w[1])
d = setup()
write(d .. "/bannedcharacters.json", '[{"character": "\\u0000", "replacementCharacter": "_"}]')
one_err(d, "/bannedcharacters.json: key 'BannedCharacters[1].character'")

-- 7. The Keyfactor query escapes backslash, then quote ------------------------------------------
local sctokf = require("metasync.stock").load("sctokf")
local query = sctokf.keyfactor_query({ cfg = { issuerDNLookupTerm = [[Sec\"ti\go\]] }, date_format = "yyyy-MM-dd",
  log = { warn = function() end } }).query
assert(query == [[IssuerDN -contains "Sec\\\"ti\\go\\"]], query)

-- 8. A symlinked bannedcharacters.json is written through the link -------------------------
d = setup()
local store = tmpdir()
write(store .. "/banned.json", '[{"character": " ", "replacementCharacter": "_"}]')
sh(string.format("ln -s %s %s", q(store .. "/banned.json"), q(d .. "/bannedcharacters.json")))
cfg = assert(config.load(d))
cfg.banned:add("&", nil)
assert(names.save(cfg.banned, cfg.banned_path))
assert(os.execute("test -L " .. q(cfg.banned_path)), "the link is still a link")
local back = assert(names.load(store .. "/banned.json"))
assert(back.by_char[" "].replacement == "_" and back.by_char["&"] and not back.by_char["&"].replacement)
assert(pread("ls -A " .. q(store)) == "banned.json\n" and not pread("ls -A " .. q(d)):find("tmp"), "no temporary file left")
-- ... and a target that is not a regular file is left alone
sh(string.format("rm %s && mkdir %s", q(store .. "/banned.json"), q(store .. "/banned.json")))
local ok, serr = names.save(cfg.banned, cfg.banned_path)
assert(not ok and serr:find("not a regular file", 1, true), tostring(serr))
assert(os.execute("test -d " .. q(store .. "/banned.json")))

-- 9. Secrets from *_FILE variables ------------------------------------------------------------
local sec = tmpdir()
write(sec .. "/pw", "from-file\n")
write(sec .. "/kf", "kf-file\r\n")
write(sec .. "/cs", "client-secret")
write(sec .. "/empty", "\n")
sh("chmod 644 " .. q(sec) .. "/*")
d = setup { sectigoPassword = json.null, keyfactorPassword = json.null,
  sectigoOAuth = { tokenUrl = "https://idp/t", clientId = "c" } }
local rc, lines = child(d, string.format("METASYNC_SECTIGO_PASSWORD_FILE=%s METASYNC_KEYFACTOR_PASSWORD_FILE=%s METASYNC_SECTIGO_CLIENT_SECRET_FILE=%s",
  q(sec .. "/pw"), q(sec .. "/kf"), q(sec .. "/cs")))
assert(rc == 0 and lines[1] == "OK\tfrom-file\tkf-file\tclient-secret", table.concat(lines, "\n"))
-- the plain variable wins
rc, lines = child(d, string.format("METASYNC_KEYFACTOR_PASSWORD=plain METASYNC_KEYFACTOR_PASSWORD_FILE=%s METASYNC_SECTIGO_PASSWORD_FILE=%s",
  q(sec .. "/kf"), q(sec .. "/pw")))
assert(rc == 0 and lines[1]:find("^OK\tfrom%-file\tplain"), table.concat(lines, "\n"))
-- unreadable, missing or empty: one line naming the variable, never a secret
for path, why in pairs { [sec] = "is a directory", [sec .. "/none"] = "file not found", [sec .. "/empty"] = "the file is empty" } do
  local line = child_err(d, "METASYNC_SECTIGO_PASSWORD_FILE: " .. path .. ": " .. why,
    string.format("METASYNC_SECTIGO_PASSWORD_FILE=%s METASYNC_KEYFACTOR_PASSWORD=kfx", q(path)))
  assert(not line:find("kfx", 1, true) and not line:find("from-file", 1, true), line)
end
sh("mkfifo " .. q(sec .. "/fifo"))
child_err(d, "METASYNC_SECTIGO_CLIENT_SECRET_FILE: " .. sec .. "/fifo: is a FIFO",
  string.format("METASYNC_SECTIGO_CLIENT_SECRET_FILE=%s METASYNC_SECTIGO_PASSWORD=a METASYNC_KEYFACTOR_PASSWORD=b", q(sec .. "/fifo")))

-- 10. Warnings: secrets in a file others can read, TLS checks off -------------------------------
local function warns(dir, what)
  local c, w = config.load(dir)
  assert(c, w and w[1])
  for _, l in ipairs(w) do if l:find(what, 1, true) then return l end end
end
local READABLE = "holds a password or client secret and is readable by group or others"
d = setup()
assert(warns(d, READABLE):find("(mode 644)", 1, true))
sh("chmod 640 " .. q(d .. "/config.json"))
assert(warns(d, READABLE))
sh("chmod 600 " .. q(d .. "/config.json"))
assert(not warns(d, READABLE))
-- secrets only in the environment: nothing to warn about, whatever the mode
rc, lines = child(setup { sectigoPassword = json.null, keyfactorPassword = "" }, "METASYNC_SECTIGO_PASSWORD=a METASYNC_KEYFACTOR_PASSWORD=b")
assert(rc == 0 and lines[1] == "OK\ta\tb\tnil" and not table.concat(lines, "\n"):find(READABLE, 1, true), table.concat(lines, "\n"))
assert(warns(setup { sectigoPassword = json.null, sectigoOAuth = { tokenUrl = "https://idp/t", clientId = "c", clientSecret = "x" } }, READABLE))
assert(warns(setup { insecureSkipVerify = "true" }, "key 'insecureSkipVerify': TLS certificates are not verified"))
assert(not warns(setup(), "insecureSkipVerify"))

-- 11. New keys --------------------------------------------------------------------------------
cfg = assert(config.load(setup()))
assert(table.concat(cfg.retryStatuses, ",") == "429,500,502,503,504" and cfg.circuitBreakerErrors == 20
  and cfg.maxRetries == 8 and cfg.max_changes == nil, "defaults")
cfg.retryStatuses[1] = 0
assert(config.load(setup()).retryStatuses[1] == 429, "the default list is a copy")
assert(table.concat(config.load(setup { retryStatuses = "429, 503" }).retryStatuses, ",") == "429,503")
assert(#config.load(setup { retryStatuses = json.array() }).retryStatuses == 0)
one_err(setup { retryStatuses = { 429, 600 } }, "key 'retryStatuses': expected a list of integers from 400 to 599 (item 2)")
one_err(setup { retryStatuses = { a = 429 } }, "key 'retryStatuses': expected a list of integers from 400 to 599")
assert(config.load(setup { circuitBreakerErrors = 0 }).circuitBreakerErrors == 0)
one_err(setup { circuitBreakerErrors = 10001 }, "key 'circuitBreakerErrors': expected a value from 0 to 10000")
one_err(setup { circuitBreakerErrors = -1 }, "key 'circuitBreakerErrors'")
for text, want in pairs { ["10%"] = "percent=10", [" 2.5 % "] = "percent=2.5", ["100%"] = "percent=100",
  ["50"] = "count=50", [50] = "count=50", [0] = "count=0" } do
  local mc = config.load(setup { maxChanges = text }).max_changes
  local got = mc.percent and "percent=" .. mc.percent or "count=" .. mc.count
  assert(got == want, tostring(text) .. " -> " .. got)
end
assert(config.load(setup { maxChanges = "10%" }).maxChanges == "10%")
for _, bad in ipairs { "abc", "-1", -1, 2.5, "1e3", "10%%", true } do
  one_err(setup { maxChanges = bad }, "key 'maxChanges': expected a number of certificates or a percentage such as 10%")
end
for _, bad in ipairs { "0%", "101%" } do
  one_err(setup { maxChanges = bad }, "key 'maxChanges': expected a percentage more than 0% and at most 100%")
end

-- 12. A file whose whole document is a JSON scalar ---------------------------------------------
-- `false` decodes to a value that is not nil yet falsy: it was taken for "no document" and the
-- error list then held the read's info table instead of a message (fuzz_config's finding).
for _, doc in ipairs { "false", "\t\tfalse", "true", "0", "null" } do
  local d = setup()
  write(d .. "/config.json", doc)
  one_err(d, d .. "/config.json: key 'Config': expected an object holding the settings")
  d = setup(nil, doc)
  one_err(d, d .. "/fields.json: expected an object with ManualFields and CustomFields")
end

for _, p in ipairs(made) do os.execute("rm -rf " .. q(p)) end
print("ok")
