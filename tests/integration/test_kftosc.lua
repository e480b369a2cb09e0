-- kftosc: custom fields only, Keyfactor dates read with keyfactorDateFormat and written as
-- yyyy-MM-dd, the complete merged list sent (no other field dropped), comments untouched,
-- absent values never wipe, and a second run makes zero writes.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")

local w = H.world()
table.insert(w.keyfactor.metadataFields, { Id = 3, Name = "RenewalDate", Description = "d", DataType = 3, DisplayOrder = 3 })
table.insert(w.keyfactor.metadataFields, { Id = 4, Name = "BudgetCode", Description = "b", DataType = 2, DisplayOrder = 4 })
table.insert(w.keyfactor.metadataFields, { Id = 5, Name = "SectigoID", Description = "i", DataType = 2, DisplayOrder = 5 })
w.keyfactor.certificates[1].Metadata = { CostCenter = "CC-NEW", RenewalDate = "2025-08-01", SectigoID = "999" }
w.keyfactor.certificates[2].Metadata = { BudgetCode = "7" }
H.reset(w)
local dir = H.config_dir()
local rc, out, err = H.run(dir, "kftosc")
io.stderr:write(out, err)
H.eq(rc, 0, "exit code")
local st = H.state()
local s1 = H.sc_cert(st, 5001)
H.eq(H.cf(s1, "Cost Center"), "CC-NEW", "Cost Center")
H.eq(H.cf(s1, "Renewal Date"), "2025-08-01", "Renewal Date (read back as 8/1/2025 12:00:00 AM)")
H.eq(H.cf(s1, "Environment"), "Production", "Environment kept (merged list)")
H.eq(H.cf(s1, "Budget Code"), "42", "Budget Code kept (absent in Keyfactor)")
H.eq(s1.comments, "keep me", "comments untouched")
local s2 = H.sc_cert(st, 5002)
H.eq(H.cf(s2, "Budget Code"), "7", "Budget Code of 5002")
H.eq(H.cf(s2, "Cost Center"), "CC-2", "Cost Center of 5002 kept")
local stats = H.stats()
H.eq(stats.writes_by_endpoint["sectigo.update"], 2, "Sectigo updates")
H.eq(stats.writes_by_endpoint["keyfactor.metadata"], nil, "no Keyfactor writes")
assert(out:find("updated: +2"), out)

H.clear_stats()
rc, out = H.run(dir, "kftosc")
H.eq(rc, 0, "second run")
H.eq(H.writes(H.stats()), 0, "writes on the second run")

-- keyfactorDateFormat drives the parse: a site whose Keyfactor returns yyyy-MM-dd
H.call("POST", H.sectigo .. "/__sim/settings", { keyfactorDateFormat = "yyyy-MM-dd" })
w.keyfactor.certificates[1].Metadata.RenewalDate = "2026-02-03"
H.reset(w)
H.call("POST", H.sectigo .. "/__sim/settings", { keyfactorDateFormat = "yyyy-MM-dd" })
dir = H.config_dir({ keyfactorDateFormat = "yyyy-MM-dd" })
rc = H.run(dir, "kftosc")
H.eq(rc, 0, "yyyy-MM-dd run")
H.eq(H.cf(H.sc_cert(H.state(), 5001), "Renewal Date"), "2026-02-03", "Renewal Date with yyyy-MM-dd")

-- enableDisabledFieldSync with importAllCustomFields: an INACTIVE Sectigo field with a value in
-- Keyfactor is never written (Sectigo answers -135 and would drop the certificate's other
-- changes), nor is the old value the certificate still holds for it sent back in the merged
-- list; the valid change on the same certificate goes through.
H.call("POST", H.sectigo .. "/__sim/settings", { keyfactorDateFormat = "M/d/yyyy h:mm:ss tt" })
w = H.world()
table.insert(w.sectigo.certificates[1].customFields, { name = "Legacy Code", value = "LC-OLD" })
w.keyfactor.metadataFields = {
  { Id = 1, Name = "Cost_Center", Description = "c", DataType = 1, DisplayOrder = 1 },
  { Id = 2, Name = "Legacy_Code", Description = "l", DataType = 1, DisplayOrder = 2 },
}
w.keyfactor.certificates[1].Metadata = { Cost_Center = "CC-NEW", Legacy_Code = "LC-9" }
w.keyfactor.certificates[2].Metadata = { Legacy_Code = "LC-2" }
H.reset(w)
dir = H.config_dir({ importAllCustomFields = "true", enableDisabledFieldSync = "true" }, nil,
  '{"BannedCharacters":[{"character":" ","replacementcharacter":"_"}]}')
rc, out, err = H.run(dir, "kftosc")
H.eq(rc, 0, "inactive field run exit code: " .. out .. err)
st = H.state()
s1 = H.sc_cert(st, 5001)
H.eq(H.cf(s1, "Cost Center"), "CC-NEW", "Cost Center next to an inactive field")
H.eq(H.cf(s1, "Legacy Code"), "LC-OLD", "inactive Legacy Code untouched")
H.eq(H.cf(s1, "Environment"), "Production", "Environment kept")
H.eq(H.cf(H.sc_cert(st, 5002), "Legacy Code"), nil, "inactive Legacy Code not written on 5002")
stats = H.stats()
H.eq(stats.writes_by_endpoint["sectigo.update"], 1, "one Sectigo update (5001)")
assert(out:find("failed: +0"), out)

-- keyfactorDateFormat matters where the fallback forms would read a date differently: a
-- Keyfactor String field holding "3/7/2025", mapped to Sectigo's DATE field, is 3 July with
-- "d/M/yyyy" and 7 March with the default (month first).
local function day_first_world()
  local dw = H.world()
  dw.keyfactor.metadataFields = { { Id = 1, Name = "RenewalText", Description = "r", DataType = 1, DisplayOrder = 1 } }
  dw.keyfactor.certificates[1].Metadata = { RenewalText = "3/7/2025" }
  dw.keyfactor.certificates[2].Metadata = { RenewalText = "25/12/2025 13:05:00" }
  return dw
end
local df = { ManualFields = {}, CustomFields = { H.field("Renewal Date", "RenewalText", 1) } }
H.reset(day_first_world())
rc, out, err = H.run(H.config_dir({ keyfactorDateFormat = "d/M/yyyy" }, df), "kftosc")
H.eq(rc, 2, "d/M/yyyy run: the date-time value does not fit the format")
st = H.state()
H.eq(H.cf(H.sc_cert(st, 5001), "Renewal Date"), "2025-07-03", "3/7/2025 read as d/M/yyyy")
H.reset(day_first_world())
rc, out, err = H.run(H.config_dir({ keyfactorDateFormat = "d/M/yyyy H:mm:ss" }, df), "kftosc")
st = H.state()
H.eq(H.cf(H.sc_cert(st, 5002), "Renewal Date"), "2025-12-25", "25/12/2025 13:05:00 read as d/M/yyyy H:mm:ss")
H.reset(day_first_world())
rc, out, err = H.run(H.config_dir(nil, df), "kftosc")
H.eq(H.cf(H.sc_cert(H.state(), 5001), "Renewal Date"), "2025-03-07", "3/7/2025 with the default format")
print("ok")
