-- The REPL helper tests' world: the end-to-end tests' world (tests/integration/helper.lua)
-- loaded into the simulator, with values that need CSV quoting (a comma, quotes, a line break)
-- and Keyfactor values that equal Sectigo's by meaning but not by text; and a config directory
-- pointing at it.
-- usage: metasync run sim_world.lua METASYNC CONFIG_DIR   (under tests/with-sim.sh)
local json = require("metasync.json")
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local H = dofile(here .. "/../integration/helper.lua")
local dir = assert(arg[2], "usage: sim_world.lua METASYNC CONFIG_DIR")

local w = H.world()
local sc, kf = w.sectigo.certificates, w.keyfactor
local function custom(cert, name, value)
  for _, cf in ipairs(cert.customFields) do
    if cf.name == name then cf.value = value return end
  end
  table.insert(cert.customFields, { name = name, value = value })
end
custom(sc[1], "Notes", 'line one\nline two, with "quotes"')
custom(sc[2], "Cost Center", 'CC-2, "the big one"')
table.insert(kf.metadataFields, { Id = 3, Name = "RenewalDate", Description = "", DataType = 3, DisplayOrder = 3 })
table.insert(kf.metadataFields, { Id = 4, Name = "BudgetCode", Description = "", DataType = 2, DisplayOrder = 4 })
-- Keyfactor reads dates back as 7/23/2025 12:00:00 AM: in step with Sectigo's 2025-07-23
kf.certificates[1].Metadata = { CostCenter = "old", RenewalDate = "2025-07-23", BudgetCode = "42" }
H.reset(w)

local c = { sectigoLogin = "sim-admin", sectigoPassword = "sim-password", sectigoCustomerUri = "sim-customer",
  sectigoAPIUrl = H.sectigo, keyfactorAPIUrl = H.keyfactor, keyfactorLogin = "DOMAIN\\sim-admin",
  keyfactorPassword = "sim-password", issuerDNLookupTerm = "Sectigo", sectigoPageSize = 2, keyfactorPageSize = 2 }
os.execute("mkdir -p " .. H.sh_quote(dir))
H.write(dir .. "/config.json", json.encode({ Config = c }, { pretty = true }))
os.execute("chmod 600 " .. H.sh_quote(dir .. "/config.json"))
H.write(dir .. "/fields.json", json.encode(H.fields(), { pretty = true }))
