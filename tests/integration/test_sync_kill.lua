-- kill -9 during a sync, at several points, then a re-run: the state store passes
-- integrity_check, the re-run converges, and it writes only fields that were not yet in step
-- (nothing already in step is written again). The kill points are events, not times: the
-- test reads metasync's debug log as it is written and kills after the Nth certificate
-- written.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")
local db = require("metasync.db")

local N = 120
local issuer = "CN=Sectigo RSA Organization Validation Secure Server CA, O=Sectigo Limited, C=GB"
local w = { settings = { sectigoListSerialFormat = "colon" },
  sectigo = { types = { { id = 1018, name = "OV SSL" } },
    customFields = { { id = 201, name = "Cost Center", input = { type = "TEXT_SINGLE_LINE" } } }, certificates = {} },
  keyfactor = { metadataFields = { { Id = 1, Name = "CostCenter", Description = "c", DataType = 1, DisplayOrder = 1 } },
    certificates = {} } }
for i = 1, N do
  local hex = string.format("%08X", 0x10000000 + i)
  w.sectigo.certificates[i] = { id = 7000 + i, commonName = "c" .. i .. ".acme.test", sslTypeId = 1018,
    status = "Issued", serialNumber = hex:gsub("(%x%x)(%x%x)(%x%x)(%x%x)", "%1:%2:%3:%4"),
    issued = "2025-01-01", expires = "2099-01-01", customFields = { { name = "Cost Center", value = "CC-" .. i } } }
  w.keyfactor.certificates[i] = { Id = i, SerialNumber = hex, IssuedCN = "c" .. i .. ".acme.test", IssuerDN = issuer,
    NotBefore = "2025-01-01T00:00:00Z", NotAfter = "2099-01-01T00:00:00Z" }
end
H.reset(w)
-- Each write takes a while, so a kill lands mid-run.
H.faults { endpoints = { ["keyfactor.metadata"] = { latency_ms = 15 }, ["sectigo.update"] = { latency_ms = 15 } } }
local fields = { ManualFields = {}, CustomFields = { H.field("Cost Center", "CostCenter", 1) } }
local dir = H.config_dir({ sectigoPageSize = 50, keyfactorPageSize = 50 }, fields)
local statefile = dir:match("^(.*)/config$") .. "/state/metasync.db"

-- sync_killed_after(n): starts a sync, kills it with SIGKILL once n certificates were written.
local function sync_killed_after(n)
  local q = function(x) return (H.sh_quote(x):gsub("'", "'\\''")) end
  -- in dir, as H.run does, so the logs land there
  local cmd = string.format("sh -c 'cd %s && echo $$ && exec %s -c %s -v -j 2 sync 2>&1'", q(dir), q(H.metasync), q(dir))
  local p = assert(io.popen(cmd, "r"))
  local pid = assert(math.tointeger(tonumber(p:read("l"))), "no pid")
  local seen, killed = 0, false
  for line in p:lines() do
    if not killed and line:find("| sync | certificate ", 1, true) then
      seen = seen + 1
      if seen >= n then os.execute("kill -9 " .. pid); killed = true end
    end
  end
  p:close()
  return killed
end

-- in_step() -> how many certificates hold the same Cost Center on both sides
local function in_step()
  local st, n = H.state(), 0
  for i = 1, N do
    local k = (H.kf_cert(st, i).Metadata or {}).CostCenter
    if k ~= nil and k == H.cf(H.sc_cert(st, 7000 + i), "Cost Center") then n = n + 1 end
  end
  return n
end

local function check_store(what)
  local h = assert(db.open(statefile, { readonly = true }))
  H.eq(h:row("PRAGMA integrity_check").integrity_check, "ok", "integrity_check " .. what)
  h:close()
end

-- Phase 1: no baseline; Sectigo has every value, Keyfactor none: each sync copies to Keyfactor.
-- Phase 2: every Keyfactor value edited: each sync copies to Sectigo, against the baseline.
for phase = 1, 2 do
  if phase == 2 then
    for i = 1, N do H.kf_edit(i, { CostCenter = "KF-" .. i }) end
  end
  for _, at in ipairs({ 1, 25, 60 }) do
    local before = in_step()
    if before < N then
      assert(sync_killed_after(math.min(at, N - before)), "phase " .. phase .. ": the sync ended before the kill at " .. at)
      check_store(string.format("after a kill at %d (phase %d)", at, phase))
    end
  end
  -- The re-run writes exactly the certificates not yet in step.
  local todo = N - in_step()
  assert(todo > 0, "phase " .. phase .. ": the kills left nothing to do; the test proves nothing")
  H.clear_stats()
  local rc, out, err = H.run(dir, "sync")
  H.eq(rc, 0, "re-run of phase " .. phase .. ": " .. out .. err)
  local s = H.stats().writes_by_endpoint
  H.eq((s["keyfactor.metadata"] or 0) + (s["sectigo.update"] or 0), todo,
    "phase " .. phase .. ": writes of the re-run (certificates not yet in step)")
  H.eq(in_step(), N, "phase " .. phase .. ": converged")
  check_store("after the re-run of phase " .. phase)
  if phase == 2 then
    H.eq(H.cf(H.sc_cert(H.state(), 7001), "Cost Center"), "KF-1", "phase 2 went Keyfactor -> Sectigo")
  end
  -- and one more run finds nothing to do
  H.clear_stats()
  rc = H.run(dir, "sync")
  H.eq(rc, 0, "settled run of phase " .. phase)
  H.eq(H.writes(H.stats()), 0, "phase " .. phase .. ": writes once settled")
end
H.faults { endpoints = { ["keyfactor.metadata"] = { latency_ms = 0 }, ["sectigo.update"] = { latency_ms = 0 } } }
print("ok")
