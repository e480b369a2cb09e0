-- Bad configuration files end to end: the run exits 1 with one stderr line naming the file
-- and key, makes no request to either API, and changes no file (bannedcharacters.json is
-- byte-identical, no log or state file appears).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")
local json = require("metasync.json")

local q = H.sh_quote
local function pread(cmd)
  local p = assert(io.popen(cmd)); local s = p:read("a"); p:close(); return s
end
-- The passwords come from the environment, so config.json holds no secret and the only
-- stderr line is the error (a readable config.json with a password is a warning line).
local ENV = "METASYNC_SECTIGO_PASSWORD=sim-password METASYNC_KEYFACTOR_PASSWORD=sim-password"
local NO_SECRETS = { sectigoPassword = json.null, keyfactorPassword = json.null }
local BANNED = '{ "BannedCharacters": [ { "character": " ", "replacementcharacter": "_" } ] }\n'

local function config(over, fields, banned)
  local c = {}
  for k, v in pairs(NO_SECRETS) do c[k] = v end
  for k, v in pairs(over or {}) do c[k] = v end
  local dir = H.config_dir(c, fields, banned)
  local home = dir:match("^(.*)/config$")
  assert(os.execute("chmod -R a+rX " .. q(home)))
  return dir, home
end

-- snapshot(home) -> every path under home, with size and mtime for what is not a directory
-- (the run's own .stdout/.stderr, and so the mtime of the directory holding them, left out)
local function snapshot(home)
  return pread(string.format("find %s -path '*/.std*' -prune -o -type d -printf '%%p d\\n' -o -printf '%%p %%y %%s %%T@\\n' | sort", q(home)))
end

-- bad_run(dir, home, want[, prefix]): the run fails as a bad configuration must
local function bad_run(what, dir, home, want, prefix)
  local before = snapshot(home)
  local banned_before = H.read(dir .. "/bannedcharacters.json")
  H.clear_stats()
  local rc, out, err = H.run(dir, "sctokf", nil, ENV .. " " .. (prefix or ""))
  H.eq(rc, 1, what .. ": exit code (stderr: " .. err .. ")")
  local lines = {}
  for l in err:gmatch("[^\n]+") do lines[#lines + 1] = l end
  H.eq(#lines, 1, what .. ": stderr lines (" .. err .. ")")
  assert(lines[1]:find(want, 1, true), what .. ": " .. lines[1] .. "\n  wanted: " .. want)
  local stats = H.stats()
  H.eq(H.writes(stats), 0, what .. ": write requests")
  H.eq(stats.total, 0, what .. ": requests of any kind")
  H.eq(snapshot(home), before, what .. ": files under the tool's home")
  H.eq(H.read(dir .. "/bannedcharacters.json"), banned_before, what .. ": bannedcharacters.json")
  return lines[1]
end

H.reset(H.world())
local IMPORT_ALL = { importAllCustomFields = "true" }
local NO_FIELDS = { ManualFields = json.array(), CustomFields = json.array() }

-- 1. importAllCustomFields with a bannedcharacters.json that cannot be read: an error, and the
-- file is never rewritten (it used to be taken as empty and overwritten, losing the
-- replacements).
local dir, home = config(IMPORT_ALL, NO_FIELDS)
assert(os.execute("mkdir " .. q(dir .. "/bannedcharacters.json")))
bad_run("bannedcharacters.json a directory", dir, home, dir .. "/bannedcharacters.json: is a directory")
assert(os.execute("test -d " .. q(dir .. "/bannedcharacters.json")), "still a directory")

dir, home = config(IMPORT_ALL, NO_FIELDS, BANNED)
assert(os.execute("chmod 000 " .. q(dir .. "/bannedcharacters.json")))
-- root reads through chmod 000, so as root the run goes as nobody
local prefix = pread("id -u") == "0\n" and "setpriv --reuid=65534 --regid=65534 --clear-groups" or nil
bad_run("bannedcharacters.json unreadable", dir, home, dir .. "/bannedcharacters.json: permission denied", prefix)
assert(os.execute("chmod 644 " .. q(dir .. "/bannedcharacters.json")))
H.eq(H.read(dir .. "/bannedcharacters.json"), BANNED, "bannedcharacters.json content")

-- 2. fields.json missing: required (the run used to sync nothing and exit 0) ...
dir, home = config(nil, nil, BANNED)
os.remove(dir .. "/fields.json")
bad_run("fields.json missing", dir, home,
  dir .. "/fields.json: file not found (it is required unless importAllCustomFields is true)")
-- ... except with importAllCustomFields, where the run goes on with no manual fields
dir = config(IMPORT_ALL, nil, BANNED)
os.remove(dir .. "/fields.json")
local rc, _, err = H.run(dir, "sctokf", nil, ENV)
H.eq(rc, 0, "importAllCustomFields without fields.json: " .. err)
assert(H.kf_field(H.state(), "Cost_Center"), "custom fields imported")

-- 3. a URL with user:password@: refused with a hint, the password never echoed
H.reset(H.world())
local url = H.keyfactor:gsub("^(https?://)", "%1kfuser:hunter2@")
dir, home = config({ keyfactorAPIUrl = url }, nil, BANNED)
local line = bad_run("userinfo URL", dir, home, dir .. "/config.json: key 'keyfactorAPIUrl': expected a URL without a user name or password")
assert(not line:find("hunter2", 1, true) and not line:find("kfuser", 1, true), line)
print("ok")
