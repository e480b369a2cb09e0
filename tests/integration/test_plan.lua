-- Saved plans: `--dry-run --plan-out FILE` prints one line per change (values escaped, dates in
-- canonical form, totals per field) and saves the plan; `metasync apply FILE` writes exactly
-- those changes (the field definitions first), skips and lists what was edited since (exit 2),
-- needs nothing where the target already holds the new value, journals itself as a run of its
-- own and records the baseline; a plan is refused under another configuration, or when a line
-- is damaged, before any write; a dry run past the change limit or one that failed saves no
-- plan. sctokf, kftosc and sync plans.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")
local json = require("metasync.json")
local db = require("metasync.db")

local w = H.world()
table.insert(w.keyfactor.metadataFields, { Id = 9, Name = "Notes", Description = "n", DataType = 6, DisplayOrder = 9 })
table.insert(w.keyfactor.metadataFields, { Id = 10, Name = "RenewalDate", Description = "RenewalDate", DataType = 3 })
local c1 = w.sectigo.certificates[1]
c1.customFields[3].value = "2027-10-13" -- Renewal Date
c1.customFields[#c1.customFields + 1] = { name = "Notes", value = "rack 4\nrow B\tend \\ x" }
-- Keyfactor reads the date back as "3/18/2027 12:00:00 AM"
w.keyfactor.certificates[1].Metadata = { CostCenter = "old", RenewalDate = "2027-03-18" }
H.reset(w)
local fields = H.fields()
fields.CustomFields[#fields.CustomFields + 1] = H.field("Notes", "Notes", 6)
local dir = H.config_dir(nil, fields)
local plan = dir .. "/plan.json"
local statefile = dir:match("^(.*)/config$") .. "/state/metasync.db"

local function writes(ep) return H.stats().writes_by_endpoint[ep] or 0 end
local function kf(id, name) return (H.kf_cert(H.state(), id).Metadata or {})[name] end
local function sc(id, name) return H.cf(H.sc_cert(H.state(), id), name) end
local function exists(p) local f = io.open(p, "r"); if f then f:close() end; return f ~= nil end
-- entries(path) -> header, certificate entries, definition entries of a plan file
local function entries(p)
  local header, certs, defs = nil, {}, {}
  for line in io.lines(p) do
    local e = json.decode(line)
    if not header then header = e elseif e.definition then defs[#defs + 1] = e else certs[#certs + 1] = e end
  end
  return header, certs, defs
end
local function change_lines(out)
  local n = 0
  for line in out:gmatch("[^\n]+") do if line:find("^%u%l+ %x+ %(") and line:find(" %-> ") then n = n + 1 end end
  return n
end

-------------------------------------------------------------------------------------------
-- 1. The dry run's text and the saved plan.
H.clear_stats()
local rc, out, err = H.run(dir, "sctokf", "--dry-run --plan-out " .. H.sh_quote(plan))
H.eq(rc, 0, "dry run with --plan-out: " .. out .. err)
H.eq(H.writes(H.stats()), 0, "a dry run writes nothing")
assert(exists(plan) and not exists(plan .. ".tmp"), "the plan is renamed into place")
-- one line per change, in the first line's form, a multi-line value escaped, dates canonical
assert(out:find("\nKeyfactor A112233 (Keyfactor id 1, www.acme.test): CostCenter: 'old' -> 'CC-1'\n", 1, true), out)
assert(out:find("Keyfactor A112233 (Keyfactor id 1, www.acme.test): Notes: (none) -> 'rack 4\\nrow B\\tend \\\\ x'\n", 1, true), out)
assert(out:find("Keyfactor A112233 (Keyfactor id 1, www.acme.test): RenewalDate: '2027-03-18' -> '2027-10-13'\n", 1, true), out)
assert(out:find("Keyfactor B445566 (Keyfactor id 2, api.acme.test): SectigoID: (none) -> '5002'\n", 1, true), out)
-- totals per field at the end, before the summary
local totals = out:match("changes per field:\n(.-)plan saved")
assert(totals and totals:find("  CostCenter: 2 changes\n", 1, true) and totals:find("  Notes: 1 change\n", 1, true), out)
assert(out:find("plan saved to " .. plan .. ": 14 change(s) on 2 certificate(s), 7 field definition(s)", 1, true), out)
assert(out:find("changes per field:", 1, true) < out:find("metasync sctokf (dry run", 1, true), "totals before the summary")
local header, certs, defs = entries(plan)
H.eq(header.metasync_plan, 1, "plan format")
H.eq(header.command, "sctokf", "the command is recorded")
assert(header.config_sha256:match("^%x+$") and #header.config_sha256 == 64, "the config hash is recorded")
assert(header.created:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$"), "the time is recorded")
local _, vout = H.run(dir, "--version")
assert(vout:find(header.version, 1, true), "the version is recorded: " .. tostring(header.version))
H.eq(#certs, 2, "one object per target certificate")
H.eq(#defs, 7, "the field definitions a run writes first (5 created, 2 updated)")
local nchanges = 0
for _, e in ipairs(certs) do nchanges = nchanges + #e.changes end
H.eq(change_lines(out), nchanges, "one line per change")
for _, c in ipairs(certs[1].changes) do
  if c.field == "RenewalDate" then H.eq(c.old, "2027-03-18", "the old value in canonical form") end
end

-- --plan-out alone is a dry run too: a plan is never made by writing
local plan2 = dir .. "/plan2.json"
H.clear_stats()
rc, out = H.run(dir, "sctokf", "--plan-out " .. H.sh_quote(plan2))
H.eq(rc, 0, "--plan-out without --dry-run: " .. out)
H.eq(H.writes(H.stats()), 0, "--plan-out without --dry-run writes nothing")
assert(exists(plan2), "and saves the plan")

-------------------------------------------------------------------------------------------
-- 2. Refused under another configuration: one line, exit 1, not a single request.
local cfgtext = H.read(dir .. "/config.json")
local c = json.decode(cfgtext)
c.Config.keyfactorPageSize = 3
H.write(dir .. "/config.json", json.encode(c))
H.clear_stats()
rc, out, err = H.run(dir, "apply " .. H.sh_quote(plan))
H.eq(rc, 1, "apply under another config: " .. out .. err)
assert(err:find("another configuration", 1, true), err)
H.eq(select(2, err:gsub("\n", "")), 1, "one line says why: " .. err)
H.eq(H.stats().total, 0, "requests made by a refused plan")
H.write(dir .. "/config.json", cfgtext)

-- A damaged plan writes nothing: every line is checked first.
local damaged = dir .. "/damaged.json"
H.write(damaged, H.read(plan) .. '{"target":"keyfactor","direction":"sctokf","serial":"FF","keyfactor_id":"x"}\n')
H.clear_stats()
rc, out, err = H.run(dir, "apply " .. H.sh_quote(damaged))
H.eq(rc, 1, "a damaged plan: " .. out .. err)
assert(err:find("line 11: no id of the target certificate", 1, true), err)
H.eq(H.writes(H.stats()), 0, "writes of a damaged plan")
H.write(damaged, '{"run":"abc"}\n')
rc, out, err = H.run(dir, "apply " .. H.sh_quote(damaged))
H.eq(rc, 1, "not a plan: " .. err)
assert(err:find("is not a metasync plan", 1, true), err)

-------------------------------------------------------------------------------------------
-- 3. An edit between plan and apply: that change is stale, listed and skipped (exit 2); the
--    rest of the plan is written exactly.
H.kf_edit(2, { CostCenter = "by-hand" })
H.clear_stats()
rc, out = H.run(dir, "apply " .. H.sh_quote(plan), "--dry-run")
H.eq(rc, 2, "apply --dry-run with a stale entry: " .. out)
H.eq(H.writes(H.stats()), 0, "apply --dry-run writes nothing")
assert(out:find("would write Keyfactor A112233 (Keyfactor id 1, www.acme.test): CostCenter: 'old' -> 'CC-1'", 1, true), out)
H.call("DELETE", H.sectigo .. "/__sim/requests")
H.clear_stats()
rc, out = H.run(dir, "apply " .. H.sh_quote(plan))
H.eq(rc, 2, "apply with a stale entry: " .. out)
assert(out:find("stale (skipped): Keyfactor B445566 (Keyfactor id 2, api.acme.test): CostCenter: now 'by-hand', the plan expected (none) (-> 'CC-2')", 1, true), out)
assert(out:find("13 change(s) written on 2 certificate(s), 1 stale", 1, true), out)
H.eq(writes("keyfactor.metadata"), 2, "one metadata write per target certificate")
H.eq(writes("keyfactor.metadatafields"), 7, "the planned field definitions")
H.eq(H.writes(H.stats()), 9, "no other write")
-- what was sent is the plan, less the stale change: field by field, value by value
local want = {}
for _, e in ipairs(certs) do
  want[e.keyfactor_id] = {}
  for _, ch in ipairs(e.changes) do
    if not (e.keyfactor_id == 2 and ch.key == "CostCenter") then want[e.keyfactor_id][ch.key] = ch.new end
  end
end
for _, r in ipairs(H.call("GET", H.sectigo .. "/__sim/requests?endpoint=keyfactor.metadata")) do
  local body = json.decode(r.body)
  local exp = assert(want[body.Id], "a write to a certificate outside the plan: " .. r.body)
  for k, v in pairs(body.Metadata) do H.eq(v, exp[k], "sent " .. k .. " of " .. body.Id) end
  for k, v in pairs(exp) do H.eq(body.Metadata[k], v, "planned " .. k .. " of " .. body.Id) end
  want[body.Id] = nil
end
assert(next(want) == nil, "every planned certificate was written")
H.eq(kf(2, "CostCenter"), "by-hand", "the edit made since the plan is kept")
H.eq(kf(1, "Notes"), "rack 4\nrow B\tend \\ x", "the multi-line value as planned")
-- a journaled run of its own, with the stale change; and the baseline, as the run would record it
local _, report = H.run(dir, "report last")
local rows = H.parse_csv(report)
local ok_rows, stale_rows = 0, 0
for i = 2, #rows do
  H.eq(rows[i][3], "apply", "the run's command")
  if rows[i][11] == "ok" then ok_rows = ok_rows + 1 elseif rows[i][11] == "stale" then stale_rows = stale_rows + 1 end
end
H.eq(ok_rows, 13, "journaled writes")
H.eq(stale_rows, 1, "journaled stale change")
local h = assert(db.open(statefile, { readonly = true }))
H.eq(h:row("SELECT value FROM baseline WHERE serial = 'A112233' AND field = 'CostCenter'").value, "CC-1", "baseline recorded")
H.eq(h:row("SELECT command FROM runs ORDER BY seq DESC LIMIT 1").command, "apply", "the run row")
h:close()

-- Applied again: everything is already in place, nothing is written; the stale change is still stale.
H.clear_stats()
rc, out, err = H.run(dir, "apply " .. H.sh_quote(plan))
H.eq(rc, 2, "apply again: " .. out)
H.eq(H.writes(H.stats()), 0, "a plan already applied writes nothing")
assert(out:find("0 change(s) written on 0 certificate(s), 1 stale (changed since the plan: skipped), 13 already in place", 1, true), (out:gsub("\n", " | ")))

-------------------------------------------------------------------------------------------
-- 4. kftosc: the merged custom field list from fresh details keeps every other field.
H.kf_edit(1, { CostCenter = "CC-KF" })
rc, out = H.run(dir, "kftosc", "--dry-run --plan-out " .. H.sh_quote(plan))
H.eq(rc, 0, "kftosc plan: " .. out)
assert(out:find("Sectigo A112233 (Sectigo sslId 5001, www.acme.test): Cost Center: 'CC-1' -> 'CC-KF'\n", 1, true), out)
H.clear_stats()
rc, out = H.run(dir, "apply " .. H.sh_quote(plan))
H.eq(rc, 0, "kftosc apply: " .. out)
H.eq(writes("sectigo.update"), 2, "Sectigo writes")
H.eq(H.writes(H.stats()), 2, "no other write")
H.eq(sc(5001, "Cost Center"), "CC-KF", "written to Sectigo")
H.eq(sc(5002, "Cost Center"), "by-hand", "written to Sectigo")
H.eq(sc(5001, "Notes"), "rack 4\nrow B\tend \\ x", "the other fields kept")
H.eq(sc(5001, "Environment"), "Production", "the other fields kept")

-------------------------------------------------------------------------------------------
-- 5. sync: both sides in one plan; totals name the target.
H.sc_edit(5001, { { name = "Cost Center", value = "CC-SC" } })
H.kf_edit(2, { CostCenter = "KF-2" })
rc, out = H.run(dir, "sync", "--dry-run --plan-out " .. H.sh_quote(plan))
H.eq(rc, 0, "sync plan: " .. out)
assert(out:find("Keyfactor A112233 (Keyfactor id 1, www.acme.test): CostCenter: 'CC-KF' -> 'CC-SC'\n", 1, true), out)
assert(out:find("Sectigo B445566 (Sectigo sslId 5002, api.acme.test): Cost Center: 'by-hand' -> 'KF-2'\n", 1, true), out)
assert(out:find("  Keyfactor CostCenter: 1 change\n", 1, true) and out:find("  Sectigo Cost Center: 1 change\n", 1, true), out)
H.clear_stats()
rc, out = H.run(dir, "apply " .. H.sh_quote(plan))
H.eq(rc, 0, "sync apply: " .. out)
H.eq(writes("keyfactor.metadata"), 1, "Keyfactor writes of the sync plan")
H.eq(writes("sectigo.update"), 1, "Sectigo writes of the sync plan")
H.eq(kf(1, "CostCenter"), "CC-SC", "Sectigo's edit reached Keyfactor")
H.eq(sc(5002, "Cost Center"), "KF-2", "Keyfactor's edit reached Sectigo")
H.clear_stats()
rc, out = H.run(dir, "sync")
H.eq(rc, 0, "sync after the apply: " .. out)
H.eq(H.writes(H.stats()), 0, "nothing left to write")

-------------------------------------------------------------------------------------------
-- 6. No plan is saved from a dry run a real run would not complete: past the change limit,
--    or failed part-way (a Keyfactor page fails), and no FILE.tmp is left behind.
local plan3 = dir .. "/plan3.json"
H.sc_edit(5001, { { name = "Cost Center", value = "CC-L" } })
rc, out = H.run(dir, "sctokf", "--dry-run --max-changes 0 --plan-out " .. H.sh_quote(plan3))
H.eq(rc, 4, "a dry run past the change limit: " .. out)
assert(out:find("plan not saved to " .. plan3 .. ": the change limit", 1, true), out)
assert(not exists(plan3) and not exists(plan3 .. ".tmp"), "no plan past the change limit")
H.faults { scripts = { { endpoint = "keyfactor.certificates", method = "GET",
  responses = { { pass = true }, { status = 400, body = '{"ErrorCode":"0xA0110001","Message":"Simulated refusal"}' } } } } }
rc, out, err = H.run(dir, "sctokf", "--dry-run --plan-out " .. H.sh_quote(plan3))
H.eq(rc, 1, "a dry run whose listing fails: " .. out .. err)
assert(not exists(plan3) and not exists(plan3 .. ".tmp"), "no plan from a failed dry run")
H.call("DELETE", H.sectigo .. "/__sim/faults")

-------------------------------------------------------------------------------------------
-- 7. Lines a dry run rarely makes, written into a plan by hand under a real header: two
--    entries for one Sectigo certificate (two Keyfactor certificates with its serial) are
--    written one after the other, so neither undoes the other's field; a definition changed
--    since the plan is stale; a definition Keyfactor refuses fails its values, and only those.
rc, out = H.run(dir, "kftosc", "--dry-run --plan-out " .. H.sh_quote(plan))
H.eq(rc, 0, "a kftosc plan: " .. out)
local head = H.read(plan):match("^[^\n]*\n")
local function sc_entry(field, key, kind, old, new)
  return json.encode { target = "sectigo", direction = "kftosc", serial = "B445566", keyfactor_id = 2, sectigo_id = 5002,
    changes = { { field = field, key = key, kind = kind, old = old, new = new, baseline = new } } } .. "\n"
end
local cc_def = H.kf_field(H.state(), "CostCenter")
H.write(plan, head
  .. json.encode { definition = "update", name = "CostCenter", def = { Id = cc_def.Id, Name = "CostCenter", DataType = 1,
    Description = "planned" }, old = { Id = cc_def.Id, Name = "CostCenter", DataType = 1, Description = "not what it is" } } .. "\n"
  .. json.encode { definition = "create", name = "Refused", def = { Name = "Refused", DataType = 1, Description = "r" } } .. "\n"
  .. sc_entry("Cost Center", "CostCenter", "text", "KF-2", "X1")
  .. sc_entry("Budget Code", "BudgetCode", "number", json.null, "77")
  .. json.encode { target = "keyfactor", direction = "sctokf", serial = "B445566", keyfactor_id = 2, sectigo_id = 5002,
    changes = { { field = "Refused", key = "Refused", kind = "text", old = json.null, new = "r1", baseline = "r1" },
      { field = "SectigoStatus", key = "SectigoStatus", kind = "text", old = "Issued", new = "Checked", baseline = "Checked" } } } .. "\n")
H.faults { scripts = { { endpoint = "keyfactor.metadatafields", method = "POST",
  responses = { { status = 400, body = '{"ErrorCode":"0xA0110007","Message":"Simulated field refusal"}' } } } } }
H.clear_stats()
rc, out = H.run(dir, "apply " .. H.sh_quote(plan))
H.call("DELETE", H.sectigo .. "/__sim/faults")
H.eq(rc, 2, "a hand-written plan: " .. out)
H.eq(sc(5002, "Cost Center"), "X1", "the first entry for the certificate")
H.eq(sc(5002, "Budget Code"), "77", "the second entry for the same certificate")
assert(out:find("stale (skipped): Keyfactor field CostCenter: its definition changed since the plan", 1, true), out)
H.eq(H.kf_field(H.state(), "CostCenter").Description, cc_def.Description, "a stale definition is left alone")
H.eq(writes("keyfactor.metadatafields"), 0, "definition writes")
H.eq(kf(2, "SectigoStatus"), "Checked", "the certificate's other field is written")
H.eq(kf(2, "Refused"), nil, "a field whose definition was refused")
assert(out:find("3 change(s) written on 3 certificate(s), 1 stale (changed since the plan: skipped), 0 already in place, 2 failed", 1, true), out)

-------------------------------------------------------------------------------------------
-- 8. A dry run stopped by a signal saves no plan: it has not decided everything.
local issuer = "CN=Sectigo RSA Organization Validation Secure Server CA, O=Sectigo Limited, C=GB"
local big = { settings = { sectigoListSerialFormat = "colon" },
  sectigo = { types = { { id = 1018, name = "OV SSL" } },
    customFields = { { id = 201, name = "Cost Center", input = { type = "TEXT_SINGLE_LINE" } } }, certificates = {} },
  keyfactor = { metadataFields = { { Id = 1, Name = "CostCenter", Description = "c", DataType = 1, DisplayOrder = 1 } },
    certificates = {} } }
for i = 1, 40 do
  local hex = string.format("%08X", 0x20000000 + i)
  big.sectigo.certificates[i] = { id = 8000 + i, commonName = "u" .. i .. ".acme.test", sslTypeId = 1018,
    status = "Issued", serialNumber = hex:gsub("(%x%x)(%x%x)(%x%x)(%x%x)", "%1:%2:%3:%4"), issued = "2025-01-01",
    expires = "2099-01-01", customFields = { { name = "Cost Center", value = "CC-" .. i } } }
  big.keyfactor.certificates[i] = { Id = i, SerialNumber = hex, IssuedCN = "u" .. i .. ".acme.test", IssuerDN = issuer,
    NotBefore = "2025-01-01T00:00:00Z", NotAfter = "2099-01-01T00:00:00Z", Metadata = { CostCenter = "old" } }
end
H.reset(big)
H.faults { endpoints = { ["sectigo.details"] = { latency_ms = 100 } } }
local bdir = H.config_dir(nil, { ManualFields = {}, CustomFields = { H.field("Cost Center", "CostCenter", 1) } })
local q = function(x) return (H.sh_quote(x):gsub("'", "'\\''")) end
local p = assert(io.popen(string.format("sh -c 'cd %s && { %s -c %s -v -j 2 sctokf --dry-run --plan-out %s 2>&1 & echo pid=$!; wait $!; echo rc=$?; }'",
  q(bdir), q(H.metasync), q(bdir), q(plan3)), "r"))
local pid = assert(p:read("l"):match("^pid=(%d+)$"))
local code, text, sent = nil, {}, false
for line in p:lines() do
  text[#text + 1] = line
  if not sent and line:find("| sync | certificate ", 1, true) then os.execute("kill -TERM " .. pid); sent = true end
  code = tonumber(line:match("^rc=(%d+)$")) or code
end
p:close()
local all = table.concat(text, "\n")
H.eq(code, 143, "a dry run stopped by SIGTERM: " .. all:gsub("\n", " | "))
assert(all:find("plan not saved to " .. plan3 .. ": the run was interrupted", 1, true), all)
assert(not exists(plan3) and not exists(plan3 .. ".tmp"), "no plan from an interrupted dry run")
H.call("DELETE", H.sectigo .. "/__sim/faults")
print("ok")
