-- metasync.log: line layout, sinks, level filtering, rotation, redaction, loggers, run ids.
local log = require "metasync.log"

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function lines(path)
  local t = {}
  for l in (read(path) or ""):gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- a fresh directory: os.tmpname gives a unique file; use it as a prefix for a directory that
-- setup must create (nested, so mkdir -p is exercised)
local base = os.tmpname()
os.remove(base)
local dir = base .. ".d/nested/logs"
local file, errors = dir .. "/main.log", dir .. "/errors.log"
local created = {}
local function cleanup()
  -- The whole tree: the setups below leave more files there than the list of known paths
  -- held, and one os.remove per path then left <tmpname>.d behind on every run.
  os.execute("rm -rf '" .. base .. ".d'")
end
-- (also when an assertion fails: the Lua state's close runs it)
local cleanup_at_close = setmetatable({}, { __gc = cleanup })

-- defaults before setup
assert(log.level() == "info")
assert(log.enabled("info") and log.enabled("error"))
assert(not log.enabled("debug"))

-- run id: 8 hex chars, stable
local id = log.run_id()
assert(type(id) == "string" and id:match("^%x%x%x%x%x%x%x%x$"), id)
assert(log.run_id() == id)

-- levels: names are case-insensitive, "warning" is an alias, unknown names raise
assert(log.setup{level = "DEBUG", file = file, errors_file = errors, stderr = false})
created = {file, errors}
assert(log.level() == "debug")
log.set_level("Warning"); assert(log.level() == "warn")
log.set_level("trace"); assert(log.level() == "trace")
assert(not pcall(log.set_level, "verbose"))
assert(not pcall(log.setup, {level = "loud"}))
assert(not pcall(log.setup, {max_files = -1}))
log.set_level("debug")

-- one record per level
log.trace("t", "not written %d", 1)
log.debug("Sync", "debug %d", 1)
log.info("Sync", "info %s=%q", "k", "v")
log.warn("Sync", "warn %5.2f", 3.14159)
log.error("Sync", "error")
log.fatal("Sync", "fatal")
log.info("Sync", "100% verbatim %s %d") -- no args: no formatting
log.info(nil, "default logger")

local main = lines(file)
assert(#main == 7, "main log has " .. #main .. " lines")
local pat = "^(%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d%d%d%d) | (%u+ *) | ([^|]+) | (.*)$"
local expect = {
  {"DEBUG", "Sync", "debug 1"},
  {"INFO ", "Sync", 'info k="v"'},
  {"WARN ", "Sync", "warn  3.14"},
  {"ERROR", "Sync", "error"},
  {"FATAL", "Sync", "fatal"},
  {"INFO ", "Sync", "100% verbatim %s %d"},
  {"INFO ", "metasync", "default logger"},
}
for i, e in ipairs(expect) do
  local ts, lvl, logger, msg = main[i]:match(pat)
  assert(ts, "bad layout: " .. main[i])
  assert(lvl == e[1], ("line %d level %q"):format(i, lvl))
  assert(logger == e[2], ("line %d logger %q"):format(i, logger))
  assert(msg == e[3], ("line %d message %q"):format(i, msg))
end
-- the timestamp is local time, now
local ts = main[1]:match(pat)
assert(ts:sub(1, 10) == os.date("%Y-%m-%d") or ts:sub(1, 10) == os.date("%Y-%m-%d", os.time() - 5))

-- the errors file: only ERROR and FATAL
local errs = lines(errors)
assert(#errs == 2, "errors log has " .. #errs .. " lines")
assert(errs[1]:match(pat) and errs[1]:find("| ERROR | Sync | error", 1, true))
assert(errs[2]:find("| FATAL | Sync | fatal", 1, true))

-- format errors raise (misuse)
assert(not pcall(log.info, "x", "%d", "not a number"))

-- level filtering: at warn, info/debug vanish; enabled() agrees
log.set_level("warn")
assert(not log.enabled("info") and log.enabled("warn"))
log.info("Sync", "dropped")
log.warn("Sync", "kept")
main = lines(file)
assert(#main == 8 and main[8]:find("| WARN  | Sync | kept", 1, true))
-- arguments are not even formatted when nothing would be written
log.debug("Sync", "%d", "would raise if formatted")

-- logger objects
log.set_level("info")
local lg = log.logger("Keyfactor")
assert(tostring(lg):find("Keyfactor", 1, true))
lg:info("fetched %d certificates", 42)
lg:debug("dropped")
assert(lg:enabled("warn") and not lg:enabled("debug"))
main = lines(file)
assert(#main == 9 and main[9]:find("| INFO  | Keyfactor | fetched 42 certificates", 1, true))

-- run start / end carry the run id
log.run_start("Sync", "sctokf dry_run=%s", tostring(true))
lg:run_end("%d written", 3)
main = lines(file)
assert(main[10]:find("| Sync | run " .. id .. " started: sctokf dry_run=true", 1, true), main[10])
assert(main[11]:find("| Keyfactor | run " .. id .. " finished: 3 written", 1, true), main[11])

-- redaction: nothing secret reaches any file
local secrets = {
  'Authorization: Basic dXNlcjpwYXNz',
  'password: hunter2',
  'headers {login = "admin-user", password = "s3cr3t"}',
  '{"password":"jsonpass","name":"keep-me"}',
  'POST body client_secret=abc123&grant_type=client_credentials',
  'token {"access_token": "eyJhbGciOi", "expires_in": 3600}',
}
for _, s in ipairs(secrets) do log.error("Http", s) end
log.error("Http", "login failed for %s", "bob") -- no separator: nothing to redact
local all = read(file) .. read(errors)
for _, secret in ipairs{"dXNlcjpwYXNz", "Basic", "hunter2", "admin-user", "s3cr3t", "jsonpass",
                        "abc123", "eyJhbGciOi"} do
  assert(not all:find(secret, 1, true), "secret leaked: " .. secret)
end
for _, kept in ipairs{"Authorization: ***", "password: ***", 'login = "***"', '"password":"***"',
                      '"name":"keep-me"', "client_secret=***&grant_type=client_credentials",
                      '"access_token": "***", "expires_in": 3600', "login failed for bob"} do
  assert(all:find(kept, 1, true), "expected in log: " .. kept)
end
assert(log.redact("PASSWORD=x y") == "PASSWORD=*** y")
assert(log.redact("nothing here") == "nothing here")

-- redaction by value: a registered secret is masked wherever it appears, whatever surrounds it
local before = #lines(file)
assert(log.redact("login failed for password V4lue-Only") == "login failed for password V4lue-Only",
  "without registration free text keeps the secret (what add_secret is for)")
assert(log.add_secret("V4lue-Only") == true)
assert(log.add_secret("V4lue-Only") == true) -- again: nothing changes
assert(log.add_secret(nil) == false and log.add_secret(false) == false and log.add_secret() == false)
assert(log.add_secret("xyz") == false)          -- shorter than 4 bytes: not registered...
assert(log.redact("password=xyz, xyz stays") == "password=***, xyz stays") -- ...masked where labelled
assert(log.redact("login failed for password V4lue-Only") == "login failed for password ***")
assert(log.redact("V4lue-Only") == "***")
assert(log.redact("V4lue-OnlyV4lue-Only and V4lue-Only.") == "*** and ***.")
log.info("Auth", "login failed for password %s", "V4lue-Only")
log.error("Auth", "echo: V4lue-Only")
log.logger("Auth"):warn("V4lue-Only")
all = read(file) .. read(errors)
assert(not all:find("V4lue-Only", 1, true), "registered secret reached a log file")
main = lines(file)
assert(main[before + 1]:find("| INFO  | Auth | login failed for password ***", 1, true), main[before + 1])
assert(main[before + 2]:find("| ERROR | Auth | echo: ***", 1, true), main[before + 2])
assert(main[before + 3]:find("| WARN  | Auth | ***", 1, true), main[before + 3])
assert(read(errors):find("| ERROR | Auth | echo: ***", 1, true))
-- the forms the secret takes in JSON bodies and URL-encoded forms
assert(log.add_secret("p/w\"q x"))
assert(log.redact('{"pw":"p\\/w\\"q x"} f=p%2Fw%22q%20x') == '{"pw":"***"} f=***')
-- an Authorization value: the credential alone is masked too
local b64 = "RE9NQUlOXHU6Vjd2YWx1ZQ=="
assert(log.add_secret("Basic " .. b64))
assert(log.redact("cred " .. b64 .. " in an echo") == "cred *** in an echo")
-- numbers are taken as their text; anything else is misuse
assert(log.add_secret(987654321) == true and log.redact("pin 987654321") == "pin ***")
assert(not pcall(log.add_secret, {}))

-- rotation: 200-byte files, 2 archives
local rfile, rerr = dir .. "/rot.log", dir .. "/rot-errors.log"
assert(log.setup{level = "info", file = rfile, errors_file = rerr, stderr = false,
                 max_size = 200, max_files = 2})
created = {file, errors, rfile, rerr, rfile .. ".1", rfile .. ".2", rfile .. ".3",
           rerr .. ".1", rerr .. ".2", rerr .. ".3"}
for i = 1, 40 do log.info("Rot", "line %03d", i) end
for i = 1, 10 do log.error("Rot", "err %03d", i) end
assert(exists(rfile .. ".1") and exists(rfile .. ".2"), "archives missing")
assert(not exists(rfile .. ".3"), "too many archives kept")
assert(exists(rerr .. ".1"))
for _, p in ipairs{rfile, rfile .. ".1", rfile .. ".2", rerr} do
  local size = #read(p)
  assert(size <= 200, p .. " has " .. size .. " bytes")
end
-- the newest lines are in the live file, older ones in .1, the oldest were dropped
local live = read(rfile)
assert(live:find("err 010", 1, true))
assert(not read(rfile .. ".2"):find("line 001", 1, true))
-- every archive line keeps the layout
for _, l in ipairs(lines(rfile .. ".1")) do assert(l:match(pat), l) end

-- the default rotation: 10 MiB files. 10.5 MiB of records (1 KiB each) leave one archive of at
-- most 10 MiB and a live file holding the rest.
local dfile = dir .. "/default.log"
assert(log.setup{level = "info", file = dfile, errors_file = false, stderr = false})
created[#created + 1] = dfile
for i = 1, 6 do created[#created + 1] = dfile .. "." .. i end
local kib = string.rep("x", 1000)
for i = 1, 10752 do log.info("Big", "%05d %s", i, kib) end
local a1 = #read(dfile .. ".1")
assert(a1 <= 10 * 1048576 and a1 > 9 * 1048576, "default rotation size: archive has " .. a1)
assert(not exists(dfile .. ".2"))
assert(#read(dfile) < 1048576)
-- and five archives at most by default
log.setup{level = "info", file = dfile, errors_file = false, stderr = false, max_size = 4096}
for i = 1, 200 do log.info("Big", "%05d %s", i, kib) end
assert(exists(dfile .. ".5") and not exists(dfile .. ".6"), "default archive count is not 5")

-- archives named by a template, as NLog's archiveFileName: in a directory made when the first
-- archive is written, numbered Rolling (0 the newest), each file with its own rotation
local adir = dir .. "/Archive"
local afile, aerr = dir .. "/MetadataSync.log", dir .. "/MetadataSync-Errors.log"
assert(log.setup{level = "info", file = afile, errors_file = aerr, stderr = false, max_size = 300, max_files = 2,
  archive = adir .. "/MetadataSync.log.{#}.log", errors_archive = adir .. "/MetadataSync-Errors.log.{##}.log",
  errors_max_size = 150, errors_max_files = 3})
local archives = {adir .. "/MetadataSync.log.0.log", adir .. "/MetadataSync.log.1.log", adir .. "/MetadataSync.log.2.log",
  adir .. "/MetadataSync-Errors.log.00.log", adir .. "/MetadataSync-Errors.log.01.log",
  adir .. "/MetadataSync-Errors.log.02.log", adir .. "/MetadataSync-Errors.log.03.log"}
for _, p in ipairs(archives) do created[#created + 1] = p end
created[#created + 1] = afile
created[#created + 1] = aerr
log.info("Arc", "first")
assert(not exists(adir .. "/MetadataSync.log.0.log"), "no archive before the size is reached")
for i = 1, 30 do log.info("Arc", "line %03d", i) end
assert(not exists(afile .. ".1") and not exists(dir .. "/MetadataSync.log.0.log"), "archive beside the file")
assert(exists(archives[1]) and exists(archives[2]) and not exists(archives[3]), "main archives: .0 and .1 only")
-- .0 is the newest: its lines come right before the live file's, .1's before it
local n0 = tonumber(read(archives[1]):match("line (%d+)\n$"))
local n1 = tonumber(read(archives[2]):match("line (%d+)\n$"))
local nlive = tonumber(read(afile):match("line (%d+)"))
assert(n1 < n0 and n0 + 1 == nlive, ("rolling order: .1 ends %d, .0 ends %d, live starts %d"):format(n1, n0, nlive))
assert(not exists(archives[4]), "the errors file has not rotated yet (nothing at error)")
for i = 1, 12 do log.error("Arc", "err %02d", i) end
assert(exists(archives[4]) and exists(archives[6]) and not exists(archives[7]), "errors archives: 00..02, padded")
for _, p in ipairs{afile, aerr, archives[4], archives[6]} do
  for _, l in ipairs(lines(p)) do assert(l:match(pat), l) end
end
assert(#read(aerr) <= 150 and #read(archives[4]) <= 150, "the errors file rotates at its own size")
-- a template needs exactly one {#}
assert(not pcall(log.setup, {file = afile, archive = adir .. "/x.log"}))
assert(not pcall(log.setup, {file = afile, archive = adir .. "/{#}.{#}.log"}))
assert(not pcall(log.setup, {file = afile, errors_archive = adir .. "/{#x}.log"}))
assert(not pcall(log.setup, {file = afile, errors_max_files = 101}))

-- the errors file's threshold: errors_level (NLog.config's rule for ErrorLogFile)
assert(log.setup{level = "error", file = afile, errors_file = aerr, errors_level = "warn", stderr = false})
local before_e, before_m = #lines(aerr), #lines(afile)
log.info("Lvl", "dropped everywhere")
log.warn("Lvl", "warn only in the errors file")
log.error("Lvl", "error in both")
assert(#lines(aerr) == before_e + 2 and #lines(afile) == before_m + 1)
assert(lines(aerr)[before_e + 1]:find("| WARN  | Lvl | warn only in the errors file", 1, true))
assert(log.enabled("warn") and not log.enabled("info"), "enabled() counts the errors file's threshold")
assert(not pcall(log.setup, {errors_level = "loud"}))

-- the defaults are the old tool's names, under logs/ of the working directory: tried in a
-- child (this binary: the host's own path, which stays metasync's under valgrind too) started
-- elsewhere, not to write into the source tree
local self_exe = require("metasync.options").executable
local cwd_base = os.tmpname()
os.remove(cwd_base)
assert(os.execute("mkdir -p '" .. cwd_base .. ".cwd'"))
local cwd_at_close = setmetatable({}, { __gc = function() os.execute("rm -rf '" .. cwd_base .. ".cwd'") end })
local defaults = "cd '" .. cwd_base .. ".cwd' && '" .. self_exe .. "' run /dev/stdin <<'EOF'\n" ..
  "assert(require('metasync.log').setup{stderr = false})\nEOF"
assert(os.execute(defaults), "setup with the defaults")
assert(exists(cwd_base .. ".cwd/logs/MetadataSync.log") and exists(cwd_base .. ".cwd/logs/MetadataSync-Errors.log"))
os.execute("rm -rf '" .. cwd_base .. ".cwd'")

-- reconfiguring closes the old files; setup reports an unusable path as nil, message
local ok, err = log.setup{file = "/proc/nonexistent/dir/x.log", errors_file = false, stderr = false}
assert(ok == nil and type(err) == "string" and err:find("/proc/nonexistent", 1, true), tostring(err))

-- format = "json": one JSON object per line in the files, the message escaped and redacted
do
  local jdir = os.tmpname()
  os.remove(jdir)
  assert(os.execute("mkdir -p '" .. jdir .. "'"))
  assert(log.setup { file = jdir .. "/m.log", errors_file = jdir .. "/e.log", stderr = false, format = "json" })
  log.add_secret("Hunter2-Secret")
  log.info("sync", 'a "quoted" value\nsecond line\t\1 with password Hunter2-Secret')
  log.error("main", "boom")
  local jf = assert(io.open(jdir .. "/m.log"))
  local text = jf:read("a")
  jf:close()
  local json = require("metasync.json")
  local n = 0
  for line in text:gmatch("[^\n]+") do
    local o = json.decode(line)
    assert(o.time:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"), o.time)
    assert(o.run_id == log.run_id() and (o.level == "info" or o.level == "error"), line)
    n = n + 1
    if n == 1 then
      assert(o.logger == "sync" and o.message:find('a "quoted" value\nsecond line\t\1', 1, true), o.message)
      assert(not line:find("Hunter2-Secret", 1, true), "a secret in a JSON line: " .. line)
    end
  end
  assert(n == 2, "two JSON lines, got " .. n)
  local ejf = assert(io.open(jdir .. "/e.log"))
  assert(json.decode(ejf:read("l")).message == "boom", "the errors file is JSON too")
  ejf:close()
  assert(not pcall(log.setup, { file = false, errors_file = false, format = "xml" }), "format must be text or json")
  os.execute("rm -rf '" .. jdir .. "'")
end

log.setup{file = false, errors_file = false, stderr = true}
cleanup()
print("test_log: ok")
