-- --dry-run prints the plan (certificate, field, old -> new) and the field definitions it would
-- create, and writes nothing to either API.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")

H.reset(H.world())
local dir = H.config_dir()
H.clear_stats()
local rc, out, err = H.run(dir, "sctokf", "--dry-run")
H.eq(rc, 0, "dry-run exit code: " .. err)
H.eq(H.writes(H.stats()), 0, "writes during a dry run")
assert(out:find("create Keyfactor field SectigoID", 1, true), out)
assert(out:find("update Keyfactor field CostCenter: Description", 1, true), out)
assert(out:find("CostCenter: 'old' -> 'CC-1'", 1, true), out)
assert(out:find("SectigoID: (none) -> '5001'", 1, true), out)
assert(out:find("would update: +2"), out)
assert(out:find("dry run", 1, true), out)
-- kftosc too
local w = H.world()
w.keyfactor.certificates[1].Metadata = { CostCenter = "CC-NEW" }
H.reset(w)
H.clear_stats()
rc, out = H.run(dir, "kftosc", "--dry-run")
H.eq(rc, 0, "kftosc dry-run exit code")
H.eq(H.writes(H.stats()), 0, "writes during a kftosc dry run")
assert(out:find("Cost Center: 'CC-1' -> 'CC-NEW'", 1, true), out)
print("ok")
