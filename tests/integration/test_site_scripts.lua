-- Site customisation: a script in <config>/scripts/ replaces the stock one, --scripts DIR wins
-- over it, and the two shipped examples (skip by CN pattern, map an option value) take effect.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")

local examples = H.source_root .. "/scripts/examples/"

-- 1. skip-cn-pattern.lua from <config>/scripts/: www.acme.test stays as it was
local w = H.world()
w.keyfactor.certificates[1].IssuedCN = "staging1.acme.test"
H.reset(w)
local dir = H.config_dir()
assert(os.execute("mkdir -p " .. H.sh_quote(dir .. "/scripts")))
H.write(dir .. "/scripts/sctokf.lua", assert(H.read(examples .. "skip-cn-pattern.lua")))
local rc, out, err = H.run(dir, "sctokf")
H.eq(rc, 0, "skip example exit code: " .. err)
local st = H.state()
H.eq(H.kf_cert(st, 1).Metadata.CostCenter, "old", "skipped certificate untouched")
H.eq(H.kf_cert(st, 2).Metadata.CostCenter, "CC-2", "other certificate synced")
assert(out:find("skipped by policy: +1"), out)

-- 2. map-option-values.lua through --scripts DIR (wins over <config>/scripts/)
w = H.world()
w.keyfactor.metadataFields[2].Options = "PROD,STAGE,DEV"
w.keyfactor.certificates[2].Metadata = {}
H.reset(w)
local fields = H.fields()
fields.CustomFields[2].keyfactorOptions = { "PROD", "STAGE", "DEV" }
dir = H.config_dir(nil, fields)
local sdir = H.tmpdir()
H.write(sdir .. "/sctokf.lua", assert(H.read(examples .. "map-option-values.lua")))
assert(os.execute("mkdir -p " .. H.sh_quote(dir .. "/scripts")))
H.write(dir .. "/scripts/sctokf.lua", 'error("the --scripts DIR copy should have been used")')
rc, out, err = H.run(dir, "sctokf", "--scripts " .. H.sh_quote(sdir))
H.eq(rc, 0, "map example exit code: " .. err)
H.eq(H.kf_cert(H.state(), 1).Metadata.Environment, "PROD", "Production mapped to PROD")
print("ok")
