-- metasync sync: two-way against the baseline. An edit on either side reaches the other, both
-- sides edited is a conflict (exit 3, neither written, on stdout and in the report),
-- conflictPolicy settles it, clears propagate, an inactive Sectigo field is never cleared,
-- an unchanged world makes zero writes, and sctokf records the baseline so a first sync after
-- it raises no false conflicts. report quotes per RFC 4180; revert undoes a run except where
-- a certificate was edited since.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")
local json = require("metasync.json")
local db = require("metasync.db")

local w = H.world()
-- The notes field carries what a CSV must quote.
table.insert(w.keyfactor.metadataFields, { Id = 9, Name = "Notes", Description = "n", DataType = 6, DisplayOrder = 9 })
w.sectigo.certificates[1].customFields[#w.sectigo.certificates[1].customFields + 1] =
  { name = "Notes", value = 'rack 4, row "B"\nsecond line' }
w.keyfactor.certificates[1].Metadata = { CostCenter = "old" }
H.reset(w)
local fields = H.fields()
fields.CustomFields[#fields.CustomFields + 1] = H.field("Notes", "Notes", 6)
local dir = H.config_dir(nil, fields)
local home = dir:match("^(.*)/config$")
local statefile = home .. "/state/metasync.db"

local function kf(id, name) return (H.kf_cert(H.state(), id).Metadata or {})[name] end
local function sc(id, name) return H.cf(H.sc_cert(H.state(), id), name) end
local function counts()
  local s = H.stats().writes_by_endpoint
  return s["keyfactor.metadata"] or 0, s["sectigo.update"] or 0
end

-- 1. sctokf brings Keyfactor in line and records the baseline; a sync right after it raises
--    no false conflicts and copies only what sctokf never moves (Environment "Staging" is in
--    Keyfactor alone); then an unchanged world makes zero writes.
local rc, out, err = H.run(dir, "sctokf")
H.eq(rc, 0, "sctokf exit: " .. out .. err)
local f = io.open(statefile, "rb")
assert(f, "the state file is created under the tool's home, not the working directory")
f:close()
H.eq(kf(1, "CostCenter"), "CC-1", "sctokf wrote CostCenter")
H.clear_stats()
rc, out, err = H.run(dir, "sync")
H.eq(rc, 0, "first sync after sctokf: " .. out .. err)
assert(out:find("conflicts: +0"), out)
local kw, sw = counts()
H.eq(kw, 0, "Keyfactor writes of the first sync")
H.eq(sw, 1, "Sectigo writes of the first sync")
H.eq(sc(5002, "Environment"), "Staging", "a value on one side only is copied")
H.clear_stats()
rc, out, err = H.run(dir, "sync")
H.eq(rc, 0, "second sync: " .. out .. err)
kw, sw = counts()
H.eq(kw + sw, 0, "an unchanged world makes zero writes")
assert(out:find("run id: +%x+"), "the summary prints the run id: " .. out)

-- 2. A Keyfactor edit is written to Sectigo, and Keyfactor is left alone.
H.kf_edit(1, { CostCenter = "CC-999" })
H.clear_stats()
rc, out = H.run(dir, "sync")
H.eq(rc, 0, "sync after a Keyfactor edit: " .. out)
H.eq(sc(5001, "Cost Center"), "CC-999", "Keyfactor's edit reached Sectigo")
H.eq(sc(5001, "Environment"), "Production", "the other Sectigo fields kept")
kw, sw = counts()
H.eq(kw, 0, "Keyfactor writes after a Keyfactor edit")
H.eq(sw, 1, "Sectigo writes after a Keyfactor edit")

-- 3. A Sectigo edit reaches Keyfactor.
H.sc_edit(5002, { { name = "Cost Center", value = "CC-2b" } })
H.clear_stats()
rc, out = H.run(dir, "sync")
H.eq(rc, 0, "sync after a Sectigo edit: " .. out)
H.eq(kf(2, "CostCenter"), "CC-2b", "Sectigo's edit reached Keyfactor")
kw, sw = counts()
H.eq(kw, 1, "Keyfactor writes after a Sectigo edit")
H.eq(sw, 0, "Sectigo writes after a Sectigo edit")

-- 4. revert last: puts CostCenter of certificate 2 back; an edit after the run is left alone.
-- First as a dry run: it says what it would write, and writes nothing.
H.clear_stats()
rc, out = H.run(dir, "revert last --dry-run")
H.eq(rc, 0, "revert --dry-run: " .. out)
assert(out:find("would revert Keyfactor id 2", 1, true), out)
kw, sw = counts()
H.eq(kw + sw, 0, "revert --dry-run writes nothing")
H.eq(kf(2, "CostCenter"), "CC-2b", "still the run's value")
rc, out = H.run(dir, "revert last")
H.eq(rc, 0, "revert last: " .. out)
H.eq(kf(2, "CostCenter"), "CC-2", "revert restored the old Keyfactor value")
assert(out:find("reverted Keyfactor id 2"), out)
-- the revert is a journaled run of its own
local _, rtext = H.run(dir, "report last")
assert(rtext:find("revert of run", 1, true) and rtext:find(",revert,sctokf,", 1, true), rtext)
-- Sectigo still says CC-2b; the baseline went back to CC-2, so a sync copies it again.
H.clear_stats()
rc, out = H.run(dir, "sync")
H.eq(rc, 0, "sync after the revert")
H.eq(kf(2, "CostCenter"), "CC-2b", "the Sectigo edit is still Sectigo's")
-- Now revert that run, with certificate 2 edited in Keyfactor after it: left alone, exit 3.
H.kf_edit(2, { CostCenter = "CC-by-hand" })
rc, out = H.run(dir, "revert last")
H.eq(rc, 3, "revert with a certificate edited since: " .. out)
assert(out:find("left alone: Keyfactor id 2"), out)
H.eq(kf(2, "CostCenter"), "CC-by-hand", "an edit made after the run is never reverted")
H.sc_edit(5002, { { name = "Cost Center", value = "CC-by-hand" } })

-- 5. Both sides edited: exit 3, neither overwritten, on stdout and in the report.
H.kf_edit(1, { CostCenter = "CC-KF" })
H.sc_edit(5001, { { name = "Cost Center", value = "CC-SC" } })
H.clear_stats()
rc, out = H.run(dir, "sync")
H.eq(rc, 3, "sync with a conflict: " .. out)
kw, sw = counts()
H.eq(kw + sw, 0, "a conflict writes neither side")
H.eq(kf(1, "CostCenter"), "CC-KF", "Keyfactor kept")
H.eq(sc(5001, "Cost Center"), "CC-SC", "Sectigo kept")
assert(out:find("conflicts: +1"), out)
assert(out:find("CostCenter: Sectigo 'CC%-SC', Keyfactor 'CC%-KF'"), out)
local rrc, csvtext = H.run(dir, "report")
H.eq(rrc, 0, "report")
local rows = H.parse_csv(csvtext)
local header = rows[1]
local col = {}
for i, name in ipairs(header) do col[name] = i end
local found = false
for i = 2, #rows do
  if rows[i][col.result] == "conflict" and rows[i][col.field] == "CostCenter" then
    found = true
    assert(rows[i][col.detail]:find("CC-SC", 1, true) and rows[i][col.detail]:find("CC-KF", 1, true), rows[i][col.detail])
  end
end
assert(found, "the conflict is in the report:\n" .. csvtext)
-- The dry run shows it too, and writes nothing: the state file included.
local h = assert(db.open(statefile, { readonly = true }))
local before = h:row("SELECT count(*) AS n FROM journal").n
local bsum = h:row("SELECT count(*) AS n, group_concat(serial || field || value) AS s FROM baseline")
h:close()
rc, out = H.run(dir, "sync", "--dry-run")
H.eq(rc, 3, "dry run with a conflict")
assert(out:find("CostCenter: Sectigo 'CC%-SC'"), out)
h = assert(db.open(statefile, { readonly = true }))
H.eq(h:row("SELECT count(*) AS n FROM journal").n, before, "a dry run adds nothing to the journal")
local bsum2 = h:row("SELECT count(*) AS n, group_concat(serial || field || value) AS s FROM baseline")
H.eq(bsum2.s, bsum.s, "a dry run leaves the baseline as it was")
h:close()

-- 5b. A site script overrides the stock sync policy's resolve hook, found in
--     <config dir>/scripts/ as for the other two commands: Sectigo wins CostCenter.
os.execute("mkdir -p " .. H.sh_quote(dir .. "/scripts"))
H.write(dir .. "/scripts/sync.lua", [[
local policy = require("metasync.stock").load("sync")
function policy.resolve(conflict, ctx)
  if conflict.field == "CostCenter" then return "sectigo" end
end
return policy:run()
]])
rc, out = H.run(dir, "sync --dry-run")
H.eq(rc, 0, "the site's resolve settles the conflict: " .. out)
assert(out:find("CostCenter: 'CC%-KF' %-> 'CC%-SC'"), out)
os.remove(dir .. "/scripts/sync.lua")

-- 6. conflictPolicy keyfactor: Keyfactor's value ends up on both sides.
local function set_config(over)
  local c = json.decode(H.read(dir .. "/config.json"))
  for k, v in pairs(over) do c.Config[k] = v end
  H.write(dir .. "/config.json", json.encode(c))
end
set_config { conflictPolicy = "keyfactor" }
rc, out = H.run(dir, "sync")
H.eq(rc, 0, "conflictPolicy keyfactor: " .. out)
H.eq(sc(5001, "Cost Center"), "CC-KF", "Keyfactor's value won in Sectigo")
H.eq(kf(1, "CostCenter"), "CC-KF", "and stays in Keyfactor")
set_config { conflictPolicy = "report" }

-- 7. A clear on one side clears the other, both ways.
H.sc_edit(5001, { { name = "Cost Center", value = "" } })
rc, out = H.run(dir, "sync")
H.eq(rc, 0, "sync after a Sectigo clear: " .. out)
H.eq(kf(1, "CostCenter"), nil, "Sectigo's clear reached Keyfactor")
H.kf_edit(1, { RenewalDate = "" })
rc, out = H.run(dir, "sync")
H.eq(rc, 0, "sync after a Keyfactor clear: " .. out)
H.eq(sc(5001, "Renewal Date"), nil, "Keyfactor's clear reached Sectigo")
H.eq(sc(5001, "Environment"), "Production", "the other fields kept")
H.clear_stats()
rc = H.run(dir, "sync")
H.eq(rc, 0, "settled")
kw, sw = counts()
H.eq(kw + sw, 0, "nothing left to write")

-- 8. report: RFC 4180 quoting of commas, quotes and newlines, read back by a parser.
rc, csvtext = H.run(dir, "report " .. (function()
  -- the sctokf run of step 1 wrote Notes: the first run in the store
  local hh = assert(db.open(statefile, { readonly = true }))
  local r = hh:row("SELECT id FROM runs ORDER BY seq LIMIT 1")
  hh:close()
  return r.id
end)())
H.eq(rc, 0, "report of the first run")
rows = H.parse_csv(csvtext)
found = false
for i = 2, #rows do
  if rows[i][col.field] == "Notes" then
    H.eq(rows[i][col.new], 'rack 4, row "B"\nsecond line', "Notes read back through CSV")
    H.eq(rows[i][col.direction], "sctokf", "direction")
    H.eq(#rows[i], #header, "every row has every column")
    found = true
  end
end
assert(found, "Notes in the report:\n" .. csvtext)
rc, out = H.run(dir, "report last --format jsonl")
H.eq(rc, 0, "jsonl report")
for line in out:gmatch("[^\n]+") do assert(json.decode(line).run, line) end

-- 9. An inactive Sectigo field is never cleared anywhere. Legacy Code agrees on both sides
--    (baseline LC-1); then Sectigo deactivates the field, which hides its values.
w = H.state()
w.sectigo.customFields[7].state = "ACTIVE"
H.reset(w)
H.sc_edit(5001, { { name = "Legacy Code", value = "LC-1" } })
table.insert(fields.CustomFields, H.field("Legacy Code", "LegacyCode", 1))
H.write(dir .. "/fields.json", json.encode(fields))
rc, out = H.run(dir, "sync")
H.eq(rc, 0, "sync with Legacy Code active: " .. out)
H.eq(kf(1, "LegacyCode"), "LC-1", "copied to Keyfactor while active")
w = H.state()
w.sectigo.customFields[7].state = "INACTIVE"
H.reset(w)
H.clear_stats()
rc, out = H.run(dir, "sync")
H.eq(rc, 0, "sync with Legacy Code inactive: " .. out)
H.eq(kf(1, "LegacyCode"), "LC-1", "an inactive Sectigo field never clears Keyfactor")
w.sectigo.customFields[7].state = "ACTIVE"
H.reset(w)
H.eq(sc(5001, "Legacy Code"), "LC-1", "nor its own stored value")
kw, sw = counts()
H.eq(kw + sw, 0, "writes with an inactive field")

-- The store is sound.
h = assert(db.open(statefile, { readonly = true }))
H.eq(h:row("PRAGMA integrity_check").integrity_check, "ok", "integrity_check")
h:close()
print("ok")
