-- importAllCustomFields: type mapping, inactive fields skipped unless enableDisabledFieldSync,
-- and the banned-characters flow (first run lists them with null, names the fields, exits 1
-- and writes nothing; once filled in, the rewritten names are created and synced).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")
local json = require("metasync.json")

H.reset(H.world())
local dir = H.config_dir({ importAllCustomFields = "true" }, { ManualFields = {}, CustomFields = {} })
H.clear_stats()
local rc, out, err, logtext = H.run(dir, "sctokf")
H.eq(rc, 1, "first run exit code")
H.eq(H.writes(H.stats()), 0, "writes to either API on the first run")
local banned = assert(json.decode(H.read(dir .. "/bannedcharacters.json")))
local space
for _, e in ipairs(banned.BannedCharacters) do if e.character == " " then space = e end end
assert(space and space.replacementcharacter == "null", "space listed with a null replacement")
assert(logtext:find("Cost Center", 1, true) and logtext:find("Renewal Date", 1, true), "affected fields named in the log")
assert(err:find("bannedcharacters.json"), err)

-- fill in the replacement (keeping the tool's form) and run again
space.replacementcharacter = "_"
H.write(dir .. "/bannedcharacters.json", json.encode(banned))
rc, out, err = H.run(dir, "sctokf")
H.eq(rc, 0, "second run exit code: " .. err)
local st = H.state()
local want = { Cost_Center = 1, Notes = 6, Owner_Email = 7, Budget_Code = 2, Environment = 5, Renewal_Date = 3 }
for name, dt in pairs(want) do
  local f = H.kf_field(st, name)
  assert(f, "field " .. name .. " created")
  H.eq(f.DataType, dt, name .. " DataType")
end
assert(H.kf_field(st, "Environment").Options:find("Staging"), "options carried over")
H.eq(H.kf_field(st, "Legacy_Code"), nil, "inactive field skipped")
H.eq(H.kf_cert(st, 1).Metadata.Cost_Center, "CC-1", "value synced under the rewritten name")
-- the replacement was kept when the file was written back
banned = assert(json.decode(H.read(dir .. "/bannedcharacters.json")))
H.eq(banned.BannedCharacters[1].replacementcharacter, "_", "replacement kept")

-- enableDisabledFieldSync brings the inactive field in
dir = H.config_dir({ importAllCustomFields = true, enableDisabledFieldSync = "true" }, { ManualFields = {}, CustomFields = {} },
  '[{"character": " ", "replacementCharacter": "_"}]')
rc = H.run(dir, "sctokf")
H.eq(rc, 0, "enableDisabledFieldSync run")
assert(H.kf_field(H.state(), "Legacy_Code"), "inactive field created with enableDisabledFieldSync")
print("ok")
