-- Hostile or broken answers, each scripted through the simulator (/__sim/faults) over a fresh
-- world: totals that cannot be true (paging stops at the first empty page, never past it),
-- answers that are not lists (an error, never "nothing to do"), and single malformed records
-- (that record fails or is skipped, named; the others are synced). Whatever happens: no Lua
-- error on stderr, and exit 1 only when nothing was written.
--
-- The rule for malformed records: a record that names a certificate but cannot be used (an
-- sslId or Id that is no id, a serial that is a number or an object, unreadable customFields)
-- fails that certificate: it is in the summary's failures and the run exits 2. A record that
-- names no certificate (no serial at all, as a request not yet issued; a list item that is not
-- an object) and a field definition that cannot be read are left out with a log line naming
-- them, and do not change the exit code.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")
local json = require("metasync.json")

local SECTIGO_ISSUER = "CN=Sectigo RSA Organization Validation Secure Server CA, O=Sectigo Limited, C=GB"
local BANNED = '{"BannedCharacters":[{"character":" ","replacementcharacter":"_"}]}'

local function gets(st, ep)
  local r = st.requests[ep]
  return r and r.GET or 0
end
local function ep_writes(st, ep) return (st.writes_by_endpoint or {})[ep] or 0 end

-- case{name=, faults=, over=, fields=, banned=, command=, extra=, world=} -> result: one world
-- reset, the scripts, one run; checks what holds for every case.
local function case(o)
  H.reset(o.world or H.world())
  H.call("DELETE", H.sectigo .. "/__sim/faults")
  if o.faults then H.faults(o.faults) end
  H.clear_stats()
  local dir = H.config_dir(o.over, o.fields, o.banned)
  local rc, out, err, logtext = H.run(dir, o.command or "sctokf", o.extra)
  local st = H.stats()
  local r = { rc = rc, out = out, err = err, log = logtext, stats = st, state = H.state(), writes = H.writes(st) }
  local what = o.name .. ": "
  -- (a Lua error reads "file.lua:12: attempt to ..." or "bad argument #1 to ...")
  for _, bad in ipairs({ "stack traceback", "attempt to", "bad argument", "%.lua:%d+:" }) do
    assert(not err:find(bad), what .. "a Lua error on stderr:\n" .. err)
  end
  assert(rc == 0 or rc == 1 or rc == 2, what .. "exit code " .. tostring(rc) .. "\n" .. err .. out)
  if rc == 1 then H.eq(r.writes, 0, what .. "exit 1 after writes") end
  H.call("DELETE", H.sectigo .. "/__sim/faults")
  return r
end

local function has(text, s, what) assert(text:find(s, 1, true), what .. ": no '" .. s .. "' in:\n" .. text) end

-- pass(n, headers): n normal answers with some headers replaced
local function pass(n, headers)
  local steps = {}
  for i = 1, n do steps[i] = { pass = true, headers = headers } end
  return steps
end
local function script(endpoint, responses, method)
  return { scripts = { { endpoint = endpoint, method = method or "GET", responses = responses } } }
end

---------------------------------------------------------------------------------------------
-- 1. Runaway paging: a total of 1e12 or 1e400 is not believed. Pages of 1 over the three
-- certificates each side lists: pages 1..3 full, page 4 empty, so exactly 4 list requests
-- (they were 182,838 in 20 s), and the run syncs as usual.
---------------------------------------------------------------------------------------------
do
  -- the simulator's pass step with headers: the normal page, the header replaced (so a count
  -- of 4 below is the hostile total's, not the true one's)
  H.reset(H.world())
  H.faults(script("sectigo.list", pass(1, { ["X-Total-Count"] = "1e12" })))
  local resp = assert(require("metasync.http").request { method = "GET", url = H.sectigo .. "/api/ssl/v1?size=1",
    headers = { login = "sim-admin", password = "sim-password", customerUri = "sim-customer" } })
  H.eq(resp.status, 200, "scripted pass: status")
  H.eq(resp.headers["x-total-count"], "1e12", "scripted pass: header replaced")
  H.eq(#json.decode(resp.body), 1, "scripted pass: the normal page")
  H.call("DELETE", H.sectigo .. "/__sim/faults")
end
for _, total in ipairs({ "1e12", "1e400" }) do
  local r = case { name = "Sectigo total " .. total, over = { sectigoPageSize = 1 },
    faults = script("sectigo.list", pass(20, { ["X-Total-Count"] = total })) }
  H.eq(r.rc, 0, "Sectigo total " .. total .. ": exit code\n" .. r.err)
  H.eq(gets(r.stats, "sectigo.list"), 4, "Sectigo total " .. total .. ": list requests")
  H.eq(H.kf_cert(r.state, 1).Metadata.CostCenter, "CC-1", "Sectigo total " .. total .. ": synced")

  r = case { name = "Keyfactor total " .. total, over = { keyfactorPageSize = 1 },
    faults = script("keyfactor.certificates", pass(20, { ["x-total-count"] = total })) }
  H.eq(r.rc, 0, "Keyfactor total " .. total .. ": exit code\n" .. r.err)
  H.eq(tonumber(r.out:match("considered: +(%d+)")), 3, "Keyfactor total " .. total .. ": considered")
  H.eq(gets(r.stats, "keyfactor.certificates"), 4, "Keyfactor total " .. total .. ": list requests")
  H.eq(H.kf_cert(r.state, 2).Metadata.CostCenter, "CC-2", "Keyfactor total " .. total .. ": synced")
end

---------------------------------------------------------------------------------------------
-- 2. Wrong shape: an object where a list is expected is an error, never "no certificates".
---------------------------------------------------------------------------------------------
local OBJ = { Certificates = json.array() }
do
  -- the Sectigo list is read before any write: exit 1, nothing written
  local r = case { name = "Sectigo list object", faults = script("sectigo.list", { { status = 200, body = OBJ } }) }
  H.eq(r.rc, 1, "Sectigo list object: exit code")
  has(r.err, "Sectigo GET /api/ssl/v1: expected a list of certificates, got an object", "Sectigo list object")
  -- the Sectigo custom field definitions and Keyfactor's metadata fields: pre-flight, exit 1
  r = case { name = "Sectigo fields object",
    faults = script("sectigo.customfields", { { status = 200, body = { customFields = json.array() } } }) }
  H.eq(r.rc, 1, "Sectigo fields object: exit code")
  has(r.err, "Sectigo GET /api/customField/v2: expected a list of custom fields, got an object", "Sectigo fields object")
  H.eq(gets(r.stats, "sectigo.list"), 0, "Sectigo fields object: nothing listed")
  r = case { name = "Keyfactor fields object",
    faults = script("keyfactor.metadatafields", { { status = 200, body = { MetadataFields = json.array() } } }) }
  H.eq(r.rc, 1, "Keyfactor fields object: exit code")
  has(r.err, "Keyfactor GET /MetadataFields: expected a list", "Keyfactor fields object")
  -- the Keyfactor listing comes after the field definitions are written: the run is then
  -- incomplete (exit 2, the summary says why), and no certificate is written; in a dry run
  -- nothing was written, so it is exit 1
  r = case { name = "Keyfactor list object", faults = script("keyfactor.certificates", { { status = 200, body = OBJ } }) }
  if r.rc == 2 then
    has(r.out, "INCOMPLETE: listing Keyfactor certificates failed: Keyfactor /Certificates: page 1: Keyfactor GET /Certificates: expected a list", "Keyfactor list object")
  else
    H.eq(r.rc, 1, "Keyfactor list object: exit code")
    has(r.err, "expected a list", "Keyfactor list object")
  end
  H.eq(ep_writes(r.stats, "keyfactor.metadata"), 0, "Keyfactor list object: certificates written")
  r = case { name = "Keyfactor list object, dry run", extra = "--dry-run",
    faults = script("keyfactor.certificates", { { status = 200, body = OBJ } }) }
  H.eq(r.rc, 1, "Keyfactor list object, dry run: exit code")
  has(r.err, "Keyfactor GET /Certificates: expected a list", "Keyfactor list object, dry run")
  -- an empty object is no more an empty page than any other object
  r = case { name = "Keyfactor list {}", extra = "--dry-run",
    faults = script("keyfactor.certificates", { { status = 200, body = "{}" } }) }
  H.eq(r.rc, 1, "Keyfactor list {}, dry run: exit code")
  has(r.err, "Keyfactor GET /Certificates: expected a list", "Keyfactor list {}")
end

---------------------------------------------------------------------------------------------
-- 3. One bad record on a list page: that certificate fails (or, without a serial, is
-- unmatched), named; the good ones are synced.
---------------------------------------------------------------------------------------------
-- The Sectigo list in one page: the record for 0A:11:22:33 as given, then the two good ones.
local function sectigo_page(first)
  return script("sectigo.list", { { status = 200, headers = { ["X-Total-Count"] = "3" },
    body = "[" .. first .. ',{"sslId":5002,"serialNumber":"0B:44:55:66"},{"sslId":5004,"serialNumber":"0D:AA:BB:CC"}]' } })
end
local sslids = {
  { '"abc"', 'sslId is a string ("abc"), not a certificate id' },
  { "1.5", "sslId is a number (1.5), not a certificate id" },
  { nil, "sslId is missing, not a certificate id" },
}
for _, c in ipairs(sslids) do
  local item = '{' .. (c[1] and ('"sslId":' .. c[1] .. ",") or "") .. '"serialNumber":"0A:11:22:33"}'
  -- (with a list item that is no record at all in front: skipped with a WARN)
  local name = "Sectigo sslId " .. tostring(c[1])
  local r = case { name = name, over = { sectigoPageSize = 10 }, faults = sectigo_page('7,' .. item) }
  H.eq(r.rc, 2, name .. ": exit code\n" .. r.err .. r.out)
  has(r.out, "A112233: Sectigo list: " .. c[2], name)
  has(r.out, "failed:                  1", name)
  has(r.log, "page 1: an item that is a number (7), not a certificate, was skipped", name)
  H.eq(H.kf_cert(r.state, 1).Metadata.CostCenter, "old", name .. ": its Keyfactor certificate untouched")
  H.eq(H.kf_cert(r.state, 2).Metadata.CostCenter, "CC-2", name .. ": the others synced")
  -- its Keyfactor counterpart is not reported as unmatched as well (only FFFF0001 is)
  has(r.out, "unmatched:               1 ", name)
end
do
  local name = "Sectigo serialNumber 12.5"
  local r = case { name = name, over = { sectigoPageSize = 10 }, faults = sectigo_page('{"sslId":5001,"serialNumber":12.5}') }
  H.eq(r.rc, 2, name .. ": exit code")
  has(r.out, "Sectigo sslId 5001: Sectigo list: serialNumber is a number (12.5), not a serial number", name)
  H.eq(H.kf_cert(r.state, 2).Metadata.CostCenter, "CC-2", name .. ": the others synced")
end

-- The Keyfactor query in one page: the certificate with Id 1 as given, then Id 2.
local function keyfactor_page(serial_json)
  local one = string.format('{"Id":1,"SerialNumber":%s,"IssuedCN":"www.acme.test","IssuerDN":"%s",'
    .. '"NotAfter":"2099-01-01T00:00:00Z","Metadata":{"CostCenter":"old"}}', serial_json, SECTIGO_ISSUER)
  local two = string.format('{"Id":2,"SerialNumber":"0B445566","IssuedCN":"api.acme.test","IssuerDN":"%s",'
    .. '"NotAfter":"2099-01-01T00:00:00Z","Metadata":{"Environment":"Staging"}}', SECTIGO_ISSUER)
  return script("keyfactor.certificates", { { status = 200, headers = { ["x-total-count"] = "2" },
    body = "[" .. one .. "," .. two .. "]" } })
end
local kf_serials = {
  { "12.5", "Keyfactor Id 1: SerialNumber is a number (12.5), not a serial number" },
  { "1.5e3", "Keyfactor Id 1: SerialNumber is a number (1500), not a serial number" },
  { "{}", "Keyfactor Id 1: SerialNumber is an object, not a serial number" },
  { "null" }, -- no serial at all: unmatched, named in the log, not a failure
}
for _, c in ipairs(kf_serials) do
  local name = "Keyfactor SerialNumber " .. c[1]
  local r = case { name = name, over = { keyfactorPageSize = 10 }, faults = keyfactor_page(c[1]) }
  if c[2] then
    H.eq(r.rc, 2, name .. ": exit code (writes " .. r.writes .. ")\n" .. r.err)
    has(r.out, c[2], name)
  else
    H.eq(r.rc, 0, name .. ": exit code\n" .. r.err)
    has(r.log, "unmatched serial (none: Keyfactor Id 1 has no serial)", name)
  end
  assert(r.writes > 0, name .. ": the run went on")
  H.eq(H.kf_cert(r.state, 1).Metadata.CostCenter, "old", name .. ": the bad record untouched")
  H.eq(H.kf_cert(r.state, 2).Metadata.CostCenter, "CC-2", name .. ": the others synced")
end

---------------------------------------------------------------------------------------------
-- 4. Field definitions that cannot be read are left out with a WARN naming them; the run
-- syncs every other field (exit 0). importAllCustomFields makes every definition count.
---------------------------------------------------------------------------------------------
local defs = {
  '{"id":202,"name":"Environment","input":{"type":"TEXT_OPTION","options":["Production","Staging","Development"]}}',
  '{"id":203,"name":"Renewal Date","input":{"type":"DATE"}}',
  '{"id":204,"name":"Budget Code","input":{"type":"NUMBER"}}',
}
local bad_defs = {
  { '{"id":201,"name":null,"input":{"type":"TEXT_SINGLE_LINE"}}', "#1 (id 201) is unusable: name is null; ignored" },
  { '{"id":201,"name":42}', "#1 (id 201) is unusable: name is a number (42); ignored" },
  { '{"id":201,"input":{"type":"TEXT_SINGLE_LINE"}}', "#1 (id 201) is unusable: name is missing; ignored" },
  { '{"id":201,"name":"Cost Center","input":"TEXT_SINGLE_LINE"}',
    "#1 (id 201) 'Cost Center' is unusable: input is a string (\"TEXT_SINGLE_LINE\"), not an object; ignored" },
}
for _, c in ipairs(bad_defs) do
  local name = "Sectigo field definition " .. c[1]
  local r = case { name = name, over = { importAllCustomFields = "true" }, banned = BANNED,
    fields = { ManualFields = {}, CustomFields = {} },
    faults = script("sectigo.customfields", { { status = 200, body = "[" .. c[1] .. "," .. table.concat(defs, ",") .. "]" } }) }
  H.eq(r.rc, 0, name .. ": exit code\n" .. r.err)
  has(r.err, "Sectigo custom field definition " .. c[2], name)
  H.eq(H.kf_field(r.state, "Cost_Center"), nil, name .. ": no field from the bad definition")
  assert(H.kf_field(r.state, "Budget_Code"), name .. ": the other fields created")
  H.eq(H.kf_cert(r.state, 1).Metadata.Budget_Code, "42", name .. ": the other fields synced")
end
do
  -- a Keyfactor definition without a Name matches nothing: named in a WARN, the rest as usual
  local name = "Keyfactor field definition Name null"
  local r = case { name = name, faults = script("keyfactor.metadatafields", { { status = 200,
    headers = { ["x-total-count"] = "3" }, body = '[{"Id":1,"Name":"CostCenter","Description":"outdated description","DataType":1,"DisplayOrder":1},'
      .. '{"Id":2,"Name":"Environment","Description":"Deployment environment","DataType":5,"Options":"Production,Staging,Development","DisplayOrder":2},'
      .. '{"Id":99,"Name":null,"DataType":1}]' } }) }
  H.eq(r.rc, 0, name .. ": exit code\n" .. r.err)
  has(r.err, "Keyfactor metadata field definition #3 (Id 99) has no usable Name (null); ignored", name)
  H.eq(H.kf_cert(r.state, 1).Metadata.BudgetCode, "42", name .. ": synced")
end

---------------------------------------------------------------------------------------------
-- 5. A details document (or a bulk report row) of the wrong shape fails that certificate
-- only. Sectigo requests one at a time, so the first details GET is the first pair's; which
-- certificate got the bad document is read from the summary all the same.
---------------------------------------------------------------------------------------------
local SERIAL_OF = { A112233 = 1, B445566 = 2 }
local details_cases = {
  { '{"id":5001,"status":"Issued","customFields":"oops"}', 'customFields is a string ("oops"), not a list' },
  { '{"id":5001,"status":"Issued","customFields":[5,{"name":"Cost Center","value":"X"}]}', "customFields[1] is a number (5), not an object" },
  { '{"id":5001,"status":"Issued","customFields":[{"name":42,"value":"X"}]}', "customFields[1]: name is a number (42)" },
}
for _, command in ipairs({ "sctokf", "kftosc" }) do
  for _, c in ipairs(details_cases) do
    local name = command .. " details " .. c[1]
    local r = case { name = name, command = command, over = { sectigoConcurrency = 1 },
      faults = script("sectigo.details", { { status = 200, body = c[1] } }) }
    H.eq(r.rc, 2, name .. ": exit code\n" .. r.err .. r.out)
    local serial = r.out:match("\n    (%x+): Sectigo GET /api/ssl/v1/%d+: " .. c[2]:gsub("%p", "%%%0"))
    assert(serial and SERIAL_OF[serial], name .. ": the failure names its certificate:\n" .. r.out)
    has(r.out, "failed:                  1", name)
    local other = SERIAL_OF[serial] == 1 and 2 or 1
    if command == "sctokf" then
      H.eq(H.kf_cert(r.state, other).Metadata.CostCenter, other == 1 and "CC-1" or "CC-2", name .. ": the other synced")
    else
      -- the one Sectigo update is the other certificate's: nothing was sent for the bad one
      H.eq(ep_writes(r.stats, "sectigo.update"), 1, name .. ": Sectigo updates")
    end
  end
end
do
  -- a bulk report row whose customFields is a string: its certificate fails, the rest sync
  local name = "bulk row customFields string"
  local row = { id = 5001, serialNumber = "0A112233", status = "Issued", typeId = 1018, commonName = "www.acme.test",
    customFields = "oops" }
  local r = case { name = name, over = { sectigoBulkReads = "on" },
    faults = script("sectigo.report", { { status = 200, body = { reports = { row } } } }, "POST") }
  H.eq(r.rc, 2, name .. ": exit code\n" .. r.err .. r.out)
  has(r.out, 'A112233: Sectigo report (sslId 5001): customFields is a string ("oops"), not a list', name)
  H.eq(H.kf_cert(r.state, 1).Metadata.CostCenter, "old", name .. ": the bad one untouched")
  H.eq(H.kf_cert(r.state, 2).Metadata.CostCenter, "CC-2", name .. ": the others synced")
end
print("ok")
